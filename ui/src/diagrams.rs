//! Diagrams: the diagram records (`gatehouse diagram add/list/show`) drawn
//! on a canvas — nodes (hosts by their name, or labels) and labelled links.
//! Clicking a host's node, or selecting it with Tab/arrows and pressing
//! Enter, opens a terminal to that host.
//!
//! Owns: reading diagram records and host names from the store (plaintext
//! only), the layout (nodes evenly on a circle, in record order), hit
//! testing and the keyboard selection.
//!
//! Must never: open a sealed field or ask the broker anything (diagrams and
//! host names are plaintext), or open a terminal itself (it asks the
//! terminal screen with `terminal::Message::Open`).

use std::collections::HashMap;

use gatehouse_ipc::Layout;
use gatehouse_records::model::{Diagram, Kind, Record};
use gatehouse_records::store::{Filter, Store};
use iced::keyboard::{Key, Modifiers, key::Named};
use iced::widget::{button, canvas, column, container, row, scrollable, text};
use iced::{Element, Fill, FillPortion, Point, Rectangle, Size};

use crate::app::Effect;
use crate::daemons::{self, Daemons};
use crate::terminal;

/// The id of the container around the canvas (tests find its bounds by it).
pub const CANVAS_ID: &str = "diagram-canvas";
/// A node's radius on the canvas.
pub const NODE_RADIUS: f32 = 28.0;

/// A diagram record, ready to draw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiagramRow {
    pub id: String,
    pub diagram: Diagram,
}

/// What the load call found.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub diagrams: Vec<DiagramRow>,
    /// Host record id → name.
    pub hosts: HashMap<String, String>,
    /// Records that did not read as diagrams.
    pub errors: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Diagrams {
    pub loading: bool,
    pub loaded: Option<Loaded>,
    pub error: Option<String>,
    /// The diagram shown (index into `loaded.diagrams`).
    pub selected: usize,
    /// The node selected with the keyboard.
    pub focus: Option<usize>,
    /// Why the last activation did nothing (a label node).
    pub note: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Message {
    Refresh,
    Select(usize),
    /// Open the node's host (a click, or Enter on the selected node).
    Activate(usize),
    /// Tab/arrows: the next (true) or previous node.
    Step(bool),
    /// Enter on the selected node.
    ActivateFocused,
    /// PageDown/PageUp: the next (true) or previous diagram.
    SelectStep(bool),
}

/// One-shot daemon calls this screen asks for (see [`crate::daemons::Call`]).
#[derive(Debug, Clone)]
pub enum Call {
    Load,
}

#[derive(Debug, Clone)]
pub enum Reply {
    Loaded(Result<Loaded, String>),
}

/// Runs one [`Call`].
pub async fn run(d: Daemons, c: Call) -> Reply {
    match c {
        Call::Load => Reply::Loaded(daemons::on_files(&d, load).await.and_then(|r| r)),
    }
}

/// Every diagram record and every host's name (the store only).
pub fn load(layout: &Layout) -> Result<Loaded, String> {
    let store = Store::open_in(layout).map_err(|e| format!("records store: {e}"))?;
    let mut out = Loaded::default();
    for s in store
        .list(&Filter::kind(Kind::Diagram))
        .map_err(|e| format!("records store: {e}"))?
    {
        let fields = serde_json::Value::Object(s.fields.clone().into_iter().collect());
        match Record::from_value(Kind::Diagram, fields) {
            Ok(Record::Diagram(d)) => out.diagrams.push(DiagramRow {
                id: s.meta.id.clone(),
                diagram: d,
            }),
            Ok(_) => {}
            Err(e) => out.errors.push(format!("diagram {}: {e}", s.meta.id)),
        }
    }
    out.diagrams
        .sort_by(|a, b| a.diagram.name.cmp(&b.diagram.name));
    out.hosts = daemons::load_hosts(layout)
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|h| (h.id, h.name))
        .collect();
    Ok(out)
}

