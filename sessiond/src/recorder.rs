//! One session's recording as the service uses it: a recording writer keyed
//! by the broker, shared between the session task and request handlers.
//!
//! Owns when chunks are sealed (size, or half a second since the last one)
//! and turning write errors into a log line rather than a dead session.
//! Must never: record keystrokes (they carry passwords), or block a session
//! on a failing disk.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use gatehouse_ipc::Layout;
use gatehouse_ipc::broker::{BrokerRequest, BrokerResponse};
use gatehouse_ipc::sessiond::{SessionKind, SessiondError};

use crate::broker_link::BrokerLink;
use crate::hosts::Host;
use gatehouse_recordings::{RecordingMeta, RecordingOptions, RecordingWriter};

const FLUSH_EVERY: Duration = Duration::from_millis(500);

/// What is being recorded: the session's kind, terminal and (exec) command.
#[derive(Debug, Clone, Copy)]
pub struct Recorded<'a> {
    pub kind: SessionKind,
    pub cols: u16,
    pub rows: u16,
    pub term: &'a str,
    pub command: Option<&'a str>,
}

pub struct Recorder {
    id: String,
    inner: Mutex<(Option<RecordingWriter>, Instant)>,
}

impl Recorder {
    pub async fn start(
        layout: &Layout,
        broker: &BrokerLink,
        host: &Host,
        what: &Recorded<'_>,
    ) -> Result<Recorder, SessiondError> {
        let Recorded {
            kind,
            cols,
            rows,
            term,
            command,
        } = *what;
        let id = gatehouse_recordings::new_recording_id()
            .map_err(|e| SessiondError::Internal(format!("recording id: {e}")))?;
        let key = match broker
            .call(BrokerRequest::RecordingKey {
                recording_id: id.clone(),
            })
            .await?
        {
            BrokerResponse::RecordingKey(k) => gatehouse_recordings::recording_key(&k)
                .map_err(|e| SessiondError::Broker(format!("recording key: {e}")))?,
            other => {
                return Err(SessiondError::Internal(format!(
                    "unexpected broker reply {other:?}"
                )));
            }
        };
        let meta = RecordingMeta {
            id: id.clone(),
            host: host.name.clone(),
            user: host.username.clone(),
            kind: kind.into(),
            started_ms: crate::audit::now_ms(),
            cols,
            rows,
        };
        // Title and command go only into the sealed asciicast header.
        let opts = RecordingOptions {
            term_type: Some(term.to_string()),
            title: Some(format!("{}@{}", host.username, host.name)),
            command: command.map(str::to_string),
            record_input: false,
        };
        let writer = RecordingWriter::create(
            &gatehouse_recordings::recordings_dir(layout),
            key,
            meta,
            opts,
        )
        .map_err(|e| SessiondError::Internal(format!("cannot create the recording: {e}")))?;
        Ok(Recorder {
            id,
            inner: Mutex::new((Some(writer), Instant::now())),
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn with(&self, f: impl FnOnce(&mut RecordingWriter) -> std::io::Result<()>) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (writer, last) = &mut *g;
        let Some(w) = writer.as_mut() else { return };
        let mut result = f(w);
        if result.is_ok() && last.elapsed() >= FLUSH_EVERY {
            result = w.flush();
            *last = Instant::now();
        }
        if let Err(e) = result {
            tracing::error!("recording {}: {e}; recording stopped", self.id);
            *writer = None;
        }
    }

    pub fn output(&self, data: &[u8]) {
        self.with(|w| w.output(data));
    }

    pub fn resize(&self, cols: u16, rows: u16) {
        self.with(|w| w.resize(cols, rows));
    }

    pub fn marker(&self, label: &str) {
        self.with(|w| w.marker(label));
    }

    pub fn exit(&self, status: Option<u32>) {
        self.with(|w| w.exit(status));
    }

    pub fn flush(&self) {
        self.with(|w| w.flush());
    }

    /// Seals the last chunk (marked final).
    pub fn finish(&self) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = g.0.take()
            && let Err(e) = w.finish().map(|_| ())
        {
            tracing::error!("recording {}: {e}", self.id);
        }
    }
}
