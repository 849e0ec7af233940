//! Deployment identities for a set of hosts, derived from one seed: what `connector certs init`
//! writes, what `connector up` makes, and what tests and simulations hold in memory.

use mc_core::Rng;
use mc_rt::certs::{self, CertError, Deployment, HostSpec, KeyAlgorithm, Validity};

/// Validity of generated certificates unless the operator asks otherwise.
pub const DEFAULT_VALIDITY_DAYS: u32 = 365;

/// One certificate per `(name, subject_alt_names)`, plus the CA, valid from about `now_unix_s`,
/// with Ed25519 keys derived from `seed` (reproducible: simulations and tests).
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
    let specs: Vec<HostSpec> = hosts
        .iter()
        .map(|(name, sans)| HostSpec {
            name: name.to_string(),
            subject_alt_names: sans.clone(),
            key_seed: rng.bytes::<32>(),
        })
        .collect();
    certs::generate(
        deployment,
        &ca_seed,
        &specs,
        Validity::starting_around(now_unix_s, validity_days),
        algorithm,
    )
}
