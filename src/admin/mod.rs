//! Admin HTTP API (AWS IoT REST-JSON).

pub mod sigv4;
