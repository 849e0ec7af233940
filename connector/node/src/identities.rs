//! Deployment identities for a set of hosts, derived from one seed: what `connector certs init`
//! writes, what `connector up` makes, and what tests and simulations hold in memory.
//!
//! Each host is named `ROLE:NAME`, or just `NAME` when the role follows from it
//! ([`role_and_name`]); its certificate carries both (see [`mc_rt::identity`]).

use mc_core::Rng;
use mc_rt::certs::{self, CertError, Deployment, HostSpec, KeyAlgorithm, Validity};
use mc_rt::identity::CertRole;

/// Validity of generated certificates unless the operator asks otherwise.
pub const DEFAULT_VALIDITY_DAYS: u32 = 365;

/// The role and node name of a host as written `ROLE:NAME` (ROLE one of cloud, controller, mmr,
/// scraper), or `NAME` alone for the names a deployment uses by convention: `cloud`,
/// `controller…` (controller-1), `mmr…` (mmr-1) and `prometheus` (a scraper).
pub fn role_and_name(host: &str) -> Result<(CertRole, &str), CertError> {
    if let Some((role, name)) = host.split_once(':') {
        let role = CertRole::parse(role).ok_or_else(|| {
            CertError::Generate(format!(
                "host {host:?}: unknown role {role:?}; roles are cloud, controller, mmr and scraper"
            ))
        })?;
        return Ok((role, name));
    }
    let role = if host == "cloud" {
        CertRole::Cloud
    } else if host.starts_with("controller") {
        CertRole::Controller
    } else if host.starts_with("mmr") {
        CertRole::Mmr
    } else if host == "prometheus" {
        CertRole::Scraper
    } else {
        return Err(CertError::Generate(format!(
            "host {host:?}: say which role it plays, as ROLE:{host} (ROLE one of cloud, controller, mmr, scraper)"
        )));
    };
    Ok((role, host))
}

/// One certificate per `(host, subject_alt_names)` (host as in [`role_and_name`]), plus the CA,
/// valid from about `now_unix_s`, with Ed25519 keys derived from `seed` (reproducible:
/// simulations and tests).
pub fn generate(
    deployment: &str,
    hosts: &[(&str, Vec<String>)],
    seed: u64,
    now_unix_s: i64,
    validity_days: u32,
) -> Result<Deployment, CertError> {
    generate_with(
        KeyAlgorithm::Ed25519Seeded,
        deployment,
        hosts,
        seed,
        now_unix_s,
        validity_days,
    )
}

/// As [`generate`], with the keys of `algorithm`.
pub fn generate_with(
    algorithm: KeyAlgorithm,
    deployment: &str,
    hosts: &[(&str, Vec<String>)],
    seed: u64,
    now_unix_s: i64,
    validity_days: u32,
) -> Result<Deployment, CertError> {
    let mut rng = Rng::seed_from_u64(seed);
    let ca_seed = rng.bytes::<32>();
    let specs = hosts
        .iter()
        .map(|(host, sans)| {
            let (role, name) = role_and_name(host)?;
            Ok(HostSpec {
                role,
                name: name.to_string(),
                subject_alt_names: sans.clone(),
                key_seed: rng.bytes::<32>(),
            })
        })
        .collect::<Result<Vec<_>, CertError>>()?;
    certs::generate(
        deployment,
        &ca_seed,
        &specs,
        Validity::starting_around(now_unix_s, validity_days),
        algorithm,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use mc_rt::identity::{IdentityError, PeerIdentity};

    fn end_entity(ids: &Deployment, name: &str) -> Vec<u8> {
        ids.identity(name).unwrap().chain[0].to_vec()
    }

    #[test]
    fn conventional_names_take_their_role_and_others_must_say_it() {
        assert_eq!(role_and_name("cloud").unwrap(), (CertRole::Cloud, "cloud"));
        assert_eq!(
            role_and_name("controller-2").unwrap(),
            (CertRole::Controller, "controller-2")
        );
        assert_eq!(role_and_name("mmr-8").unwrap(), (CertRole::Mmr, "mmr-8"));
        assert_eq!(
            role_and_name("prometheus").unwrap(),
            (CertRole::Scraper, "prometheus")
        );
        assert_eq!(
            role_and_name("scraper:grafana-agent").unwrap(),
            (CertRole::Scraper, "grafana-agent")
        );
        assert_eq!(
            role_and_name("mmr:edge-7").unwrap(),
            (CertRole::Mmr, "edge-7")
        );
        let unsaid = role_and_name("edge-7").unwrap_err().to_string();
        assert!(unsaid.contains("ROLE:edge-7"), "{unsaid}");
        let unknown = role_and_name("admin:root").unwrap_err().to_string();
        assert!(unknown.contains("unknown role \"admin\""), "{unknown}");
    }

    #[test]
    fn every_issued_certificate_carries_its_role_and_name() {
        for algorithm in [KeyAlgorithm::Ed25519Seeded, KeyAlgorithm::EcdsaP256] {
            let local = || vec!["127.0.0.1".to_string(), "localhost".to_string()];
            let hosts = [
                ("cloud", local()),
                ("controller-1", local()),
                ("mmr-3", local()),
                ("prometheus", local()),
                ("controller:ctl-east", local()),
            ];
            let ids = generate_with(algorithm, "test", &hosts, 5, 1_700_000_000, 1).unwrap();
            let expected = [
                (CertRole::Cloud, "cloud"),
                (CertRole::Controller, "controller-1"),
                (CertRole::Mmr, "mmr-3"),
                (CertRole::Scraper, "prometheus"),
                (CertRole::Controller, "ctl-east"),
            ];
            for (role, name) in expected {
                let got = PeerIdentity::from_der(&end_entity(&ids, name)).unwrap();
                assert_eq!(got, PeerIdentity::new(role, name).unwrap(), "{algorithm:?}");
            }
        }
    }

    #[test]
    fn the_ca_certificate_carries_no_identity() {
        let ids = generate("test", &[("cloud", vec!["localhost".into()])], 5, 0, 1).unwrap();
        assert_eq!(
            PeerIdentity::from_der(&ids.ca().unwrap()),
            Err(IdentityError::NoIdentity)
        );
    }

    #[test]
    fn a_name_no_node_may_have_is_not_issued() {
        let err = generate("test", &[("mmr:a b", vec!["localhost".into()])], 5, 0, 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"a b\""), "{err}");
    }
}
