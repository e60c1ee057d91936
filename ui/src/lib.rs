//! Gatehouse desktop app (`gatehouse-ui`): an unprivileged client of the
//! broker with the `ui` role, drawn with iced's software renderer.
//!
//! Owns: the app state and its screens (sign-in, hosts, approvals) and the
//! one module that talks to the daemons. Must never: hold an org key or a
//! keychain payload, or decide anything the broker did not ask a person.

pub mod app;
pub mod approval;
pub mod daemons;
pub mod hosts;
pub mod shell;
pub mod signin;
