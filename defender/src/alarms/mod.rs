//! Alarms: the per-(thing, behaviour) state machine that turns judged
//! datapoints into violation events, and the violation IDs it hands out.
//! Pure logic; storage and alert sinks live elsewhere.

pub mod ids;
pub mod state;

pub use ids::{ViolationId, ViolationIdGen};
pub use state::{AlarmBook, AlarmConfig, AlarmKey, VerificationError};

#[cfg(test)]
mod bench;
#[cfg(test)]
mod spec_cases;
