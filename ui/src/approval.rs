//! The approval card: what a person approves, rejects or edits.
//!
//! Owns: the pending requests (from `ListApprovals`), the card on screen (the
//! exact command in a monospace block, host, organization, credential
//! context, class with the classifier's reasons, expected effect, who is
//! asking), the type-ahead guard ([`APPROVE_DELAY`]), the second confirmation
//! for dangerous actions with the account passphrase as proof of presence
//! (sent with the decision; the broker verifies it and, on an installed
//! system, refuses a dangerous approval without it), reject reasons and
//! edits (an edit is a new request
//! the broker classifies again; its card is shown fresh, guard and all).
//!
//! The guard counts only time during which the card is *seen*: the app
//! tells this screen whether it is on screen in a focused window
//! ([`Approvals::set_seen`]) and when the window draws a frame
//! ([`Approvals::frame`]). The count starts only once a frame drawn *after*
//! that exact card became current has reached the screen — the second
//! frame after it (the first may be a redraw that was already under way
//! with the old screen, [`FRAMES_BEFORE_DRAWN`]) — so a slow or stalled
//! window, whose key presses queue up, cannot approve a card that was never
//! drawn. It restarts when another card (or a changed request) takes its
//! place, and is lost the moment the screen is hidden or the window loses
//! focus.
//!
//! Must never: approve anything the person did not see — on screen, in the
//! focused window, unchanged — for at least [`APPROVE_DELAY`] (buttons and
//! shortcuts alike), approve a dangerous action on one press, give the
//! Approve button focus, or classify a command itself (the class shown is
//! the broker's).

use std::time::{Duration, Instant};

use gatehouse_ipc::broker::{ApprovalState, ApprovalView, Decision, OrgInfo};
use iced::widget::{button, column, container, row, scrollable, text, text_input};
use iced::{Element, Fill};

use crate::daemons::Call;
use crate::presence::{Typed, passphrase_input, refusal};

/// How long a card (or the dangerous confirmation) must have been seen
/// without interruption — on the approvals screen, in the focused window,
/// unchanged — before Approve becomes active: a keystroke meant for another
/// window or screen cannot approve what just appeared.
pub const APPROVE_DELAY: Duration = Duration::from_millis(800);

/// Frames the window must draw after a card becomes seen before its guard
/// starts: the first may have begun before the update that showed the card.
pub const FRAMES_BEFORE_DRAWN: u8 = 2;

/// The id of the reject-reason field.
pub const REJECT_ID: &str = "reject-reason";
/// The id of the edit field.
pub const EDIT_ID: &str = "edit-command";
/// The id of the passphrase field of the dangerous confirmation.
pub const PASSPHRASE_ID: &str = "presence-passphrase";

/// What the card is doing besides showing the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Showing,
    Rejecting { reason: String },
    Editing { command: String },
}

#[derive(Debug)]
pub struct Card {
    pub view: ApprovalView,
    /// Since when this card has been seen without interruption (the guard
    /// counts from here); `None` while it is not on screen in the focused
    /// window.
    pub seen_since: Option<Instant>,
    /// Frames drawn since `seen_since` (up to [`FRAMES_BEFORE_DRAWN`]).
    pub frames_seen: u8,
    /// When the frame that first showed this card reached the screen: the
    /// guard counts from here.
    pub drawn_since: Option<Instant>,
    pub mode: Mode,
    /// Set by the first Approve of a dangerous action: the second,
    /// deliberate confirmation is shown (with its own delay).
    pub confirming_since: Option<Instant>,
    /// A decision is on its way.
    pub busy: bool,
    /// Why the last decision failed (shown on the card).
    pub error: Option<String>,
    /// The account passphrase typed into the dangerous confirmation (proof
    /// of presence); zeroized when sent or dropped.
    pub passphrase: Typed,
}

