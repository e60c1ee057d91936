//! The desktop app's state driven as a person would, for the `ui_*` test
//! files: `ui_test` starts a REAL broker (and, on request, the real daemons)
//! and re-runs the test as the `ui` role; [`Driver`] clicks and types
//! through the rendered widgets (`iced_test`) and carries out the app's
//! effects with its own `daemons::run` / `daemons::watch`.
//!
//! Shared by several test files (each uses part of it).
#![allow(dead_code)]

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use gatehouse_ipc::broker::BrokerEvent;
use gatehouse_tests::broker::{BrokerFixture, Options, UiChild};
use gatehouse_ui::app::{Effect, Message, Session, State};
use gatehouse_ui::approval::APPROVE_DELAY;
use gatehouse_ui::daemons::{self, Call, Daemons, Feed, Reply};
use gatehouse_ui::signin;
use iced::futures::StreamExt;
use iced_test::selector::{self, Candidate};
use iced_test::simulator;

pub const PASSPHRASE: &str = "ui-test-passphrase";

/// Runs `body` as the ui role: in the parent, starts a broker with an
/// account (signed out), runs `setup`, then re-runs `name` as `gatehouse-ui`.
pub fn ui_test(
    name: &str,
    setup: impl FnOnce(&BrokerFixture) -> Result<()>,
    body: impl FnOnce(&UiChild) -> Result<()>,
) -> Result<()> {
    ui_test_with(name, Options::default(), setup, body)
}

/// [`ui_test`] with fixture options (`real_sessiond`, `real_copilotd`, …;
/// `peer_as_ui` is always set).
pub fn ui_test_with(
    name: &str,
    opts: Options,
    setup: impl FnOnce(&BrokerFixture) -> Result<()>,
    body: impl FnOnce(&UiChild) -> Result<()>,
) -> Result<()> {
    ui_test_world(name, opts, |f| setup(f), body)
}

/// [`ui_test_with`] whose `setup` may change the fixture (start sessiond,
/// `lab up`): the daemons it starts keep running while the ui child runs.
pub fn ui_test_world(
    name: &str,
    opts: Options,
    setup: impl FnOnce(&mut BrokerFixture) -> Result<()>,
    body: impl FnOnce(&UiChild) -> Result<()>,
) -> Result<()> {
    if let Some(child) = UiChild::from_env() {
        return body(&child);
    }
    let mut f = start_fixture(opts)?;
    setup(&mut f)?;
    f.cli_ok(&["signout"], "")?;
    f.run_as_ui(name)
}

/// A broker (as `opts` ask, `peer_as_ui` set) with an account, signed in,
/// and the organization `acme`.
fn start_fixture(opts: Options) -> Result<BrokerFixture> {
    let f = BrokerFixture::start(Options {
        peer_as_ui: true,
        ..opts
    })?;
    f.cli_ok(
        &["account", "init", "--passphrase-stdin"],
        &format!("{PASSPHRASE}\n"),
    )?;
    f.cli_ok(&["org", "create", "acme"], "")?;
    Ok(f)
}

/// [`ui_test_with`] against the lab: the lab devices are brought up
/// (`lab up --log-data`: organization `lab`, hosts `r1` and `sw1`, every
/// byte they receive logged) and the real daemons `opts` asks for are
/// started before `setup`; the lab goes down when the test ends.
pub fn ui_test_lab(
    name: &str,
    opts: Options,
    setup: impl FnOnce(&mut BrokerFixture) -> Result<()>,
    body: impl FnOnce(&UiChild) -> Result<()>,
) -> Result<()> {
    if let Some(child) = UiChild::from_env() {
        return body(&child);
    }
    let (sessiond, copilotd) = (opts.real_sessiond, opts.real_copilotd);
    let mut f = start_fixture(opts)?;
    f.cli_ok(&["lab", "up", "--log-data"], "")?;
    let result = (|| {
        if sessiond {
            f.start_sessiond()?;
        }
        if copilotd {
            f.start_copilotd()?;
        }
        setup(&mut f)?;
        f.cli_ok(&["signout"], "")?;
        f.run_as_ui(name)
    })();
    let _ = f.cli(&["lab", "down"], "");
    result
}

