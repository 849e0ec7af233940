//! The cloud stand-in, with its four services (DESIGN §2):
//!
//! - **management**: HTTPS REST (users, meetings, join tickets), API keys, SQLite under the data
//!   directory ([`store`]);
//! - **notification**: a long-lived mutual-TLS link (8804, or 443 by ALPN) on which meeting
//!   events are pushed to controllers ([`notify`]);
//! - **status sync**: controllers register and heartbeat (8803, or 443 by ALPN) ([`status`]);
//! - **monitoring**: every connector process POSTs reports over HTTPS with its deployment
//!   certificate; `GET /v1/zone` serves the zone's status built from them ([`api`]), and
//!   `GET /dashboard` a page that shows it live ([`dashboard`]).

mod api;
mod dashboard;
mod driver;
mod limits;
mod notify;
mod openapi;
mod status;
pub mod store;

use crate::config::CloudConfig;
use crate::error::{bind_tcp, NodeError};
use crate::events::CloudEvent;
use crate::listen::Gate;
use crate::metrics::CloudMetrics;
use crate::EventLog;
use mc_core::cloud::management::Management;
use mc_core::cloud::notification::NotificationLog;
use mc_core::cloud::status_sync::StatusSync;
use mc_core::ticket::TicketSigner;
use mc_core::Rng;
use mc_rt::net::TcpListener;
use mc_rt::sync::broadcast;
use mc_rt::tls::{self, ClientAuth, Identity, Router};
use mc_wire::monitor::Report;
use mc_wire::notify::MeetingEvent;
use mc_wire::ports::alpn;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

/// Meeting events the notification service keeps for controllers that reconnect.
pub const NOTIFICATION_HISTORY: usize = 10_000;

pub(crate) struct CloudState {
    pub management: Management,
    pub status: StatusSync,
    pub notifications: NotificationLog,
    /// Tells notification sessions the newest sequence number. (Not a `watch`: tokio's watch
    /// wakes its receivers in an order drawn from a process-wide random source, so two runs of
    /// one simulation seed in one process would deliver events to controllers in different
    /// orders; broadcast wakes them in the order they subscribed.)
    pub notify_tx: broadcast::Sender<u64>,
    /// The latest monitoring report of each node, with when it arrived.
    pub reports: BTreeMap<String, (u64, Report)>,
    /// The cloud's own operator events (takeovers, controllers down, drains), for the zone
    /// dashboard.
    pub recent: crate::monitor::RecentEvents,
    /// Controllers and MMRs an operator asked to drain (and has not undrained).
    pub drains: std::collections::BTreeSet<String>,
    /// The management API's token buckets.
    pub rate_limits: limits::RateLimits,
    pub config: CloudConfig,
    pub events: EventLog,
    pub metrics: CloudMetrics,
}

impl CloudState {
    pub fn notify(&mut self, now_ms: u64, event: MeetingEvent) {
        let seq = self.notifications.push(now_ms, event);
        let _ = self.notify_tx.send(seq);
    }
}

/// A running cloud: where it listens.
#[derive(Debug, Clone)]
pub struct CloudHandle {
    pub https_addr: SocketAddr,
    pub status_sync_addr: SocketAddr,
    pub notification_addr: SocketAddr,
}