impl Card {
    /// A card for `view`; `seen` says whether it is on screen in the focused
    /// window from `now` on.
    pub fn new(view: ApprovalView, seen: bool, now: Instant) -> Card {
        Card {
            view,
            seen_since: seen.then_some(now),
            frames_seen: 0,
            drawn_since: None,
            mode: Mode::Showing,
            confirming_since: None,
            busy: false,
            error: None,
            passphrase: Typed::default(),
        }
    }

    pub fn dangerous(&self) -> bool {
        self.view.class == "dangerous"
    }

    /// Whether Approve is active at `now`: the card has been on screen,
    /// drawn, for the whole of the last [`APPROVE_DELAY`].
    pub fn armed(&self, now: Instant) -> bool {
        !self.busy
            && self.mode == Mode::Showing
            && self.seen_since.is_some()
            && self
                .drawn_since
                .is_some_and(|t| now.saturating_duration_since(t) >= APPROVE_DELAY)
    }

    /// (Re)starts the guard: seen from `since` (or not seen), nothing drawn yet.
    fn restart_guard(&mut self, since: Option<Instant>) {
        self.seen_since = since;
        self.frames_seen = 0;
        self.drawn_since = None;
    }

    /// The window drew a frame (its redraw began at `at`): the second one
    /// while the card is seen puts it on screen ([`FRAMES_BEFORE_DRAWN`]).
    pub fn frame(&mut self, at: Instant) {
        if self.awaiting_frame() {
            self.frames_seen += 1;
            if self.frames_seen >= FRAMES_BEFORE_DRAWN {
                self.drawn_since = Some(at.max(self.seen_since.unwrap_or(at)));
            }
        }
    }

    /// Whether the card is seen but its first frame has not reached the
    /// screen yet (the app listens to frames only then).
    pub fn awaiting_frame(&self) -> bool {
        self.seen_since.is_some() && self.drawn_since.is_none()
    }

    /// Whether the dangerous confirmation is active at `now`.
    pub fn confirm_armed(&self, now: Instant) -> bool {
        self.armed(now)
            && self
                .confirming_since
                .is_some_and(|t| now.saturating_duration_since(t) >= APPROVE_DELAY)
    }
}

impl Card {
    /// Whether the card is waiting out a guard delay (the clock must tick
    /// so the button turns active when the delay is over).
    pub fn guard_running(&self, now: Instant) -> bool {
        let waiting = |since: Instant| now.saturating_duration_since(since) < APPROVE_DELAY;
        !self.busy
            && (self.awaiting_frame()
                || self.drawn_since.is_some_and(waiting)
                || self.confirming_since.is_some_and(waiting))
    }

    /// The card is (or is no longer) seen at `now`. Hiding it loses the
    /// time counted so far and withdraws a dangerous confirmation.
    fn set_seen(&mut self, seen: bool, now: Instant) {
        match (seen, self.seen_since) {
            (true, None) => self.restart_guard(Some(now)),
            (false, Some(_)) => {
                self.restart_guard(None);
                self.confirming_since = None;
            }
            _ => {}
        }
    }
}

#[derive(Debug, Default)]
pub struct Approvals {
    pub pending: Vec<ApprovalView>,
    pub card: Option<Card>,
    /// Why the list could not be loaded.
    pub error: Option<String>,
    /// The last outcome ("Approved #3", "Edited #3 → #4: classified again").
    pub notice: Option<String>,
    /// Whether this screen is on screen in the focused window (the app
    /// says so through [`Approvals::set_seen`]).
    pub seen: bool,
}

#[derive(Debug, Clone)]
pub enum Message {
    Open(u64),
    Approve,
    ConfirmDangerous,
    StartReject,
    RejectReason(String),
    SubmitReject,
    StartEdit,
    EditCommand(String),
    SubmitEdit,
    /// The passphrase field of the dangerous confirmation.
    Passphrase(String),
    /// Leaves reject/edit/confirmation (Escape).
    Cancel,
    Refresh,
}

