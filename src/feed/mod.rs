//! Where frames come from: recordings on disk now, live sockets later.

pub mod recording;
pub mod synthetic;
pub mod tls;
