//! `connector certs init`: a deployment CA and one certificate per host.

use anyhow::Context;
use clap::Subcommand;
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum CertsCommand {
    /// Create a deployment CA and a certificate and key for each host, in DIR.
    ///
    /// Keys are ECDSA P-256 (which browsers accept); certificates serve as both TLS server and client identities (mutual TLS
    /// on on-premises links and links to the cloud). Existing files are not overwritten.
    Init {
        /// Directory to write ca.pem, ca.key and <host>.pem / <host>.key into.
        dir: PathBuf,
        /// A host as [ROLE:]NAME=SAN[,SAN...], where each SAN is a DNS name or IP address clients
        /// use to reach it. ROLE is cloud, controller, mmr or scraper; it may be left out for
        /// `cloud`, `controller…`, `mmr…` and `prometheus` (a scraper). Each certificate carries
        /// its role and name (URI urn:meeting-connector:ROLE:NAME), which every mutual-TLS link
        /// checks. Repeat for each host. Default: cloud, controller-1, controller-2 and
        /// mmr-1..mmr-8 on loopback, and prometheus (a scraper's client certificate).
        #[arg(long = "host", value_name = "NAME=SANS")]
        hosts: Vec<String>,
        /// Days the certificates are valid, from an hour ago.
        #[arg(long, default_value_t = mc_node::identities::DEFAULT_VALIDITY_DAYS)]
        days: u32,
        /// Names the deployment in the CA's subject.
        #[arg(long, default_value = "meeting-connector")]
        deployment: String,
    },
}

/// MMR VMs `connector up` can run, each on its own loopback address.
pub const MAX_LOCAL_MMR_VMS: u32 = 8;

/// The loopback address of local MMR VM `i` (1-based).
pub fn mmr_vm_ip(i: u32) -> String {
    format!("127.0.0.{}", 10 + i)
}

/// The hosts `connector up` runs, on their loopback addresses.
pub fn default_hosts() -> Vec<(String, Vec<String>)> {
    let mut hosts = vec![
        ("cloud".into(), vec!["localhost".into(), "127.0.0.1".into()]),
        (
            "controller-1".into(),
            vec!["localhost".into(), "127.0.0.2".into()],
        ),
        (
            "controller-2".into(),
            vec!["localhost".into(), "127.0.0.3".into()],
        ),
    ];
    for i in 1..=MAX_LOCAL_MMR_VMS {
        hosts.push((format!("mmr-{i}"), vec!["localhost".into(), mmr_vm_ip(i)]));
    }
    // The client certificate a Prometheus server presents to scrape `/metrics`.
    hosts.push(("prometheus".into(), vec!["localhost".into()]));
    hosts
}

pub fn parse_host(spec: &str) -> anyhow::Result<(String, Vec<String>)> {
    let (name, sans) = spec
        .split_once('=')
        .ok_or_else(|| crate::UsageError(format!("--host {spec:?}: expected NAME=SAN[,SAN...]")))?;
    let sans: Vec<String> = sans
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    if let Err(e) = mc_node::identities::role_and_name(name) {
        return Err(crate::UsageError(format!("--host {spec:?}: {e}")).into());
    }
    if name.is_empty() || sans.is_empty() {
        return Err(crate::UsageError(format!(
            "--host {spec:?}: needs a name and at least one DNS name or IP address"
        ))
        .into());
    }
    Ok((name.to_string(), sans))
}

pub fn run(cmd: CertsCommand) -> anyhow::Result<()> {
    let CertsCommand::Init {
        dir,
        hosts,
        days,
        deployment,
    } = cmd;
    let hosts = if hosts.is_empty() {
        default_hosts()
    } else {
        hosts
            .iter()
            .map(|h| parse_host(h))
            .collect::<anyhow::Result<_>>()?
    };
    if days == 0 {
        return Err(crate::UsageError("--days must be at least 1".into()).into());
    }
    write_identities(&dir, &deployment, &hosts, days)?;
    println!(
        "wrote a deployment CA and {} host certificates to {} (valid {days} days)",
        hosts.len(),
        dir.display()
    );
    for (name, sans) in &hosts {
        println!("  {name}: {}", sans.join(", "));
    }
    Ok(())
}

pub fn write_identities(
    dir: &std::path::Path,
    deployment: &str,
    hosts: &[(String, Vec<String>)],
    days: u32,
) -> anyhow::Result<()> {
    if dir.join("ca.pem").exists() {
        return Err(crate::UsageError(format!(
            "{} already holds a deployment CA; remove it or choose another directory",
            dir.display()
        ))
        .into());
    }
    let refs: Vec<(&str, Vec<String>)> =
        hosts.iter().map(|(n, s)| (n.as_str(), s.clone())).collect();
    let now_unix_s = (mc_rt::unix_now_ms() / 1000) as i64;
    // ECDSA P-256: operators open the zone dashboard in browsers, which take no Ed25519.
    let ids = mc_node::identities::generate_with(
        mc_rt::certs::KeyAlgorithm::EcdsaP256,
        deployment,
        &refs,
        mc_rt::fresh_seed(),
        now_unix_s,
        days,
    )
    .context("generating certificates")?;
    ids.write(dir).context("writing certificates")?;
    Ok(())
}
