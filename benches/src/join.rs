//! Join throughput and latency through the real path, beside the bare cost of TLS.
//!
//! A cloud and a controller VM start in this process on loopback with ephemeral ports, as the
//! loopback tests start them. Each join is what a client does before media: ask cloud management
//! for a ticket (`client::fetch_ticket`: a new HTTPS connection), connect TLS to the signalling
//! port the cloud listed, send `Join`, wait for `Joined`. Then it sends `Leave` (untimed), so the
//! ZC releases the participant and the zone never fills.
//!
//! The baseline is a trivial TLS echo server built with the same seam (`mc_rt::tls`: the same
//! certificates, rustls and ring, the same `Router`): connect TLS 1.3, send 256 bytes, read them
//! back. A join makes two such connections (cloud, then ZC), so about half the baseline's rate is
//! the most joins/s TLS alone would allow. Both sides build a fresh client config per connection,
//! as the client does, so every handshake is a full one (no resumption).

use crate::cpu;
use crate::report::Row;
use hdrhistogram::Histogram;
use mc_node::client::{self, ManagementApi};
use mc_node::config::{ClientConfig, CloudConfig, ControllerConfig};
use mc_node::framed::{write_frame, FrameReader};
use mc_node::{cloud, controller, identities, EventLog};
use mc_rt::tls::{self, ClientAuth, Identity, Router};
use mc_rt::{AsyncReadExt, AsyncWriteExt};
use mc_wire::ports::alpn;
use mc_wire::signal::{ClientToZc, ZcToClient};
use mc_wire::MeetingId;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const API_KEY: &str = "bench-api-key-0123456789";
const ECHO_ALPN: &[u8] = b"mc-bench-echo/1";
const ECHO_BYTES: usize = 256;
/// Joins are spread over this many meetings (the controller hosts at most 100).
const MEETINGS: usize = 10;
const CONNECT_TIMEOUT_MS: u64 = 5_000;
const REGISTRATION_TIMEOUT_MS: u64 = 10_000;
/// Latencies are recorded in microseconds, up to a minute.
const LATENCY_US_MAX: u64 = 60_000_000;

pub struct Settings {
    pub joins: usize,
    pub concurrency: usize,
    /// Joins and echoes alternate in this many rounds, sharing `joins` between them.
    pub rounds: usize,
}

/// A controller admits at most its MMR's participants at once (200 by default); every join in
/// flight holds one until its `Leave` is processed, so concurrency stays well below that.
pub const CONCURRENCY_MAX: usize = 100;

/// How long one operation took, and for a join its two phases (ticket, then signalling).
struct Timing {
    total: Duration,
    phases: Option<(Duration, Duration)>,
}

/// What a batch of operations did. The phase histograms stay empty for the echo baseline.
struct Ops {
    ok: usize,
    failed: usize,
    first_error: Option<String>,
    wall_s: f64,
    cpu_ns: Option<u64>,
    total_us: Histogram<u64>,
    ticket_us: Histogram<u64>,
    signalling_us: Histogram<u64>,
}

impl Ops {
    fn per_s(&self) -> Option<f64> {
        Some(self.ok as f64 / self.wall_s)
    }

    fn quantile_ms(h: &Histogram<u64>, q: f64) -> Option<f64> {
        (!h.is_empty()).then(|| h.value_at_quantile(q) as f64 / 1000.0)
    }

    fn cpu_ms_per_op(&self) -> Option<f64> {
        let cpu_ns = self.cpu_ns?;
        (self.ok > 0).then(|| cpu_ns as f64 / 1e6 / self.ok as f64)
    }

    fn empty() -> Ops {
        let h =
            || Histogram::new_with_bounds(1, LATENCY_US_MAX, 3).expect("valid histogram bounds");
        Ops {
            ok: 0,
            failed: 0,
            first_error: None,
            wall_s: 0.0,
            cpu_ns: None,
            total_us: h(),
            ticket_us: h(),
            signalling_us: h(),
        }
    }