/// Binds every cloud service and starts serving; returns once all ports are bound.
pub async fn start(
    config: CloudConfig,
    identity: Identity,
    events: EventLog,
) -> Result<CloudHandle, NodeError> {
    config.validate()?;
    let now_ms = mc_rt::unix_now_ms();
    let mut rng = Rng::seed_from_u64(config.seed.unwrap_or_else(mc_rt::fresh_seed));
    // A key already on disk means this cloud ran before: controllers may own meetings it has
    // to relearn (status sync's ownership registry lives in memory).
    let (signing_seed, restarted) = match &config.data_dir {
        Some(dir) => load_or_create_key(dir, &mut rng)?,
        None => (rng.bytes::<32>(), false),
    };
    let store =
        store::SqliteStore::open(config.data_dir.as_deref()).map_err(|e| NodeError::State {
            path: "cloud database".into(),
            detail: e.to_string(),
        })?;
    let management = Management::new(
        TicketSigner::from_seed(&signing_seed),
        config.ticket_ttl_s * 1000,
        config.api_key.clone(),
        rng,
        Box::new(store),
        now_ms,
    )
    .map_err(|e| NodeError::State {
        path: "cloud database".into(),
        detail: e.to_string(),
    })?;
    let status = StatusSync::new(config.controller_down_after_ms, now_ms, restarted)
        .with_lease_ms(config.controller_lease_ms);

    let https = bind_tcp(
        "cloud HTTPS (management, monitoring)",
        (config.listen, config.https_port).into(),
    )
    .await?;
    let sync = bind_tcp(
        "cloud status sync",
        (config.listen, config.status_sync_port).into(),
    )
    .await?;
    let notify = bind_tcp(
        "cloud notification",
        (config.listen, config.notification_port).into(),
    )
    .await?;
    let handle = CloudHandle {
        https_addr: https.local_addr().expect("bound"),
        status_sync_addr: sync.local_addr().expect("bound"),
        notification_addr: notify.local_addr().expect("bound"),
    };

    let status_route = tls::server_config(&identity, alpn::STATUS_SYNC, ClientAuth::Required)?;
    let notify_route = tls::server_config(&identity, alpn::NOTIFICATION, ClientAuth::Required)?;
    let https_router = Router::new()
        .route(
            alpn::HTTP1,
            tls::server_config(&identity, alpn::HTTP1, ClientAuth::Optional)?,
        )
        .route(alpn::STATUS_SYNC, status_route.clone())
        .route(alpn::NOTIFICATION, notify_route.clone())
        .default_route(alpn::HTTP1);
    let sync_router = Router::new()
        .route(alpn::STATUS_SYNC, status_route)
        .default_route(alpn::STATUS_SYNC);
    let notify_router = Router::new()
        .route(alpn::NOTIFICATION, notify_route)
        .default_route(alpn::NOTIFICATION);

    let (caps, handshake) = (
        config.conn_caps(),
        Duration::from_millis(config.handshake_timeout_ms),
    );
    let (notify_tx, _) = broadcast::channel(16);
    let metrics = CloudMetrics::new();
    let sizes = limits::SizeLimits::of(&config);
    let cloud = driver::start(CloudState {
        management,
        status,
        notifications: NotificationLog::new(NOTIFICATION_HISTORY),
        notify_tx,
        reports: BTreeMap::new(),
        recent: crate::monitor::RecentEvents::default(),
        drains: std::collections::BTreeSet::new(),
        rate_limits: limits::RateLimits::new(&config),
        config,
        events: events.clone(),
        metrics: metrics.clone(),
    });
    events.record(CloudEvent::Listening {
        https: handle.https_addr,
        status_sync: handle.status_sync_addr,
        notification: handle.notification_addr,
    });
    let serve = Serve {
        cloud,
        events,
        metrics,
        sizes,
    };
    let gate = |name| Gate::new(name, caps);
    let gates = [gate("https"), gate("status_sync"), gate("notification")];
    crate::metrics::register_listeners(&serve.metrics.metrics, gates.to_vec());
    let [https_gate, sync_gate, notify_gate] = gates;
    mc_rt::spawn(accept_loop(
        https,
        https_router,
        https_gate,
        handshake,
        serve.clone(),
    ));
    mc_rt::spawn(accept_loop(
        sync,
        sync_router,
        sync_gate,
        handshake,
        serve.clone(),
    ));
    mc_rt::spawn(accept_loop(
        notify,
        notify_router,
        notify_gate,
        handshake,
        serve,
    ));
    Ok(handle)
}

/// What every connection of the cloud is served with.
#[derive(Clone)]
struct Serve {
    cloud: driver::CloudTx,
    events: EventLog,
    metrics: CloudMetrics,
    sizes: limits::SizeLimits,
}

async fn accept_loop(
    listener: TcpListener,
    router: Router,
    gate: Gate,
    handshake: Duration,
    serve: Serve,
) {
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    crate::serve::serve_tls(
        listener,
        router,
        gate,
        handshake,
        move |alpn_id, stream, peer, _gate| {
            let Serve {
                cloud,
                events,
                metrics,
                sizes,
            } = serve.clone();
            async move {
                // What the peer's certificate says it is; each service checks it against the
                // role it serves and the node the peer claims to be.
                let identity = tls::client_identity(&stream);
                if alpn_id == alpn::STATUS_SYNC {
                    status::serve(stream, peer, identity, port, cloud, events, metrics).await;
                } else if alpn_id == alpn::NOTIFICATION {
                    notify::serve(stream, peer, identity, port, cloud, events, metrics).await;
                } else {
                    let origin = api::Origin {
                        peer: api::TlsPeer {
                            addr: peer,
                            identity,
                        },
                        sizes,
                    };
                    let counted = metrics.clone();
                    let served =
                        crate::http::serve_limited(stream, sizes.max_header_bytes, move |req| {
                            api::handle(req, cloud.clone(), metrics.clone(), origin.clone())
                        })
                        .await;
                    if let Err(e) = served {
                        if e.is_parse_too_large() {
                            counted.api_refused("headers_too_large");
                        }
                        tracing::debug!(client_addr = %peer, "HTTP connection ended: {e}");
                    }
                }
            }
        },
    )
    .await
}

/// The ticket-signing key persists in the data directory, so tickets issued before a restart
/// still verify after it. Also says whether it was there already.
fn load_or_create_key(dir: &Path, rng: &mut Rng) -> Result<([u8; 32], bool), NodeError> {
    let path = dir.join("ticket-signing.key");
    let err = |detail: String| NodeError::State {
        path: path.display().to_string(),
        detail,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let bytes = mc_wire::hex::decode("ticket signing key", text.trim())
                .map_err(|e| err(e.to_string()))?;
            let key: [u8; 32] = bytes
                .try_into()
                .map_err(|_| err("expected 32 bytes of hex".into()))?;
            Ok((key, true))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(|e| err(e.to_string()))?;
            let seed = rng.bytes::<32>();
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            use std::io::Write;
            opts.open(&path)
                .and_then(|mut f| f.write_all(mc_wire::hex::encode(&seed).as_bytes()))
                .map_err(|e| err(e.to_string()))?;
            Ok((seed, false))
        }
        Err(e) => Err(err(e.to_string())),
    }
}
