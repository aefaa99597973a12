//! tokio relay for MySQL targets.
use crate::relay::{Opener, Outcome, Peer, Proxy};
use std::sync::Arc;
use tokio::net::UnixStream;
use tokio::sync::watch;

/// Serve one MySQL client connection.
pub async fn handle(
    _proxy: Arc<Proxy>,
    _client: UnixStream,
    _peer: Peer,
    _open: Opener,
    _shutdown: watch::Receiver<bool>,
) -> Outcome {
    Outcome {
        reason: "error",
        error: Some("mysql: not yet".into()),
        recorded: false,
    }
}