    fn record(&mut self, result: Result<Timing, String>) {
        let us = |d: Duration| d.as_micros() as u64;
        match result {
            Ok(t) => {
                self.ok += 1;
                self.total_us.saturating_record(us(t.total));
                if let Some((ticket, signalling)) = t.phases {
                    self.ticket_us.saturating_record(us(ticket));
                    self.signalling_us.saturating_record(us(signalling));
                }
            }
            Err(e) => {
                self.failed += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }

    /// Adds another batch: counts, latencies, wall time and CPU time.
    fn merge(&mut self, other: Ops) {
        self.wall_s += other.wall_s;
        self.cpu_ns = match (self.cpu_ns, other.cpu_ns) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        self.ok += other.ok;
        self.failed += other.failed;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.total_us.add(&other.total_us).expect("same bounds");
        self.ticket_us.add(&other.ticket_us).expect("same bounds");
        self.signalling_us
            .add(&other.signalling_us)
            .expect("same bounds");
    }
}

/// Runs `op(0..n)` with at most `concurrency` in flight; wall time and process CPU time cover
/// the whole batch.
async fn run_ops<F, Fut>(n: usize, concurrency: usize, op: F) -> Ops
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Timing, String>> + Send,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let cpu_start = cpu::process_cpu_ns();
    let started = mc_rt::Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (op, next) = (op.clone(), next.clone());
            mc_rt::spawn(async move {
                let mut ops = Ops::empty();
                loop {
                    let i = next.fetch_add(1, Relaxed);
                    if i >= n {
                        return ops;
                    }
                    ops.record(op(i).await);
                }
            })
        })
        .collect();
    let mut all = Ops::empty();
    for w in workers {
        // Workers' wall and CPU times are unset; the batch's are taken below.
        all.merge(w.await.expect("a benchmark worker panicked"));
    }
    all.wall_s = started.elapsed().as_secs_f64();
    all.cpu_ns = cpu::process_cpu_ns()
        .zip(cpu_start)
        .map(|(end, start)| end.saturating_sub(start));
    all
}

type Ca = rustls::pki_types::CertificateDer<'static>;

/// A cloud and one controller VM on 127.0.0.1 with ephemeral ports, the controller registered.
struct Deployment {
    cloud: cloud::CloudHandle,
    /// Kept so the controller's tasks are plainly owned by the benchmark for its whole run.
    _controller: controller::ControllerHandle,
    ca: Ca,
    echo_identity: Identity,
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

impl Deployment {
    async fn start() -> Result<Deployment, String> {
        let on_loopback = || vec!["127.0.0.1".to_string()];
        let hosts = [
            ("cloud", on_loopback()),
            ("controller-1", on_loopback()),
            // The baseline's echo server: no role checks it, a scraper's is the least.
            ("scraper:echo", on_loopback()),
        ];
        let ids = identities::generate("bench", &hosts, 7, mc_rt::unix_now_ms() as i64 / 1000, 1)
            .map_err(|e| format!("generating certificates: {e}"))?;
        let identity = |name: &str| {
            ids.identity(name)
                .map_err(|e| format!("certificate of {name}: {e}"))
        };
        let events = Arc::new(Mutex::new(Vec::<String>::new()));
        let cloud_config = CloudConfig {
            https_port: 0,
            status_sync_port: 0,
            notification_port: 0,
            api_key: API_KEY.into(),
            seed: Some(1),
            ..Default::default()
        };
        let cloud = cloud::start(
            cloud_config,
            identity("cloud")?,
            EventLog::collecting("cloud", events.clone()),
        )
        .await
        .map_err(|e| format!("starting the cloud: {e}"))?;
        let controller_config = ControllerConfig {
            media_cascade_port: 0,
            listen: loopback(0).ip(),
            signal_port: 0,
            tls_port: 0,
            media_udp_port: 0,
            media_tcp_port: 0,
            cloud_status_sync_port: cloud.status_sync_addr.port(),
            cloud_https_port: cloud.https_addr.port(),
            cloud_notification_port: cloud.notification_addr.port(),
            seed: Some(2),
            ..Default::default()
        };
        let controller = controller::start(
            controller_config,
            identity("controller-1")?,
            EventLog::collecting("controller-1", events.clone()),
        )
        .await
        .map_err(|e| format!("starting the controller: {e}"))?;
        let started = mc_rt::Instant::now();
        while !events
            .lock()
            .expect("event log lock")
            .iter()
            .any(|e| e.contains("registered with the cloud"))
        {
            if started.elapsed() > Duration::from_millis(REGISTRATION_TIMEOUT_MS) {
                return Err(format!("the controller did not register with the cloud within {REGISTRATION_TIMEOUT_MS} ms"));
            }
            mc_rt::sleep(Duration::from_millis(20)).await;
        }
        let ca = ids.ca().map_err(|e| format!("the CA certificate: {e}"))?;
        Ok(Deployment {
            cloud,
            _controller: controller,
            ca,
            echo_identity: identity("echo")?,
        })
    }

