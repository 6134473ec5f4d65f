//! Loopback handshake tests.