impl Approvals {
    pub fn update(&mut self, msg: Message, now: Instant) -> Option<Call> {
        if let Message::Refresh = msg {
            return Some(Call::ListApprovals);
        }
        if let Message::Open(id) = msg {
            let view = self.pending.iter().find(|v| v.id == id)?.clone();
            if self.card.as_ref().is_some_and(|c| c.view.id == id) {
                return None;
            }
            self.card = Some(Card::new(view, self.seen, now));
            return None;
        }
        let card = self.card.as_mut()?;
        if card.busy {
            return None;
        }
        // Nothing is decided on a card that is not on screen.
        if matches!(msg, Message::Approve | Message::ConfirmDangerous) && !self.seen {
            return None;
        }
        let id = card.view.id;
        match msg {
            Message::Approve => {
                if !card.armed(now) {
                    return None;
                }
                if card.dangerous() {
                    if card.confirming_since.is_none() {
                        card.confirming_since = Some(now);
                    }
                    return None;
                }
                card.busy = true;
                Some(Call::Decide {
                    id,
                    decision: Decision::Approve,
                    presence: None,
                })
            }
            Message::ConfirmDangerous => {
                if !card.dangerous() || !card.confirm_armed(now) {
                    return None;
                }
                card.busy = true;
                // Empty: sent without (a development build asks none; an
                // installed broker refuses and the card says why).
                let presence = card.passphrase.take();
                Some(Call::Decide {
                    id,
                    decision: Decision::Approve,
                    presence,
                })
            }
            Message::Passphrase(p) => {
                card.passphrase.set(p);
                None
            }
            Message::StartReject => {
                card.confirming_since = None;
                card.mode = Mode::Rejecting {
                    reason: String::new(),
                };
                None
            }
            Message::RejectReason(r) => {
                if let Mode::Rejecting { reason } = &mut card.mode {
                    *reason = r;
                }
                None
            }
            Message::SubmitReject => {
                let Mode::Rejecting { reason } = &card.mode else {
                    return None;
                };
                let reason = if reason.trim().is_empty() {
                    "rejected in the Gatehouse app".to_string()
                } else {
                    reason.trim().to_string()
                };
                card.busy = true;
                Some(Call::Decide {
                    id,
                    decision: Decision::Reject { reason },
                    presence: None,
                })
            }
            Message::StartEdit => {
                card.confirming_since = None;
                card.mode = Mode::Editing {
                    command: card.view.action.command.clone(),
                };
                None
            }
            Message::EditCommand(c) => {
                if let Mode::Editing { command } = &mut card.mode {
                    *command = c;
                }
                None
            }
            Message::SubmitEdit => {
                let Mode::Editing { command } = &card.mode else {
                    return None;
                };
                if command.trim().is_empty() {
                    card.error = Some("the edited command is empty".into());
                    return None;
                }
                card.busy = true;
                Some(Call::Decide {
                    id,
                    decision: Decision::Edit {
                        command: command.clone(),
                    },
                    presence: None,
                })
            }
            Message::Cancel => {
                card.mode = Mode::Showing;
                card.confirming_since = None;
                card.passphrase = Typed::default();
                // Leaving a sub-mode re-arms the guard: Approve is not one
                // keystroke away from Escape.
                card.restart_guard(self.seen.then_some(now));
                None
            }
            Message::Open(_) | Message::Refresh => None,
        }
    }

    /// The pending list arrived.
    pub fn listed(&mut self, result: Result<Vec<ApprovalView>, String>, now: Instant) {
        match result {
            Err(e) => self.error = Some(e),
            Ok(all) => {
                self.error = None;
                self.pending = all
                    .into_iter()
                    .filter(|v| v.state == ApprovalState::Pending)
                    .collect();
                // A card decided elsewhere (the CLI, another window) goes away.
                if let Some(card) = &self.card
                    && !card.busy
                {
                    match self.pending.iter().find(|v| v.id == card.view.id) {
                        None => {
                            self.notice = Some(format!(
                                "Request #{} was decided elsewhere or expired",
                                card.view.id
                            ));
                            self.card = None;
                        }
                        // The same id with different content is a different
                        // request as far as the guard is concerned.
                        Some(v) if *v != card.view => {
                            self.card = Some(Card::new(v.clone(), self.seen, now));
                        }
                        Some(_) => {}
                    }
                }
                if self.card.is_none()
                    && let Some(first) = self.pending.first()
                {
                    self.card = Some(Card::new(first.clone(), self.seen, now));
                }
            }
        }
    }

