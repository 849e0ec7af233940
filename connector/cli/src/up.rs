//! `connector up`: a complete local deployment — the cloud on 127.0.0.1, one controller VM on
//! 127.0.0.2 (and with `--pair` a second on 127.0.0.3, the two an HA pair), MMR VMs from
//! 127.0.0.11 — with fresh identities in a state directory, and optionally a demo meeting.

use crate::certs_cmd::{default_hosts, mmr_vm_ip, write_identities};
use anyhow::Context;
use clap::{Args, ValueEnum};
use mc_node::client::{self, ManagementApi};
use mc_node::config::{ClientConfig, CloudConfig, ControllerConfig, MmrConfig};
use mc_node::EventLog;
use mc_wire::ports;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Args, Debug)]
pub struct UpArgs {
    /// State directory: certificates, the cloud's data, and the configuration files of each role.
    #[arg(long, default_value_os_t = crate::default_state_dir())]
    state_dir: PathBuf,
    /// Run a demo meeting with N participants (default 3) and show media as it flows.
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "3")]
    demo: Option<u32>,
    /// How long the demo meeting lasts, in seconds.
    #[arg(long, default_value_t = 10)]
    demo_secs: u64,
    /// Stop once the demo meeting ends instead of running until Ctrl-C.
    #[arg(long)]
    exit_after_demo: bool,
    /// Start a second controller VM on 127.0.0.3, and run the two as an active-active HA pair:
    /// both take meetings, and either takes the other's over if it dies.
    #[arg(long)]
    pair: bool,
    /// MMR VMs to start beside the controller VM (each adds its participant capacity).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=crate::certs_cmd::MAX_LOCAL_MMR_VMS as i64))]
    mmr_vms: u32,
    /// Which ports to use. `standard` is 8801-8804 and 443 (443 needs root or CAP_NET_BIND_SERVICE);
    /// `unprivileged` moves every 443 to 10443; `auto` uses standard ports when 443 can be bound.
    #[arg(long, value_enum, default_value_t = PortPlan::Auto)]
    ports: PortPlan,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum PortPlan {
    Auto,
    Standard,
    Unprivileged,
}

/// Where 443 goes when it cannot be bound.
const UNPRIVILEGED_HTTPS: u16 = 10443;

fn https_port(plan: PortPlan) -> anyhow::Result<u16> {
    match plan {
        PortPlan::Standard => Ok(ports::HTTPS),
        PortPlan::Unprivileged => Ok(UNPRIVILEGED_HTTPS),
        PortPlan::Auto => match std::net::TcpListener::bind(("127.0.0.1", ports::HTTPS)) {
            Ok(_) => Ok(ports::HTTPS),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Ok(UNPRIVILEGED_HTTPS),
            Err(e) => Err(anyhow::anyhow!("probing port 443 on 127.0.0.1: {e}; pass --ports unprivileged to use {UNPRIVILEGED_HTTPS}")),
        },
    }
}

fn api_key(state: &Path) -> anyhow::Result<String> {
    let path = state.join("api-key");
    if let Ok(k) = std::fs::read_to_string(&path) {
        return Ok(k.trim().to_string());
    }
    let key = format!("{:016x}{:016x}", mc_rt::fresh_seed(), mc_rt::fresh_seed());
    std::fs::write(&path, &key).with_context(|| format!("writing {}", path.display()))?;
    Ok(key)
}

