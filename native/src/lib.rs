//! The influence model of `scoring/`, compiled, for the embedded engine.
//!
//! The Python package stays the specification and the core the Kafka workers run; this is its
//! twin for replays, rule for rule and operation for operation, so both give the same bits
//! (tests/test_native.py compares them on every output). The core below knows nothing of
//! Python and is tested alone (`cargo test`); `bindings` (feature `python`, turned on by pip)
//! makes it the extension `scoring._native`: Python hands in its frozen `Model`, and gets back
//! the same `Emitted` / `ScoreChange` records the Python engine returns.

pub mod acting;
pub mod clock;
pub mod engine;
pub mod event;
pub mod history;
pub mod json_out;
pub mod mass;
pub mod model;
pub mod ordered;
pub mod outputs;
pub mod quality;
pub mod receiving;
pub mod score;
pub mod sketch;
pub mod state;
pub mod stored;
pub mod topics;
pub mod windows;

#[cfg(feature = "python")]
mod bindings;
