//! Network listeners and the framed transport every connection uses.

mod tcp;
pub(crate) mod transport;

pub(crate) use tcp::listen_tcp;
pub(crate) use transport::Transport;