/// The app state and a runtime that carries out its effects.
pub struct Driver {
    pub state: State,
    pub rt: tokio::runtime::Runtime,
    /// Replies of running watches (a shell's output, a chat turn).
    watched: tokio::sync::mpsc::UnboundedSender<Reply>,
    watch_rx: tokio::sync::mpsc::UnboundedReceiver<Reply>,
}

impl Driver {
    pub fn new(child: &UiChild) -> Result<Driver> {
        let daemons = Daemons::resolve(Some(&child.profile)).map_err(anyhow::Error::msg)?;
        if daemons.runtime() != child.runtime {
            bail!(
                "profile resolves to {:?}, broker is in {:?}",
                daemons.runtime(),
                child.runtime
            );
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (state, effects) = State::new(daemons, Instant::now());
        let (watched, watch_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut d = Driver {
            state,
            rt,
            watched,
            watch_rx,
        };
        d.apply(effects);
        // The window system gives the window focus (the real shell hears
        // it from winit; the approval guard counts only while focused).
        d.send(Message::WindowFocused(true));
        Ok(d)
    }

    /// Carries out effects as the shell would: calls at once (their
    /// replies handed to the app), watches in the background (their replies
    /// arrive through [`Driver::pump`]), follow-up messages in order.
    pub fn apply(&mut self, effects: Vec<Effect>) {
        for e in effects {
            match e {
                Effect::Call(c) => {
                    let r = self
                        .rt
                        .block_on(daemons::run(self.state.daemons.clone(), c));
                    let more = self.state.update(Message::Reply(r));
                    self.apply(more);
                }
                Effect::Watch(w) => {
                    let mut stream = daemons::watch(self.state.daemons.clone(), w);
                    let tx = self.watched.clone();
                    self.rt.spawn(async move {
                        while let Some(r) = stream.next().await {
                            if tx.send(r).is_err() {
                                return;
                            }
                        }
                    });
                }
                Effect::Then(m) => self.send(*m),
                Effect::Focus(_) => {}
            }
        }
    }

    /// Hands the app the replies of running watches until `done(state)`
    /// holds; fails after `within`.
    pub fn pump(&mut self, within: Duration, done: impl Fn(&State) -> bool) -> Result<()> {
        let deadline = Instant::now() + within;
        while !done(&self.state) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("not done within {within:?}");
            }
            // The timer is made inside the runtime (tokio needs its context).
            let rx = &mut self.watch_rx;
            let next = self
                .rt
                .block_on(async move { tokio::time::timeout(left, rx.recv()).await });
            match next {
                Ok(Some(r)) => self.send(Message::Reply(r)),
                Ok(None) => bail!("the watch channel closed"),
                Err(_) => bail!("not done within {within:?}"),
            }
        }
        Ok(())
    }

    pub fn send(&mut self, m: Message) {
        let effects = self.state.update(m);
        self.apply(effects);
    }

    pub fn tick(&mut self) {
        self.send(Message::Tick(Instant::now()));
    }

    /// Clicks the widget showing exactly `label`; returns how many messages
    /// the click produced (0: the button was inactive).
    pub fn click(&mut self, label: &str) -> Result<usize> {
        let msgs: Vec<Message> = {
            let mut ui = simulator(self.state.view());
            ui.click(label)
                .map_err(|e| anyhow::anyhow!("click {label:?}: {e}"))?;
            ui.into_messages().collect()
        };
        let n = msgs.len();
        for m in msgs {
            self.send(m);
        }
        Ok(n)
    }

