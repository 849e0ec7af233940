//! The one accept loop every TLS listener runs: accept, hand the handshake to its own task (so a
//! slow or hostile peer never holds up the next connection), route by ALPN, serve.

use mc_rt::net::{TcpListener, TcpStream};
use mc_rt::tls::{Router, ServerTlsStream, TlsError};
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

/// Accepts on `listener` forever. Each connection that completes its handshake within `handshake`
/// goes to `handle(alpn, stream, peer)`; one that does not is closed and logged.
pub(crate) async fn serve_tls<F, Fut>(
    listener: TcpListener,
    router: Router,
    handshake: Duration,
    handle: F,
) where
    F: Fn(Vec<u8>, ServerTlsStream<TcpStream>, SocketAddr) -> Fut + Clone + Send + Sync + 'static,
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
        let (router, handle) = (router.clone(), handle.clone());
        mc_rt::spawn(async move {
            match router.accept(tcp, peer, handshake).await {
                Ok((alpn, stream)) => handle(alpn, stream, peer).await,
                Err(e) => tracing::debug!(
                    port,
                    client_addr = %peer,
                    "refused a connection: {}",
                    without_peer(&e)
                ),
            }
        });
    }
}

/// Why a connection was refused, without the peer's address: that goes in the `client_addr`
/// field (whoever connects may be a participant), which a redacting log hides.
fn without_peer(e: &TlsError) -> String {
    match e {
        TlsError::Handshake { detail, .. } => format!("TLS handshake: {detail}"),
        TlsError::NoRoute { offered, .. } => {
            format!("it offered ALPN {offered:?}, which this port does not serve")
        }
        other => other.to_string(),
    }
}
