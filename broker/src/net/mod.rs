//! Network listeners and the framed transport every connection uses.

#[cfg_attr(not(test), allow(dead_code, unused_imports))]
pub mod identity;
mod tcp;
// The device listener is wired in by the broker's owner; until then only the
// tests use these modules, so outside tests their items look unused.
#[cfg_attr(not(test), allow(dead_code, unused_imports))]
pub mod tls;
pub(crate) mod transport;

pub(crate) use tcp::listen_tcp;
pub(crate) use transport::Transport;
