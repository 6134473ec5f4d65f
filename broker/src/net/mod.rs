//! Network listeners and the framed transport every connection uses.

mod admission;
mod handshake_pool;
pub mod identity;
mod tcp;
pub mod tls;
mod tls_listener;
pub(crate) mod transport;

pub(crate) use admission::Admission;
pub(crate) use tcp::listen_tcp;
pub(crate) use tls_listener::{follow_registry, listen_tls, snapshot_from};
pub(crate) use transport::Transport;
