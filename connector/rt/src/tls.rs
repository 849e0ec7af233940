//! TLS for every TCP link: TLS 1.3 only, rustls with the ring provider selected explicitly.
//!
//! Servers route each connection by ALPN ([`Router`]): several services share one port (443, or
//! 8802 for signalling and on-premises links), and each route says whether the peer must present
//! a certificate from the deployment CA (mutual TLS) or not (clients, who prove themselves with
//! tickets and media tokens instead).

use crate::identity::{IdentityError, PeerIdentity};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{Acceptor, WebPkiClientVerifier};
use rustls::RootCertStore;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio::net::TcpStream;

pub use rustls::{ClientConfig, ServerConfig};

/// The identity of a server-side stream's peer: what the certificate it presented (which the
/// deployment CA signed: only routes with `ClientAuth::Optional` or `Required` ask) says it is.
pub fn client_identity<IO>(stream: &ServerTlsStream<IO>) -> Result<PeerIdentity, IdentityError> {
    end_entity_identity(stream.get_ref().1.peer_certificates())
}

/// The identity of a client-side stream's peer: the server, whose certificate rustls verified.
pub fn server_identity<IO>(stream: &ClientTlsStream<IO>) -> Result<PeerIdentity, IdentityError> {
    end_entity_identity(stream.get_ref().1.peer_certificates())
}

fn end_entity_identity(
    chain: Option<&[CertificateDer<'static>]>,
) -> Result<PeerIdentity, IdentityError> {
    match chain.and_then(|c| c.first()) {
        Some(cert) => PeerIdentity::from_der(cert),
        None => Err(IdentityError::NoCertificate),
    }
}
pub use tokio_rustls::client::TlsStream as ClientTlsStream;
pub use tokio_rustls::server::TlsStream as ServerTlsStream;

#[derive(Debug, Error)]
pub enum TlsError {
    #[error("TLS configuration: {0}")]
    Config(String),
    #[error("TLS handshake with {peer}: {detail}")]
    Handshake { peer: SocketAddr, detail: String },
    /// Its own variant, so a listener can count the peers that stall (slowloris) apart from the
    /// ones that fail.
    #[error("TLS handshake with {peer}: not completed within {after_ms} ms")]
    HandshakeTimeout { peer: SocketAddr, after_ms: u64 },
    #[error("{peer} offered ALPN {offered:?}, which this port does not serve")]
    NoRoute {
        peer: SocketAddr,
        offered: Vec<String>,
    },
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A host's certificate chain and key, and the deployment CA it trusts.
#[derive(Clone, Debug)]
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: Arc<PrivateKeyDer<'static>>,
    pub ca: CertificateDer<'static>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn roots(ca: &CertificateDer<'static>) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    roots
        .add(ca.clone())
        .map_err(|e| TlsError::Config(format!("deployment CA certificate: {e}")))?;
    Ok(Arc::new(roots))
}

/// Whether a server asks its peers for a certificate from the deployment CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Clients, who prove themselves otherwise (tickets, media tokens, API keys).
    None,
    /// Verified if presented (the cloud's HTTPS port: deployment hosts report to monitoring with
    /// their certificate; API callers use keys).
    Optional,
    /// Mutual TLS: on-premises links and links to the cloud.
    Required,
}

/// A server config for one ALPN id.
pub fn server_config(
    id: &Identity,
    alpn: &[u8],
    auth: ClientAuth,
) -> Result<Arc<ServerConfig>, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let builder = match auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Optional | ClientAuth::Required => {
            let mut verifier =
                WebPkiClientVerifier::builder_with_provider(roots(&id.ca)?, provider());
            if auth == ClientAuth::Optional {
                verifier = verifier.allow_unauthenticated();
            }
            builder.with_client_cert_verifier(
                verifier
                    .build()
                    .map_err(|e| TlsError::Config(e.to_string()))?,
            )
        }
    };
    let mut config = builder
        .with_single_cert(id.chain.clone(), id.key.clone_key())
        .map_err(|e| TlsError::Config(format!("host certificate and key: {e}")))?;
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(Arc::new(config))
}