    /// One request arrived (the new request after an edit).
    pub fn shown(&mut self, result: Result<ApprovalView, String>, now: Instant) {
        match result {
            Ok(view) => {
                if view.state == ApprovalState::Pending
                    && !self.pending.iter().any(|v| v.id == view.id)
                {
                    self.pending.push(view.clone());
                }
                self.card = Some(Card::new(view, self.seen, now));
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// The broker's answer to our decision on `id`; returns the follow-up calls.
    pub fn decided(
        &mut self,
        id: u64,
        result: Result<(ApprovalState, Option<u64>), String>,
    ) -> Vec<Call> {
        let Some(card) = self.card.as_mut().filter(|c| c.view.id == id) else {
            return vec![Call::ListApprovals];
        };
        card.busy = false;
        match result {
            Err(e) => {
                card.error = Some(e);
                vec![Call::ListApprovals]
            }
            Ok((state, new_id)) => {
                self.pending.retain(|v| v.id != id);
                self.card = None;
                self.notice = Some(match (state, new_id) {
                    (ApprovalState::Approved, _) => format!("Approved #{id}"),
                    (ApprovalState::Rejected, _) => format!("Rejected #{id}"),
                    (ApprovalState::Edited, Some(n)) => {
                        format!("Edited #{id}: new request #{n}, classified again")
                    }
                    (other, _) => format!("#{id}: {other:?}"),
                });
                match new_id {
                    Some(n) => vec![Call::ShowApproval(n), Call::ListApprovals],
                    None => vec![Call::ListApprovals],
                }
            }
        }
    }

    pub fn clear(&mut self) {
        *self = Approvals::default();
    }

    /// Whether this screen is on screen in the focused window from `now`
    /// on. The app calls it after every message; the card's guard counts
    /// only while it is true.
    pub fn set_seen(&mut self, seen: bool, now: Instant) {
        self.seen = seen;
        if let Some(card) = &mut self.card {
            card.set_seen(seen, now);
        }
    }

    /// The window drew a frame (the redraw began at `at`): counts toward
    /// the card's [`FRAMES_BEFORE_DRAWN`] while it is seen.
    pub fn frame(&mut self, at: Instant) {
        if let Some(card) = &mut self.card {
            card.frame(at);
        }
    }

    /// Whether the app must listen to the window's frames (a seen card
    /// waits for its first frame).
    pub fn awaiting_frame(&self) -> bool {
        self.card.as_ref().is_some_and(Card::awaiting_frame)
    }

    /// The screen; `orgs` names the organizations (the card shows names,
    /// not ids).
    pub fn view<'a>(&'a self, now: Instant, orgs: &[OrgInfo]) -> Element<'a, Message> {
        let mut col = column![].spacing(10);
        if let Some(n) = &self.notice {
            col = col.push(text(n.clone()).style(text::success));
        }
        if let Some(e) = &self.error {
            col = col.push(text(format!("Approvals: {e}")).style(text::danger));
        }
        let mut list = row![text(format!("{} pending", self.pending.len()))].spacing(6);
        for v in &self.pending {
            let current = self.card.as_ref().is_some_and(|c| c.view.id == v.id);
            let b = button(
                text(format!(
                    "#{} {} ({}) {}",
                    v.id,
                    v.action.host,
                    org_name(orgs, &v.action.org),
                    v.class
                ))
                .size(13),
            );
            list = list.push(if current {
                b
            } else {
                b.style(button::secondary).on_press(Message::Open(v.id))
            });
        }
        col = col.push(
            scrollable(list).direction(scrollable::Direction::Horizontal(
                scrollable::Scrollbar::default(),
            )),
        );
        match &self.card {
            None => col.push(text("No request is waiting for you.")),
            Some(card) => col.push(card_view(card, now, org_name(orgs, &card.view.action.org))),
        }
        .into()
    }
}

fn field<'a>(label: &'a str, value: String) -> Element<'a, Message> {
    row![
        text(label).width(170).style(text::secondary),
        text(value).width(Fill)
    ]
    .spacing(8)
    .into()
}