/// Where each of `n` nodes sits on a canvas of `size`: evenly on a circle
/// (one node in the middle, two side by side).
pub fn node_positions(n: usize, size: Size) -> Vec<Point> {
    let c = Point::new(size.width / 2.0, size.height / 2.0);
    let r = (size.width.min(size.height) / 2.0 - NODE_RADIUS * 2.0).max(NODE_RADIUS);
    match n {
        0 => vec![],
        1 => vec![c],
        _ => (0..n)
            .map(|i| {
                let a = std::f32::consts::TAU * i as f32 / n as f32 - std::f32::consts::FRAC_PI_2
                    + if n == 2 {
                        std::f32::consts::FRAC_PI_2
                    } else {
                        0.0
                    };
                Point::new(c.x + r * a.cos(), c.y + r * a.sin())
            })
            .collect(),
    }
}

/// The key that stands for a diagram message (Tab/arrows, Enter).
pub fn key(key: &Key, m: Modifiers) -> Option<Message> {
    match key {
        Key::Named(Named::Tab) => Some(Message::Step(!m.shift())),
        Key::Named(Named::ArrowRight | Named::ArrowDown) => Some(Message::Step(true)),
        Key::Named(Named::ArrowLeft | Named::ArrowUp) => Some(Message::Step(false)),
        Key::Named(Named::Enter) => Some(Message::ActivateFocused),
        Key::Named(Named::PageDown) => Some(Message::SelectStep(true)),
        Key::Named(Named::PageUp) => Some(Message::SelectStep(false)),
        Key::Character(c) if c.as_str() == "r" => Some(Message::Refresh),
        _ => None,
    }
}

impl Diagrams {
    /// The tab was opened: load once.
    pub fn shown(&mut self) -> Vec<Effect> {
        if self.loaded.is_none() && !self.loading {
            self.update(Message::Refresh)
        } else {
            vec![]
        }
    }

    /// The diagram on screen.
    pub fn current(&self) -> Option<&DiagramRow> {
        self.loaded.as_ref()?.diagrams.get(self.selected)
    }

    /// What a node shows: its host's name, or its label (or its id).
    pub fn node_text(&self, i: usize) -> Option<String> {
        let l = self.loaded.as_ref()?;
        let n = self.current()?.diagram.nodes.get(i)?;
        Some(match (&n.host_id, &n.label) {
            (Some(h), _) => l
                .hosts
                .get(h)
                .cloned()
                .unwrap_or_else(|| format!("{h} (missing host)")),
            (None, Some(label)) => label.clone(),
            (None, None) => n.id.clone(),
        })
    }

    pub fn update(&mut self, m: Message) -> Vec<Effect> {
        match m {
            Message::Refresh => {
                self.loading = true;
                return vec![Effect::Call(daemons::Call::Diagrams(Call::Load))];
            }
            Message::Select(i) => {
                self.selected = i;
                self.focus = None;
                self.note = None;
            }
            Message::SelectStep(next) => {
                let n = self.loaded.as_ref().map(|l| l.diagrams.len()).unwrap_or(0);
                if n > 0 {
                    let i = if next {
                        (self.selected + 1).min(n - 1)
                    } else {
                        self.selected.saturating_sub(1)
                    };
                    return self.update(Message::Select(i));
                }
            }
            Message::Step(forward) => {
                let n = self.current().map(|d| d.diagram.nodes.len()).unwrap_or(0);
                if n > 0 {
                    self.focus = Some(match (self.focus, forward) {
                        (None, true) => 0,
                        (None, false) => n - 1,
                        (Some(i), true) => (i + 1) % n,
                        (Some(i), false) => (i + n - 1) % n,
                    });
                }
            }
            Message::ActivateFocused => {
                if let Some(i) = self.focus {
                    return self.update(Message::Activate(i));
                }
            }
            Message::Activate(i) => {
                self.focus = Some(i);
                let Some(node) = self.current().and_then(|d| d.diagram.nodes.get(i)) else {
                    return vec![];
                };
                match node.host_id.clone() {
                    Some(host) => {
                        self.note = None;
                        return vec![Effect::Then(Box::new(crate::app::Message::Terminal(
                            terminal::Message::Open { host },
                        )))];
                    }
                    None => {
                        self.note = Some(format!(
                            "{} is a label, not a host: nothing to connect to.",
                            self.node_text(i).unwrap_or_default()
                        ))
                    }
                }
            }
        }
        vec![]
    }