/// A client config that trusts the deployment CA, offers `alpn`, and presents `client_id`'s
/// certificate when given (on mutual-TLS links).
pub fn client_config(
    ca: &CertificateDer<'static>,
    client_id: Option<&Identity>,
    alpn: &[u8],
) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_root_certificates(roots(ca)?);
    let mut config = match client_id {
        Some(id) => builder
            .with_client_auth_cert(id.chain.clone(), id.key.clone_key())
            .map_err(|e| TlsError::Config(format!("client certificate and key: {e}")))?,
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(Arc::new(config))
}

/// Routes incoming TLS connections on one port by the ALPN id the client offers.
#[derive(Clone, Default)]
pub struct Router {
    routes: Vec<(Vec<u8>, Arc<ServerConfig>)>,
    /// The route for clients that offer no ALPN at all (e.g. plain `openssl s_client`).
    default: Option<usize>,
}

impl Router {
    pub fn new() -> Router {
        Router::default()
    }

    pub fn route(mut self, alpn: &[u8], config: Arc<ServerConfig>) -> Router {
        self.routes.push((alpn.to_vec(), config));
        self
    }

    pub fn default_route(mut self, alpn: &[u8]) -> Router {
        self.default = self.routes.iter().position(|(a, _)| a == alpn);
        assert!(
            self.default.is_some(),
            "default route must be one of the routes"
        );
        self
    }

    /// Completes the handshake within `deadline`; returns the route's ALPN id and the stream.
    pub async fn accept(
        &self,
        tcp: TcpStream,
        peer: SocketAddr,
        deadline: Duration,
    ) -> Result<(Vec<u8>, ServerTlsStream<TcpStream>), TlsError> {
        let handshake = async {
            let start = tokio_rustls::LazyConfigAcceptor::new(Acceptor::default(), tcp)
                .await
                .map_err(|e| TlsError::Handshake {
                    peer,
                    detail: e.to_string(),
                })?;
            let hello = start.client_hello();
            let offered: Vec<Vec<u8>> = hello
                .alpn()
                .map(|it| it.map(<[u8]>::to_vec).collect())
                .unwrap_or_default();
            let idx = if offered.is_empty() {
                self.default
            } else {
                offered
                    .iter()
                    .find_map(|o| self.routes.iter().position(|(a, _)| a == o))
            };
            let Some(idx) = idx else {
                let offered = offered
                    .iter()
                    .map(|o| String::from_utf8_lossy(o).into_owned())
                    .collect();
                return Err(TlsError::NoRoute { peer, offered });
            };
            let (alpn, config) = &self.routes[idx];
            let stream =
                start
                    .into_stream(config.clone())
                    .await
                    .map_err(|e| TlsError::Handshake {
                        peer,
                        detail: e.to_string(),
                    })?;
            Ok((alpn.clone(), stream))
        };
        match tokio::time::timeout(deadline, handshake).await {
            Ok(r) => r,
            Err(_) => Err(TlsError::HandshakeTimeout {
                peer,
                after_ms: deadline.as_millis() as u64,
            }),
        }
    }
}

/// Connects TCP and completes a TLS handshake, all within `deadline`. `server_name` is the DNS
/// name or IP address the server's certificate must carry.
pub async fn connect(
    addr: SocketAddr,
    server_name: &str,
    config: Arc<ClientConfig>,
    deadline: Duration,
) -> Result<ClientTlsStream<TcpStream>, TlsError> {
    let name = ServerName::try_from(server_name.to_string())
        .map_err(|e| TlsError::Config(format!("server name {server_name:?}: {e}")))?;
    let attempt = async {
        let tcp = crate::net::connect_tcp(addr, deadline)
            .await
            .map_err(|source| TlsError::Connect { addr, source })?;
        tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .map_err(|e| TlsError::Handshake {
                peer: addr,
                detail: e.to_string(),
            })
    };
    match tokio::time::timeout(deadline, attempt).await {
        Ok(r) => r,
        Err(_) => Err(TlsError::HandshakeTimeout {
            peer: addr,
            after_ms: deadline.as_millis() as u64,
        }),
    }
}

/// Any byte stream the shells can carry framed data on: plain TCP or either side of TLS.
pub trait IoStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> IoStream for T {}
pub type BoxStream = Box<dyn IoStream>;
