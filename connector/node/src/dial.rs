//! What every dialled link shares: connecting by name over TLS, and sleeping until a deadline a
//! core named.

use mc_rt::net::TcpStream;
use mc_rt::tls::{self, ClientConfig, ClientTlsStream, TlsError};
use std::io;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;

/// Why one dial of one port failed: the fallback ladder moves on either way, the log says which.
#[derive(Debug, Error)]
pub enum DialError {
    #[error("resolving {host}: {source}")]
    Resolve { host: String, source: io::Error },
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// Resolves `host` and connects to `port` over TLS, handshake included, within `timeout_ms`.
pub async fn dial_tls(
    host: &str,
    port: u16,
    config: Arc<ClientConfig>,
    timeout_ms: u64,
) -> Result<ClientTlsStream<TcpStream>, DialError> {
    let addr = mc_rt::net::resolve(host, port)
        .await
        .map_err(|source| DialError::Resolve {
            host: host.to_string(),
            source,
        })?;
    Ok(tls::connect(addr, host, config, Duration::from_millis(timeout_ms)).await?)
}

/// Sleeps until `deadline_ms` (Unix milliseconds, as the cores' `poll_timeout` names them);
/// `None`, nothing due, sleeps until cancelled.
pub async fn sleep_until_ms(deadline_ms: Option<u64>) {
    match deadline_ms {
        Some(deadline_ms) => {
            let wait_ms = deadline_ms.saturating_sub(mc_rt::unix_now_ms());
            mc_rt::sleep(Duration::from_millis(wait_ms)).await
        }
        None => std::future::pending().await,
    }
}