fn write_config<T: serde::Serialize>(path: &Path, header: &str, c: &T) -> anyhow::Result<()> {
    let text = format!(
        "# {header}\n# Written by `connector up`.\n{}",
        toml::to_string(c)?
    );
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

pub async fn run(args: UpArgs, logging: crate::logging::Logging) -> anyhow::Result<()> {
    let state = &args.state_dir;
    std::fs::create_dir_all(state).with_context(|| format!("creating {}", state.display()))?;
    let certs = state.join("certs");
    if !certs.join("ca.pem").exists() {
        write_identities(
            &certs,
            "meeting-connector",
            &default_hosts(),
            mc_node::identities::DEFAULT_VALIDITY_DAYS,
        )?;
        println!("created deployment identities in {}", certs.display());
    }
    let https = https_port(args.ports)?;
    let api_key = api_key(state)?;

    let cloud_cfg = CloudConfig {
        https_port: https,
        api_key: api_key.clone(),
        data_dir: Some(state.join("cloud")),
        ..Default::default()
    };
    let ctl_cfg = ControllerConfig {
        tls_port: https,
        cloud_https_port: https,
        peer_host: args.pair.then(|| "127.0.0.3".to_string()),
        peer_fallback_port: https,
        ..Default::default()
    };
    let ctl2_cfg = args.pair.then(|| ControllerConfig {
        id: "controller-2".into(),
        listen: "127.0.0.3".parse().expect("a loopback address"),
        peer_host: Some("127.0.0.2".into()),
        ..ctl_cfg.clone()
    });
    let client_cfg = ClientConfig {
        cloud_https_port: https,
        api_key: api_key.clone(),
        ..Default::default()
    };
    let mmr_cfgs: Vec<MmrConfig> = (1..=args.mmr_vms)
        .map(|i| MmrConfig {
            id: format!("mmr-{i}"),
            listen: mmr_vm_ip(i).parse().expect("a loopback address"),
            tls_port: https,
            controller_fallback_port: https,
            peer_controller_host: args.pair.then(|| "127.0.0.3".to_string()),
            peer_controller_fallback_port: https,
            cloud_https_port: https,
            ..Default::default()
        })
        .collect();
    for c in &mmr_cfgs {
        write_config(
            &state.join(format!("{}.toml", c.id)),
            &format!("MMR VM: connector mmr --config state/{}.toml", c.id),
            c,
        )?;
    }
    write_config(
        &state.join("cloud.toml"),
        "The cloud stand-in: connector cloud --config state/cloud.toml",
        &cloud_cfg,
    )?;
    write_config(
        &state.join("controller-1.toml"),
        "Controller VM 1: connector controller --config state/controller-1.toml",
        &ctl_cfg,
    )?;
    if let Some(c) = &ctl2_cfg {
        write_config(
            &state.join("controller-2.toml"),
            "Controller VM 2 (HA pair): connector controller --config state/controller-2.toml",
            c,
        )?;
    }
    write_config(
        &state.join("client.toml"),
        "A participant: connector client --config state/client.toml --meeting N",
        &client_cfg,
    )?;

    let log = Arc::new(Mutex::new(Vec::new()));
    let cloud = mc_node::cloud::start(
        cloud_cfg,
        mc_rt::certs::load_identity(&certs, "cloud")?,
        EventLog::collecting("cloud", log.clone()),
    )
    .await?;
    let ctl = mc_node::controller::start(
        ctl_cfg,
        mc_rt::certs::load_identity(&certs, "controller-1")?,
        EventLog::collecting("controller-1", log.clone()),
    )
    .await?;
    let ctl2 = match ctl2_cfg {
        Some(c) => Some(
            mc_node::controller::start(
                c,
                mc_rt::certs::load_identity(&certs, "controller-2").with_context(|| {
                    format!("no certificate for controller-2 in {}: remove that directory to have `up` generate it again", certs.display())
                })?,
                EventLog::collecting("controller-2", log.clone()),
            )
            .await?,
        ),
        None => None,
    };
    let controllers = 1 + ctl2.is_some() as usize;
    let mut vms = Vec::new();
    for c in mmr_cfgs {
        let id = c.id.clone();
        let identity = mc_rt::certs::load_identity(&certs, &id)
            .with_context(|| format!("no certificate for {id} in {}: remove that directory to have `up` generate it again", certs.display()))?;
        vms.push((
            id.clone(),
            mc_node::mmr::vm::start(c, identity, EventLog::collecting(&id, log.clone())).await?,
        ));
    }
    let registered = async {
        while log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("registered with the cloud"))
            .count()
            < controllers
        {
            mc_rt::sleep(Duration::from_millis(50)).await;
        }
    };
    mc_rt::timeout(Duration::from_secs(10), registered)
        .await
        .map_err(|_| {
            anyhow::anyhow!("the controllers did not register with the cloud within 10 s")
        })?;
    let linked = async {
        while log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("linked to controller"))
            .count()
            < vms.len()
        {
            mc_rt::sleep(Duration::from_millis(50)).await;
        }
    };
    mc_rt::timeout(Duration::from_secs(10), linked)
        .await
        .map_err(|_| anyhow::anyhow!("the MMR VMs did not link to the controller within 10 s"))?;

    println!(
        "\nmeeting connector up ({} ports):",
        if https == ports::HTTPS {
            "standard"
        } else {
            "unprivileged: 443 is served on 10443"
        }
    );
    println!(
        "  cloud         management HTTPS  https://{}",
        cloud.https_addr
    );
    println!(
        "                status sync TLS   {} (and {} by ALPN)",
        cloud.status_sync_addr, cloud.https_addr
    );
    println!("  controller-1  ZC signalling     {}", ctl.signal_addr);
    println!(
        "                shared TLS        {} (signalling and media by ALPN)",
        ctl.tls_addr
    );
    println!(
        "                MMR media         udp {}  tcp {}",
        ctl.media_udp_addr, ctl.media_tcp_addr
    );
    if let Some(c) = &ctl2 {
        println!(
            "  controller-2  ZC signalling     {}  (HA pair with controller-1)",
            c.signal_addr
        );
        println!(
            "                shared TLS        {} (signalling and media by ALPN)",
            c.tls_addr
        );
        println!(
            "                MMR media         udp {}  tcp {}",
            c.media_udp_addr, c.media_tcp_addr
        );
    }
    for (id, vm) in &vms {
        println!(
            "  {id:<12}  MMR media         udp {}  tcp {}  tls {}",
            vm.media_udp_addr, vm.media_tcp_addr, vm.tls_addr
        );
    }
    // The key stays out of the address: a URL carrying it would live on in browser history.
    println!(
        "  dashboard     https://{}/dashboard  (key: {}/api-key)",
        cloud.https_addr,
        state.display()
    );
    println!("  state         {}  (certs/, api-key, cloud.toml, controller-N.toml, mmr-N.toml, client.toml)", state.display());
    println!(
        "\ntry: connector meeting create --config {0}/client.toml --ca {0}/certs/ca.pem",
        state.display()
    );
    println!(
        "     connector client --config {0}/client.toml --ca {0}/certs/ca.pem --meeting <id>",
        state.display()
    );

    if let Some(n) = args.demo {
        demo(
            n.max(2),
            args.demo_secs,
            &cloud,
            std::iter::once(&ctl)
                .chain(&ctl2)
                .map(|c| c.mmr.clone())
                .collect(),
            &vms,
            &client_cfg,
            &certs,
        )
        .await?;
        if args.exit_after_demo {
            return Ok(());
        }
    }
    println!("\nrunning; press Ctrl-C to stop");
    mc_rt::ctrl_c().await.context("waiting for Ctrl-C")?;
    logging.say(tracing::Level::INFO, "stopping");
    Ok(())
}