    pub fn replied(&mut self, r: Reply) -> Vec<Effect> {
        match r {
            Reply::Loaded(l) => {
                self.loading = false;
                match l {
                    Ok(l) => {
                        if self.selected >= l.diagrams.len() {
                            self.selected = 0;
                        }
                        self.loaded = Some(l);
                        self.error = None;
                    }
                    Err(e) => self.error = Some(e),
                }
            }
        }
        vec![]
    }

    /// Forgets everything shown (sign-out).
    pub fn clear(&mut self) {
        *self = Diagrams::default();
    }

    pub fn view(&self) -> Element<'_, Message> {
        let mut list = column![
            row![
                text("Diagrams").size(18),
                iced::widget::space::horizontal(),
                button(text(if self.loading {
                    "Loading…"
                } else {
                    "Refresh"
                }))
                .style(button::secondary)
                .on_press_maybe((!self.loading).then_some(Message::Refresh)),
            ]
            .align_y(iced::Center)
        ]
        .spacing(4);
        if let Some(e) = &self.error {
            list = list.push(text(e.clone()).style(text::danger));
        }
        let Some(l) = &self.loaded else {
            return list.into();
        };
        for e in &l.errors {
            list = list.push(text(e.clone()).size(12).style(text::danger));
        }
        for (i, d) in l.diagrams.iter().enumerate() {
            let b = button(text(d.diagram.name.clone()).size(13)).width(Fill);
            list = list.push(if i == self.selected {
                b
            } else {
                b.style(button::secondary).on_press(Message::Select(i))
            });
        }
        if l.diagrams.is_empty() {
            list = list.push(text(
                "No diagrams yet: add one with `gatehouse diagram add`.",
            ));
        }
        let mut right = column![].spacing(6);
        if let Some(d) = self.current() {
            let nodes: Vec<(String, bool)> = (0..d.diagram.nodes.len())
                .map(|i| {
                    (
                        self.node_text(i).unwrap_or_default(),
                        d.diagram.nodes[i].host_id.is_some(),
                    )
                })
                .collect();
            let index: HashMap<&str, usize> = d
                .diagram
                .nodes
                .iter()
                .enumerate()
                .map(|(i, n)| (n.id.as_str(), i))
                .collect();
            let links = d
                .diagram
                .links
                .iter()
                .filter_map(|k| {
                    Some((
                        *index.get(k.from.as_str())?,
                        *index.get(k.to.as_str())?,
                        k.label.clone().unwrap_or_default(),
                    ))
                })
                .collect();
            right = right.push(
                text("Click a host (or Tab/arrows, then Enter) to open a terminal · PageUp/PageDown diagrams · R refresh")
                    .size(12)
                    .style(text::secondary),
            );
            right = right.push(
                container(
                    canvas(Drawing {
                        nodes,
                        links,
                        focus: self.focus,
                    })
                    .width(Fill)
                    .height(Fill),
                )
                .id(CANVAS_ID)
                .width(Fill)
                .height(Fill)
                .style(container::bordered_box),
            );
            // The nodes as widgets too: readable names, reachable without the canvas.
            let mut legend = row![text("Hosts:").size(13)].spacing(6);
            for (i, n) in d.diagram.nodes.iter().enumerate() {
                if n.host_id.is_some() {
                    legend = legend.push(
                        button(text(self.node_text(i).unwrap_or_default()).size(13))
                            .style(button::secondary)
                            .on_press(Message::Activate(i)),
                    );
                }
            }
            right = right.push(legend.wrap());
            if let Some(n) = &self.note {
                right = right.push(text(n.clone()).size(13).style(text::warning));
            }
        }
        row![
            scrollable(list).width(FillPortion(1)),
            right.width(FillPortion(4))
        ]
        .spacing(10)
        .height(Fill)
        .into()
    }
}