/// How the card names organization `org` (an id or a name): its name; the
/// text as given when no organization has it.
pub fn org_name(orgs: &[OrgInfo], org: &str) -> String {
    orgs.iter()
        .find(|o| o.id == org || o.name == org)
        .map_or_else(|| org.to_string(), |o| o.name.clone())
}

/// The card itself; `org` is the organization as [`org_name`] names it.
pub fn card_view(card: &Card, now: Instant, org: String) -> Element<'_, Message> {
    let v = &card.view;
    let a = &v.action;
    let class_style = match v.class.as_str() {
        "dangerous" => text::danger,
        "read-only" => text::success,
        _ => text::warning,
    };
    let mut col = column![
        row![
            text(format!("Approval request #{}", v.id)).size(22),
            text(v.class.to_uppercase()).size(22).style(class_style),
        ]
        .spacing(16),
        container(text(a.command.clone()).font(crate::MONO).size(15))
            .padding(10)
            .width(Fill)
            .style(container::bordered_box),
        field("Host", format!("{} ({})", a.host, a.vendor)),
        field("Organization", org),
        field(
            "Credential",
            a.credential
                .clone()
                .unwrap_or_else(|| "none (no credential)".into())
        ),
        field("Class", v.class.clone()),
    ]
    .spacing(8);
    for r in &v.reasons {
        col = col.push(field("Reason", r.clone()));
    }
    col = col
        .push(field("Expected effect", a.expected_effect.clone()))
        .push(field(
            "Asked by",
            format!(
                "{} (pid {}, {})",
                v.requester.role, v.requester.pid, v.requester.exe
            ),
        ));
    if let Some(e) = &card.error {
        col = col.push(refusal("Decision", e));
    }
    let armed = card.armed(now);
    match &card.mode {
        Mode::Showing => {
            let approve_label = if armed {
                "Approve (Alt+A)".to_string()
            } else {
                "Approve (wait…)".to_string()
            };
            // Buttons never take keyboard focus in iced: Enter or Space
            // typed ahead cannot press Approve.
            let mut actions = row![
                button(text(approve_label))
                    .style(button::success)
                    .on_press_maybe(armed.then_some(Message::Approve)),
                button(text("Reject (Alt+R)"))
                    .style(button::danger)
                    .on_press_maybe((!card.busy).then_some(Message::StartReject)),
                button(text("Edit (Alt+E)"))
                    .style(button::secondary)
                    .on_press_maybe((!card.busy).then_some(Message::StartEdit)),
            ]
            .spacing(10);
            if card.dangerous() && card.confirming_since.is_some() {
                let ok = card.confirm_armed(now);
                actions = actions.push(passphrase_input(
                    PASSPHRASE_ID,
                    &card.passphrase,
                    Message::Passphrase,
                    ok.then_some(Message::ConfirmDangerous),
                ));
                actions = actions.push(
                    button(text(format!(
                        "Yes, run this DANGEROUS command on {} (Alt+Y)",
                        a.host
                    )))
                    .style(button::danger)
                    .on_press_maybe(ok.then_some(Message::ConfirmDangerous)),
                );
            }
            col = col.push(actions);
            if card.dangerous() {
                col = col.push(
                    text("Dangerous: approving needs a second, deliberate confirmation with the account passphrase.")
                        .style(text::danger),
                );
            }
        }
        Mode::Rejecting { reason } => {
            col = col.push(
                row![
                    text_input("Why? (optional)", reason)
                        .id(REJECT_ID)
                        .on_input(Message::RejectReason)
                        .on_submit(Message::SubmitReject)
                        .padding(6),
                    button(text("Reject request"))
                        .style(button::danger)
                        .on_press_maybe((!card.busy).then_some(Message::SubmitReject)),
                    button(text("Back (Esc)"))
                        .style(button::secondary)
                        .on_press(Message::Cancel),
                ]
                .spacing(8),
            );
        }
        Mode::Editing { command } => {
            col = col.push(text(
                "The edited command becomes a new request: the broker classifies it again and it needs its own approval.",
            ));
            col = col.push(
                row![
                    text_input("Command", command)
                        .id(EDIT_ID)
                        .font(crate::MONO)
                        .on_input(Message::EditCommand)
                        .on_submit(Message::SubmitEdit)
                        .padding(6),
                    button(text("Submit edit"))
                        .on_press_maybe((!card.busy).then_some(Message::SubmitEdit)),
                    button(text("Back (Esc)"))
                        .style(button::secondary)
                        .on_press(Message::Cancel),
                ]
                .spacing(8),
            );
        }
    }
    container(col)
        .padding(14)
        .width(Fill)
        .style(container::rounded_box)
        .into()
}

