//! Errors a node can fail to start with, each saying what to change.

use mc_rt::net::TcpListener;
use mc_rt::tls;
use std::net::SocketAddr;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum NodeError {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot bind {what} on {addr}: {source}{hint}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
        hint: &'static str,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("{path}: {detail}")]
    State { path: String, detail: String },
}

pub(crate) fn bind_hint(e: &std::io::Error, port: u16) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::PermissionDenied if port < 1024 => {
            " (ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a higher port in the configuration)"
        }
        std::io::ErrorKind::AddrInUse => " (another process already uses this port)",
        std::io::ErrorKind::AddrNotAvailable => " (this address is not configured on any interface of this host)",
        _ => "",
    }
}

pub(crate) async fn bind_tcp(
    what: &'static str,
    addr: SocketAddr,
) -> Result<TcpListener, NodeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| NodeError::Bind {
            what,
            addr,
            hint: bind_hint(&source, addr.port()),
            source,
        })
}