/// The canvas program: nodes (text, is a host) and links (from, to, label).
struct Drawing {
    nodes: Vec<(String, bool)>,
    links: Vec<(usize, usize, String)>,
    focus: Option<usize>,
}

impl Drawing {
    fn hit(&self, p: Point, size: Size) -> Option<usize> {
        node_positions(self.nodes.len(), size)
            .iter()
            .position(|c| c.distance(p) <= NODE_RADIUS)
    }
}

impl canvas::Program<Message> for Drawing {
    type State = ();

    fn update(
        &self,
        _state: &mut (),
        event: &iced::Event,
        bounds: Rectangle,
        cursor: iced::mouse::Cursor,
    ) -> Option<canvas::Action<Message>> {
        if let iced::Event::Mouse(iced::mouse::Event::ButtonPressed(iced::mouse::Button::Left)) =
            event
        {
            let p = cursor.position_in(bounds)?;
            let i = self.hit(p, bounds.size())?;
            return Some(canvas::Action::publish(Message::Activate(i)).and_capture());
        }
        None
    }

    fn mouse_interaction(
        &self,
        _state: &(),
        bounds: Rectangle,
        cursor: iced::mouse::Cursor,
    ) -> iced::mouse::Interaction {
        match cursor
            .position_in(bounds)
            .and_then(|p| self.hit(p, bounds.size()))
        {
            Some(i) if self.nodes[i].1 => iced::mouse::Interaction::Pointer,
            _ => iced::mouse::Interaction::default(),
        }
    }

    fn draw(
        &self,
        _state: &(),
        renderer: &iced::Renderer,
        theme: &iced::Theme,
        bounds: Rectangle,
        _cursor: iced::mouse::Cursor,
    ) -> Vec<canvas::Geometry> {
        let mut frame = canvas::Frame::new(renderer, bounds.size());
        let pal = theme.extended_palette();
        let pos = node_positions(self.nodes.len(), bounds.size());
        for (a, b, label) in &self.links {
            let (pa, pb) = (pos[*a], pos[*b]);
            frame.stroke(
                &canvas::Path::line(pa, pb),
                canvas::Stroke::default()
                    .with_width(2.0)
                    .with_color(pal.background.strong.color),
            );
            if !label.is_empty() {
                frame.fill_text(canvas::Text {
                    content: label.clone(),
                    position: Point::new((pa.x + pb.x) / 2.0, (pa.y + pb.y) / 2.0 - 8.0),
                    color: pal.background.base.text,
                    size: 12.0.into(),
                    align_x: iced::widget::text::Alignment::Center,
                    align_y: iced::alignment::Vertical::Center,
                    ..canvas::Text::default()
                });
            }
        }
        for (i, ((label, is_host), c)) in self.nodes.iter().zip(&pos).enumerate() {
            let circle = canvas::Path::circle(*c, NODE_RADIUS);
            frame.fill(
                &circle,
                if *is_host {
                    pal.primary.weak.color
                } else {
                    pal.background.weak.color
                },
            );
            let focused = self.focus == Some(i);
            frame.stroke(
                &circle,
                canvas::Stroke::default()
                    .with_width(if focused { 4.0 } else { 1.5 })
                    .with_color(if focused {
                        pal.primary.strong.color
                    } else {
                        pal.background.strong.color
                    }),
            );
            frame.fill_text(canvas::Text {
                content: label.clone(),
                position: Point::new(c.x, c.y + NODE_RADIUS + 10.0),
                color: pal.background.base.text,
                size: 13.0.into(),
                align_x: iced::widget::text::Alignment::Center,
                align_y: iced::alignment::Vertical::Center,
                ..canvas::Text::default()
            });
        }
        vec![frame.into_geometry()]
    }
}