#[cfg(test)]
mod tests {
    //! The guard's arithmetic on the screen state alone (the real window is
    //! driven in tests/tests/ui_window.rs).
    use super::*;
    use gatehouse_ipc::PeerRole;
    use gatehouse_ipc::broker::{Action, Requester};

    fn view(id: u64, command: &str, class: &str) -> ApprovalView {
        ApprovalView {
            id,
            action: Action {
                host: "r1".into(),
                vendor: "routeros".into(),
                org: "lab".into(),
                credential: None,
                command: command.into(),
                expected_effect: String::new(),
            },
            requester: Requester {
                role: PeerRole::Cli,
                pid: 1,
                exe: "/x/gatehouse".into(),
            },
            class: class.into(),
            reasons: vec![],
            state: ApprovalState::Pending,
            created_ms: 0,
            decided_by: None,
            replaced_by: None,
            reject_reason: None,
            autopilot: None,
        }
    }

    fn approves(a: &mut Approvals, now: Instant) -> bool {
        matches!(
            a.update(Message::Approve, now),
            Some(Call::Decide {
                decision: Decision::Approve,
                ..
            })
        )
    }

    const LONG: Duration = Duration::from_millis(1500);

    /// The window draws the frames that put the current card on screen.
    fn drawn(a: &mut Approvals, at: Instant) {
        for _ in 0..FRAMES_BEFORE_DRAWN {
            a.frame(at);
        }
    }

    #[test]
    fn a_card_seen_but_never_drawn_is_never_approved() {
        // A stalled window: the card became current (keys queued), time
        // passed, but no frame reached the screen, or only the one that
        // was already under way with the old screen.
        let t0 = Instant::now();
        let mut a = Approvals::default();
        a.set_seen(true, t0);
        a.listed(Ok(vec![view(1, "/ip address add", "moderate")]), t0);
        assert!(!approves(&mut a, t0 + LONG * 10), "no frame at all");
        a.frame(t0 + LONG);
        assert!(!approves(&mut a, t0 + LONG * 10), "one frame only");
        assert!(a.awaiting_frame(), "the app must keep listening to frames");
        // The second frame shows it: the guard counts from that frame.
        let shown = t0 + LONG * 10;
        a.frame(shown);
        assert!(!a.awaiting_frame());
        assert!(!approves(
            &mut a,
            shown + APPROVE_DELAY - Duration::from_millis(1)
        ));
        assert!(approves(&mut a, shown + APPROVE_DELAY));
    }

    #[test]
    fn time_listed_but_not_seen_does_not_count() {
        let t0 = Instant::now();
        let mut a = Approvals::default();
        a.listed(Ok(vec![view(1, "/ip address add", "moderate")]), t0);
        assert!(!approves(&mut a, t0 + LONG), "never seen");
        a.set_seen(true, t0 + LONG);
        drawn(&mut a, t0 + LONG);
        assert!(!approves(&mut a, t0 + LONG + Duration::from_millis(5)));
        assert!(approves(&mut a, t0 + LONG + APPROVE_DELAY));
    }

