//! The one accept loop every TLS listener runs: admit under the listener's caps, hand the
//! handshake to its own task (so a slow or hostile peer never holds up the next connection),
//! route by ALPN, serve.

use crate::listen::{CloseReason, Gate};
use mc_rt::net::{TcpListener, TcpStream};
use mc_rt::tls::{Router, ServerTlsStream, TlsError};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

/// Accepts on `listener` forever. A connection over one of `gate`'s caps is closed at once; one
/// that completes its handshake within `handshake` goes to `handle(alpn, stream, peer, gate)`;
/// one that does not is closed. Each is counted on `gate`, and holds its place under the caps
/// until `handle` returns.
pub(crate) async fn serve_tls<F, Fut>(
    listener: TcpListener,
    router: Router,
    gate: Gate,
    handshake: Duration,
    handle: F,
) where
    F: Fn(Vec<u8>, ServerTlsStream<TcpStream>, SocketAddr, Gate) -> Fut
        + Clone
        + Send
        + Sync
        + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    loop {
        let (tcp, peer) = match mc_rt::net::accept(&listener).await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: back off rather than spin.
                tracing::warn!(port, "accept failed: {e}");
                mc_rt::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let permit = match gate.admit(peer.ip()) {
            Ok(permit) => permit,
            Err(reason) => {
                tracing::debug!(port, client_addr = %peer, %reason, "refused a connection");
                drop(tcp);
                continue;
            }
        };
        let (router, handle) = (router.clone(), handle.clone());
        mc_rt::spawn(async move {
            match router.accept(tcp, peer, handshake).await {
                Ok((alpn, stream)) => handle(alpn, stream, peer, permit.gate().clone()).await,
                Err(e) => {
                    permit.gate().count(match e {
                        TlsError::HandshakeTimeout { .. } => CloseReason::HandshakeTimeout,
                        _ => CloseReason::HandshakeFailed,
                    });
                    tracing::debug!(
                        port,
                        client_addr = %peer,
                        "refused a connection: {}",
                        without_peer(&e)
                    )
                }
            }
            drop(permit);
        });
    }
}

/// Why a connection was refused, without the peer's address: that goes in the `client_addr`
/// field (whoever connects may be a participant), which a redacting log hides.
fn without_peer(e: &TlsError) -> String {
    match e {
        TlsError::Handshake { detail, .. } => format!("TLS handshake: {detail}"),
        TlsError::HandshakeTimeout { after_ms, .. } => {
            format!("TLS handshake not completed within {after_ms} ms")
        }
        TlsError::NoRoute { offered, .. } => {
            format!("it offered ALPN {offered:?}, which this port does not serve")
        }
        other => other.to_string(),
    }
}
