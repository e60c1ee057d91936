//! A client that stays non-dumpable and is still identified by the servers.
//!
//! Gatehouse servers identify a peer by its `/proc/PID/exe`, which the kernel
//! lets them read only while the peer is dumpable. A client that holds or
//! waits on a secret (the app, the CLI during `exec --request` and `connect`)
//! turns non-dumpable with [`stay_non_dumpable`]; from then on every
//! [`crate::client::Client::connect`] opens a [`Window`]: the process is
//! dumpable from the connect until the server's Welcome (the server has
//! identified it by then), and non-dumpable again when the last open window
//! closes. Must never: leave the process dumpable after the last window, or
//! make dumpable a process that did not opt in.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

static STAYS: AtomicBool = AtomicBool::new(false);
/// Handshakes in flight (a window is open while this is above zero).
static OPEN: Mutex<usize> = Mutex::new(0);

/// Makes this process non-dumpable now and after every later handshake.
pub fn stay_non_dumpable() -> nix::Result<()> {
    STAYS.store(true, Ordering::SeqCst);
    let open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
    if *open == 0 {
        nix::sys::prctl::set_dumpable(false)?;
    }
    Ok(())
}

/// Whether this process asked to stay non-dumpable.
pub fn stays_non_dumpable() -> bool {
    STAYS.load(Ordering::SeqCst)
}

/// An open identification window (see the module docs); closes on drop.
pub struct Window {
    opened: bool,
}

/// Opens a window for one handshake (nothing unless the process opted in).
pub fn window() -> Window {
    if !stays_non_dumpable() {
        return Window { opened: false };
    }
    let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
    if *open == 0 {
        // A failure leaves the process non-dumpable: the server then
        // refuses to identify it and says so.
        let _ = nix::sys::prctl::set_dumpable(true);
    }
    *open += 1;
    Window { opened: true }
}

impl Drop for Window {
    fn drop(&mut self) {
        if !self.opened {
            return;
        }
        let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
        *open = open.saturating_sub(1);
        if *open == 0 {
            let _ = nix::sys::prctl::set_dumpable(false);
        }
    }
}
