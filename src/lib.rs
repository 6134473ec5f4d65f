//! The parts of the `wardmq` binary that its end-to-end tests use too.
//! Today: the dev PKI (`wardmq certs ...`).

#![forbid(unsafe_code)]

pub mod pki;