    fn api(&self) -> ManagementApi {
        ManagementApi {
            host: "127.0.0.1".into(),
            port: self.cloud.https_addr.port(),
            api_key: API_KEY.into(),
            ca: self.ca.clone(),
            timeout_ms: CONNECT_TIMEOUT_MS,
        }
    }

    fn client(&self, n: usize, meeting: MeetingId) -> ClientConfig {
        ClientConfig {
            display_name: format!("bench-{n}"),
            cloud_host: "127.0.0.1".into(),
            cloud_https_port: self.cloud.https_addr.port(),
            api_key: API_KEY.into(),
            meeting: meeting.0,
            connect_timeout_ms: CONNECT_TIMEOUT_MS,
            ..Default::default()
        }
    }
}

/// One join, as `client::run` makes it up to `Joined`; then `Leave`, untimed.
async fn join_once(config: ClientConfig, ca: Ca) -> Result<Timing, String> {
    let t0 = mc_rt::Instant::now();
    let grant = client::fetch_ticket(&config, &ca)
        .await
        .map_err(|e| e.to_string())?;
    let ticket = t0.elapsed();
    let c = grant
        .controllers
        .first()
        .ok_or("the cloud listed no live controller")?;
    let addr = mc_rt::net::resolve(&c.host, c.port)
        .await
        .map_err(|e| format!("resolving {}: {e}", c.host))?;
    // A fresh config per connection, as the client builds one per join.
    let tls_config = tls::client_config(&ca, None, alpn::SIGNAL).map_err(|e| e.to_string())?;
    let stream = tls::connect(
        addr,
        &c.host,
        tls_config,
        Duration::from_millis(CONNECT_TIMEOUT_MS),
    )
    .await
    .map_err(|e| e.to_string())?;
    let (rd, mut wr) = mc_rt::split(stream);
    write_frame(
        &mut wr,
        &ClientToZc::Join {
            ticket: grant.ticket,
        },
    )
    .await
    .map_err(|e| format!("sending Join: {e}"))?;
    let answer = mc_rt::timeout(
        Duration::from_millis(CONNECT_TIMEOUT_MS),
        FrameReader::new(rd).next::<ZcToClient>(),
    )
    .await;
    match answer {
        Ok(Ok(Some(ZcToClient::Joined { .. }))) => {}
        Ok(Ok(Some(other))) => return Err(format!("the ZC answered {other:?}")),
        Ok(Ok(None)) => return Err("the ZC closed the connection without answering".into()),
        Ok(Err(e)) => return Err(format!("reading the ZC's answer: {e}")),
        Err(_) => {
            return Err(format!(
                "the ZC did not answer within {CONNECT_TIMEOUT_MS} ms"
            ))
        }
    }
    let total = t0.elapsed();
    let _ = write_frame(&mut wr, &ClientToZc::Leave).await;
    Ok(Timing {
        total,
        phases: Some((ticket, total - ticket)),
    })
}

/// The baseline: a fresh TLS 1.3 connection and one round trip.
async fn echo_once(addr: SocketAddr, ca: Ca) -> Result<Timing, String> {
    let t0 = mc_rt::Instant::now();
    let config = tls::client_config(&ca, None, ECHO_ALPN).map_err(|e| e.to_string())?;
    let stream = tls::connect(
        addr,
        "127.0.0.1",
        config,
        Duration::from_millis(CONNECT_TIMEOUT_MS),
    )
    .await
    .map_err(|e| e.to_string())?;
    let (mut rd, mut wr) = mc_rt::split(stream);
    let sent = [0x5au8; ECHO_BYTES];
    wr.write_all(&sent)
        .await
        .map_err(|e| format!("writing to the echo server: {e}"))?;
    wr.flush()
        .await
        .map_err(|e| format!("writing to the echo server: {e}"))?;
    let mut back = [0u8; ECHO_BYTES];
    rd.read_exact(&mut back)
        .await
        .map_err(|e| format!("reading the echo: {e}"))?;
    if back != sent {
        return Err("the echo server answered other bytes".into());
    }
    Ok(Timing {
        total: t0.elapsed(),
        phases: None,
    })
}

/// A TLS server that writes back whatever it reads, behind the same `Router` the controller uses.
async fn start_echo(identity: &Identity) -> Result<SocketAddr, String> {
    let config =
        tls::server_config(identity, ECHO_ALPN, ClientAuth::None).map_err(|e| e.to_string())?;
    let router = Router::new()
        .route(ECHO_ALPN, config)
        .default_route(ECHO_ALPN);
    let listener = mc_rt::net::TcpListener::bind(loopback(0))
        .await
        .map_err(|e| format!("binding the echo server: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    mc_rt::spawn(async move {
        loop {
            let Ok((tcp, peer)) = mc_rt::net::accept(&listener).await else {
                mc_rt::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let router = router.clone();
            mc_rt::spawn(async move {
                let Ok((_, stream)) = router
                    .accept(tcp, peer, Duration::from_millis(CONNECT_TIMEOUT_MS))
                    .await
                else {
                    return;
                };
                let (mut rd, mut wr) = mc_rt::split(stream);
                let mut buf = vec![0u8; 4096];
                loop {
                    match rd.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if wr.write_all(&buf[..n]).await.is_err() || wr.flush().await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });
    Ok(addr)
}

fn check(what: &str, ops: &Ops) -> Result<(), String> {
    if ops.failed == 0 {
        return Ok(());
    }
    Err(format!(
        "{} of {} {what} failed; the first: {}",
        ops.failed,
        ops.failed + ops.ok,
        ops.first_error.as_deref().unwrap_or("?")
    ))
}

pub async fn run(settings: &Settings) -> Result<Vec<Row>, String> {
    let (n, concurrency) = (settings.joins, settings.concurrency);
    eprintln!("join: starting a cloud and a controller on loopback");
    let d = Deployment::start().await?;
    let echo_addr = start_echo(&d.echo_identity).await?;
    let api = d.api();
    let mut meetings = Vec::new();
    for i in 0..MEETINGS {
        meetings.push(
            api.create_meeting(&format!("bench {i}"))
                .await
                .map_err(|e| format!("creating a meeting: {e}"))?,
        );
    }
    let d = Arc::new(d);
    let echo = {
        let ca = d.ca.clone();
        move |_: usize| echo_once(echo_addr, ca.clone())
    };
    let join = {
        let d = d.clone();
        move |i: usize| join_once(d.client(i, meetings[i % meetings.len()]), d.ca.clone())
    };

    // Warm-up: connection set-up paths, allocator and caches, unmeasured.
    check(
        "warm-up TLS echoes",
        &run_ops(concurrency, concurrency, echo.clone()).await,
    )?;
    check(
        "warm-up joins",
        &run_ops(concurrency, concurrency, join.clone()).await,
    )?;
    eprintln!(
        "join: {n} joins and {n} TLS echoes, {concurrency} at a time, alternating in {} rounds",
        settings.rounds
    );
    let (mut base, mut joins) = (Ops::empty(), Ops::empty());
    for round in 0..settings.rounds {
        let this_round = n / settings.rounds + usize::from(round < n % settings.rounds);
        // Alternate which goes first, so a change in the machine's load falls on both alike.
        if round % 2 == 0 {
            base.merge(run_ops(this_round, concurrency, echo.clone()).await);
            joins.merge(run_ops(this_round, concurrency, join.clone()).await);
        } else {
            joins.merge(run_ops(this_round, concurrency, join.clone()).await);
            base.merge(run_ops(this_round, concurrency, echo.clone()).await);
        }
    }
    check("TLS echoes", &base)?;
    check("joins", &joins)?;

    let row = |figure, unit, measured, baseline| Row {
        bench: "join",
        case: format!("{n} joins, {concurrency} at a time"),
        figure,
        unit,
        measured,
        baseline,
        baseline_name:
            "TLS 1.3 connect + one 256-byte round trip to an echo server, same concurrency",
        second: None,
    };
    let p = Ops::quantile_ms;
    Ok(vec![
        row("throughput", "ops/s", joins.per_s(), base.per_s()),
        row(
            "latency p50",
            "ms",
            p(&joins.total_us, 0.5),
            p(&base.total_us, 0.5),
        ),
        row(
            "latency p99",
            "ms",
            p(&joins.total_us, 0.99),
            p(&base.total_us, 0.99),
        ),
        row(
            "ticket (HTTPS to cloud) p50",
            "ms",
            p(&joins.ticket_us, 0.5),
            p(&base.total_us, 0.5),
        ),
        row(
            "signalling (TLS, Join→Joined) p50",
            "ms",
            p(&joins.signalling_us, 0.5),
            p(&base.total_us, 0.5),
        ),
        row(
            "CPU per op, whole process",
            "ms",
            joins.cpu_ms_per_op(),
            base.cpu_ms_per_op(),
        ),
    ])
}
