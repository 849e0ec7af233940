//! What every dialled link shares: connecting by name over TLS, and sleeping until a deadline a
//! core named.

use crate::identity_gate::IdentityGate;
use mc_rt::identity::{CertRole, IdentityError};
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
    #[error("{host}:{port} is not who this link dials: {error}")]
    Identity {
        host: String,
        port: u16,
        error: IdentityError,
    },
}

/// Who a dialled server must be: its certificate of `role`; a refusal is counted under `link`.
#[derive(Clone)]
pub(crate) struct Expect {
    pub role: CertRole,
    pub link: &'static str,
    pub gate: IdentityGate,
}

/// As [`dial_tls`], and the server's certificate must be of `expect.role` (the deployment CA
/// signs every host's, so the CA alone would let any of them answer).
pub(crate) async fn dial_tls_as(
    host: &str,
    port: u16,
    config: Arc<ClientConfig>,
    timeout_ms: u64,
    expect: &Expect,
) -> Result<ClientTlsStream<TcpStream>, DialError> {
    let stream = dial_tls(host, port, config, timeout_ms).await?;
    let addr = stream
        .get_ref()
        .0
        .peer_addr()
        .unwrap_or_else(|_| ([0, 0, 0, 0], port).into());
    let role = tls::server_identity(&stream).and_then(|id| id.expect_role(expect.role));
    match expect.gate.check(expect.link, addr, role) {
        Ok(_) => Ok(stream),
        Err(error) => Err(DialError::Identity {
            host: host.to_string(),
            port,
            error,
        }),
    }
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
