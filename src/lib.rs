//! The parts of the `wardmq` binary that its end-to-end tests use too.
//! Today: the dev PKI (`wardmq certs ...`) and the admin API's SigV4
//! verification (a library module so its fuzz target can reach it).

#![forbid(unsafe_code)]

pub mod pki;
pub mod sigv4;