    #[test]
    fn hiding_the_card_loses_the_time_counted() {
        let t0 = Instant::now();
        let mut a = Approvals::default();
        a.set_seen(true, t0);
        a.listed(Ok(vec![view(1, "/ip address add", "moderate")]), t0);
        drawn(&mut a, t0);
        a.set_seen(false, t0 + Duration::from_millis(700));
        a.set_seen(true, t0 + Duration::from_millis(750));
        drawn(&mut a, t0 + Duration::from_millis(750));
        assert!(!approves(&mut a, t0 + Duration::from_millis(900)));
        // Not seen at all: no decision however long it has been.
        a.set_seen(false, t0 + Duration::from_millis(900));
        assert!(!approves(&mut a, t0 + LONG * 4));
    }

    #[test]
    fn a_changed_request_under_the_same_id_restarts_the_guard() {
        let t0 = Instant::now();
        let mut a = Approvals::default();
        a.set_seen(true, t0);
        a.listed(Ok(vec![view(1, "/ip address add", "moderate")]), t0);
        drawn(&mut a, t0);
        let later = t0 + APPROVE_DELAY + Duration::from_millis(50);
        a.listed(Ok(vec![view(1, "/system reboot", "dangerous")]), later);
        assert!(!approves(&mut a, later + Duration::from_millis(10)));
        assert_eq!(
            a.card.as_ref().map(|c| c.view.class.as_str()),
            Some("dangerous")
        );
    }

    #[test]
    fn losing_focus_withdraws_a_dangerous_confirmation() {
        let t0 = Instant::now();
        let mut a = Approvals::default();
        a.set_seen(true, t0);
        a.listed(Ok(vec![view(1, "/system reboot", "dangerous")]), t0);
        drawn(&mut a, t0);
        let t1 = t0 + APPROVE_DELAY;
        assert!(
            a.update(Message::Approve, t1).is_none(),
            "first press asks again"
        );
        assert!(
            a.card
                .as_ref()
                .is_some_and(|c| c.confirming_since.is_some())
        );
        a.set_seen(false, t1 + Duration::from_millis(10));
        a.set_seen(true, t1 + Duration::from_millis(20));
        assert!(
            a.card
                .as_ref()
                .is_some_and(|c| c.confirming_since.is_none())
        );
        let t2 = t1 + LONG;
        assert!(a.update(Message::ConfirmDangerous, t2).is_none());
    }

    #[test]
    fn a_dangerous_confirmation_carries_the_typed_passphrase_once() {
        let t0 = Instant::now();
        let mut a = Approvals::default();
        a.set_seen(true, t0);
        a.listed(Ok(vec![view(1, "/system reboot", "dangerous")]), t0);
        drawn(&mut a, t0);
        let t1 = t0 + APPROVE_DELAY;
        assert!(a.update(Message::Approve, t1).is_none());
        a.update(Message::Passphrase("correct horse".into()), t1);
        let debug = format!("{:?}", a.card);
        assert!(!debug.contains("correct horse"), "{debug}");
        let call = a.update(Message::ConfirmDangerous, t1 + LONG);
        let Some(Call::Decide {
            decision: Decision::Approve,
            presence: Some(p),
            ..
        }) = call
        else {
            panic!("no decision with presence: {call:?}");
        };
        assert_eq!(p.expose(), b"correct horse");
        // Sent once: the field is empty again.
        assert!(a.card.as_ref().is_some_and(|c| c.passphrase.is_empty()));
        // Refused (wrong or missing passphrase): the card shows why and
        // asks again; nothing is sent without a new confirmation.
        a.decided(1, Err("a dangerous request needs proof of presence".into()));
        assert!(
            a.card
                .as_ref()
                .and_then(|c| c.error.as_deref())
                .is_some_and(|e| e.contains("proof of presence"))
        );
    }
}