async fn demo(
    n: u32,
    secs: u64,
    cloud: &mc_node::cloud::CloudHandle,
    controller_mmrs: Vec<mc_node::mmr::Mmr>,
    vms: &[(String, mc_node::mmr::vm::MmrVmHandle)],
    base: &ClientConfig,
    certs: &Path,
) -> anyhow::Result<()> {
    let ca = mc_rt::certs::load_ca(&certs.join("ca.pem"))?;
    let api = ManagementApi {
        host: base.cloud_host.clone(),
        port: cloud.https_addr.port(),
        api_key: base.api_key.clone(),
        ca: ca.clone(),
        timeout_ms: 2_000,
    };
    let meeting = api
        .create_meeting("demo")
        .await
        .map_err(anyhow::Error::msg)
        .context("creating the demo meeting")?;
    println!(
        "\ndemo: meeting {} with {n} participants for {secs} s, 50 RTP packets/s each",
        meeting.0
    );
    let names = [
        "ada", "grace", "alan", "edsger", "barbara", "ken", "dennis", "frances",
    ];
    let clients: Vec<_> = (0..n)
        .map(|i| {
            let config = ClientConfig {
                display_name: names
                    .get(i as usize)
                    .map_or_else(|| format!("guest-{i}"), |s| s.to_string()),
                meeting: meeting.0,
                duration_ms: secs * 1000,
                ..base.clone()
            };
            let (ca, events) = (ca.clone(), EventLog::tracing_only(&config.display_name));
            mc_rt::spawn(
                async move { client::run(config, ca, events, std::future::pending()).await },
            )
        })
        .collect();
    for t in 1..=secs {
        mc_rt::sleep(Duration::from_secs(1)).await;
        // The meeting lives on one MMR; sum them all so the line is right wherever it is.
        let mmrs = controller_mmrs
            .iter()
            .chain(vms.iter().map(|(_, v)| &v.mmr));
        let (mut participants, mut rtp_in, mut rtp_out, mut dropped) = (0, 0, 0, 0);
        for m in mmrs {
            let c = m.media_counters();
            participants += m.participants();
            rtp_in += c.rtp_in;
            rtp_out += c.rtp_out;
            dropped += c.dropped;
        }
        println!("  t={t:>2}s  participants {participants}  RTP in {rtp_in:>6}  forwarded {rtp_out:>6}  dropped {dropped}");
    }
    for h in clients {
        match h.await.context("a demo client panicked")? {
            Ok(r) => println!(
                "  {:<8} {} via {} (media over {}): sent {}, received {} from {} others",
                r.display_name,
                r.participant,
                r.controller,
                r.media_path,
                r.sent,
                r.received,
                r.by_source.len()
            ),
            Err(e) => println!("  a demo participant failed: {e}"),
        }
    }
    Ok(())
}
