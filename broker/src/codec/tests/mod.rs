//! Codec tests: round trips, differential checks against mqttbytes, and
//! one test per class of malformed input.

#![allow(clippy::unwrap_used)]

mod differential;
mod malformed;
mod roundtrip;
mod strategies;