    /// Clicks the widget showing exactly `label` in the screen (right of
    /// the sidebar, whose host tree may show the same name); returns how
    /// many messages the click produced.
    pub fn click_in_screen(&mut self, label: &str) -> Result<usize> {
        let msgs: Vec<Message> = {
            let mut ui = simulator(self.state.view());
            let want = label.to_string();
            let at = ui
                .find(move |c: Candidate<'_>| match c {
                    Candidate::Text {
                        content,
                        visible_bounds: Some(b),
                        ..
                    } if content == want && b.x > gatehouse_ui::app::SIDEBAR_WIDTH => {
                        Some(b.center())
                    }
                    _ => None,
                })
                .map_err(|e| anyhow::anyhow!("click {label:?} in the screen: {e}"))?;
            ui.point_at(at);
            let _ = ui.simulate(iced_test::simulator::click());
            ui.into_messages().collect()
        };
        let n = msgs.len();
        for m in msgs {
            self.send(m);
        }
        Ok(n)
    }

    /// Clicks the text field `id` and types `text`, then optionally Enter.
    pub fn type_into(&mut self, id: &'static str, text: &str, enter: bool) -> Result<()> {
        let msgs: Vec<Message> = {
            let mut ui = simulator(self.state.view());
            ui.click(selector::id(id))
                .map_err(|e| anyhow::anyhow!("focus {id}: {e}"))?;
            ui.typewrite(text);
            if enter {
                ui.tap_key(iced::keyboard::key::Named::Enter);
            }
            ui.into_messages().collect()
        };
        for m in msgs {
            self.send(m);
        }
        Ok(())
    }

    /// Whether some text on screen is exactly `s`.
    pub fn sees(&self, s: &str) -> bool {
        simulator(self.state.view()).find(s).is_ok()
    }

    /// Whether some text on screen contains `s`.
    pub fn sees_part(&self, s: &str) -> bool {
        let needle = s.to_string();
        simulator(self.state.view())
            .find(move |c: Candidate<'_>| match c {
                Candidate::Text { content, .. } if content.contains(&needle) => Some(()),
                _ => None,
            })
            .is_ok()
    }

    pub fn sign_in(&mut self) -> Result<()> {
        self.type_into(signin::PASSPHRASE_ID, PASSPHRASE, true)?;
        if self.state.session != Session::SignedIn {
            bail!("not signed in: {:?}", self.state.signin.error);
        }
        Ok(())
    }

    pub fn broker_signed_in(&self) -> Result<bool> {
        match self
            .rt
            .block_on(daemons::run(self.state.daemons.clone(), Call::Status))
        {
            Reply::Status(Ok(s)) => Ok(s.signed_in),
            other => bail!("status: {other:?}"),
        }
    }

    /// Waits for the next broker event on `sub` and hands it to the app.
    pub fn next_event(
        &mut self,
        sub: &mut gatehouse_ipc::client::Client<gatehouse_ipc::broker::Broker>,
    ) -> Result<BrokerEvent> {
        let e = self
            .rt
            .block_on(sub.next_event(Duration::from_secs(15)))?
            .context("no broker event within 15 s")?;
        self.send(Message::Feed(Feed::Event(e.clone())));
        Ok(e)
    }

    /// The log of every byte lab device `name` received (`ui_test_lab`).
    pub fn lab_log(&self, name: &str) -> std::path::PathBuf {
        self.state
            .daemons
            .layout()
            .root
            .join("lab")
            .join(format!("{name}.log.jsonl"))
    }

    /// Draws what is on screen (the frames the window would draw: the
    /// guard starts only once a card has been drawn), then waits out the
    /// type-ahead guard.
    pub fn wait_guard(&mut self) {
        for _ in 0..gatehouse_ui::approval::FRAMES_BEFORE_DRAWN {
            drop(simulator(self.state.view()));
            self.send(Message::Frame(Instant::now()));
        }
        std::thread::sleep(APPROVE_DELAY + Duration::from_millis(100));
        self.tick();
    }
}
