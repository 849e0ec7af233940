//! Deployment identities: a deployment CA and per-host certificates, made with rcgen.
//!
//! Keys are either Ed25519, derived from 32-byte seeds the caller supplies (the simulation seed in
//! simulation, a test's seed in tests), so a simulated deployment's certificates are
//! reproducible; or ECDSA P-256, fresh from the OS, for a real deployment: browsers (the zone
//! dashboard) accept neither Ed25519 server keys nor Ed25519 signatures in a chain. Validity is always explicit: `not_before` is supplied by the caller (the real
//! or simulated clock) rather than taken from rcgen's defaults.
//!
//! Every host certificate says what its holder is: its role and node name in one
//! subject-alternative-name URI (`urn:meeting-connector:<role>:<node>`, see [`crate::identity`]),
//! which each mutual-TLS link checks against what the peer claims to be.

use crate::identity::{CertRole, PeerIdentity};
use crate::tls::Identity;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256, PKCS_ED25519,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CertError {
    #[error("generating certificates: {0}")]
    Generate(String),
    #[error("{path}: {detail}")]
    File { path: PathBuf, detail: String },
}

/// When certificates are valid: from `not_before_unix_s` for `days` days.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub not_before_unix_s: i64,
    pub days: u32,
}

impl Validity {
    /// Valid from an hour before `now_unix_s` (tolerating clock skew between hosts) for `days`.
    pub fn starting_around(now_unix_s: i64, days: u32) -> Validity {
        Validity {
            not_before_unix_s: now_unix_s - 3600,
            days,
        }
    }
}

/// A host to issue a certificate for: its role, its name (the node name its certificate carries
/// and its files' name), and the DNS names / IP addresses it serves.
#[derive(Debug, Clone)]
pub struct HostSpec {
    pub role: CertRole,
    pub name: String,
    pub subject_alt_names: Vec<String>,
    pub key_seed: [u8; 32],
}

#[derive(Debug, Clone)]
pub struct IssuedCert {
    pub name: String,
    pub cert_pem: String,
    pub key_pem: String,
}

#[derive(Debug, Clone)]
pub struct Deployment {
    pub ca_cert_pem: String,
    pub ca_key_pem: String,
    pub hosts: Vec<IssuedCert>,
}

fn ed25519_key(seed: &[u8; 32]) -> Result<KeyPair, CertError> {
    // PKCS#8 v1 wrapping of an Ed25519 seed (RFC 8410 §7).
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(seed);
    KeyPair::from_pkcs8_der_and_sign_algo(&PrivatePkcs8KeyDer::from(der), &PKCS_ED25519)
        .map_err(|e| CertError::Generate(e.to_string()))
}

/// Which keys a deployment's certificates carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// Ed25519 from the seeds given: reproducible, for simulations and tests.
    Ed25519Seeded,
    /// ECDSA P-256 from the OS's random source (seeds are ignored): what `connector certs init`
    /// and `connector up` issue, since browsers accept it.
    EcdsaP256,
}

impl KeyAlgorithm {
    fn key(self, seed: &[u8; 32]) -> Result<KeyPair, CertError> {
        match self {
            KeyAlgorithm::Ed25519Seeded => ed25519_key(seed),
            KeyAlgorithm::EcdsaP256 => KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
                .map_err(|e| CertError::Generate(e.to_string())),
        }
    }
}

fn validity_params(params: &mut CertificateParams, v: Validity) -> Result<(), CertError> {
    let start = time::OffsetDateTime::from_unix_timestamp(v.not_before_unix_s)
        .map_err(|e| CertError::Generate(e.to_string()))?;
    params.not_before = start;
    params.not_after = start + time::Duration::days(v.days as i64);
    Ok(())
}

/// Generates a CA and one certificate per host, each usable as TLS server and client.
pub fn generate(
    deployment_name: &str,
    ca_seed: &[u8; 32],
    hosts: &[HostSpec],
    validity: Validity,
    algorithm: KeyAlgorithm,
) -> Result<Deployment, CertError> {
    let gen = |e: rcgen::Error| CertError::Generate(e.to_string());
    let ca_key = algorithm.key(ca_seed)?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(gen)?;
    ca_params.distinguished_name = DistinguishedName::new();
    ca_params.distinguished_name.push(
        DnType::CommonName,
        format!("{deployment_name} deployment CA"),
    );
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    validity_params(&mut ca_params, validity)?;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(gen)?;
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca_params, ca_key);

    let mut issued = Vec::new();
    for host in hosts {
        let identity = PeerIdentity::new(host.role, &host.name).ok_or_else(|| {
            CertError::Generate(format!(
                "host name {:?}: must be 1 to {} letters, digits, '-' or '_' (it is the node name its certificate carries)",
                host.name,
                crate::identity::MAX_NODE_NAME_BYTES
            ))
        })?;
        let key = algorithm.key(&host.key_seed)?;
        let mut params = CertificateParams::new(host.subject_alt_names.clone()).map_err(gen)?;
        let uri = identity.uri().try_into().map_err(gen)?;
        params.subject_alt_names.push(SanType::URI(uri));
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::CommonName, host.name.clone());
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        validity_params(&mut params, validity)?;
        let cert = params.signed_by(&key, &issuer).map_err(gen)?;
        issued.push(IssuedCert {
            name: host.name.clone(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        });
    }
    Ok(Deployment {
        ca_cert_pem: ca_cert.pem(),
        ca_key_pem,
        hosts: issued,
    })
}

impl Deployment {
    /// The identity of one host, in memory (simulation and tests use this without files).
    pub fn identity(&self, name: &str) -> Result<Identity, CertError> {
        let host = self
            .hosts
            .iter()
            .find(|h| h.name == name)
            .ok_or_else(|| CertError::File {
                path: PathBuf::from(name),
                detail: "no such host in the deployment".into(),
            })?;
        identity_from_pem(
            &host.cert_pem,
            &host.key_pem,
            &self.ca_cert_pem,
            Path::new(name),
        )
    }

    pub fn ca(&self) -> Result<CertificateDer<'static>, CertError> {
        CertificateDer::from_pem_slice(self.ca_cert_pem.as_bytes()).map_err(|e| CertError::File {
            path: "ca.pem".into(),
            detail: e.to_string(),
        })
    }

    /// Writes `ca.pem`, `ca.key` and `<host>.pem` / `<host>.key` into `dir` (keys mode 0600).
    pub fn write(&self, dir: &Path) -> Result<(), CertError> {
        std::fs::create_dir_all(dir).map_err(|e| CertError::File {
            path: dir.into(),
            detail: e.to_string(),
        })?;
        write_file(&dir.join("ca.pem"), &self.ca_cert_pem, false)?;
        write_file(&dir.join("ca.key"), &self.ca_key_pem, true)?;
        for h in &self.hosts {
            write_file(&dir.join(format!("{}.pem", h.name)), &h.cert_pem, false)?;
            write_file(&dir.join(format!("{}.key", h.name)), &h.key_pem, true)?;
        }
        Ok(())
    }
}

fn write_file(path: &Path, contents: &str, secret: bool) -> Result<(), CertError> {
    let err = |e: std::io::Error| CertError::File {
        path: path.into(),
        detail: e.to_string(),
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    use std::io::Write;
    opts.open(path)
        .map_err(err)?
        .write_all(contents.as_bytes())
        .map_err(err)
}

fn identity_from_pem(
    cert_pem: &str,
    key_pem: &str,
    ca_pem: &str,
    origin: &Path,
) -> Result<Identity, CertError> {
    let bad = |what: &str, e: String| CertError::File {
        path: origin.into(),
        detail: format!("{what}: {e}"),
    };
    let chain = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad("certificate", e.to_string()))?;
    if chain.is_empty() {
        return Err(bad("certificate", "no CERTIFICATE block".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| bad("private key", e.to_string()))?;
    let ca = CertificateDer::from_pem_slice(ca_pem.as_bytes())
        .map_err(|e| bad("CA certificate", e.to_string()))?;
    Ok(Identity {
        chain,
        key: Arc::new(key),
        ca,
    })
}

/// Loads `<dir>/<name>.pem`, `<dir>/<name>.key` and `<dir>/ca.pem`.
pub fn load_identity(dir: &Path, name: &str) -> Result<Identity, CertError> {
    let read = |p: PathBuf| {
        std::fs::read_to_string(&p).map_err(|e| CertError::File {
            path: p,
            detail: e.to_string(),
        })
    };
    let cert = read(dir.join(format!("{name}.pem")))?;
    let key = read(dir.join(format!("{name}.key")))?;
    let ca = read(dir.join("ca.pem"))?;
    identity_from_pem(&cert, &key, &ca, &dir.join(format!("{name}.pem")))
}

/// Loads a CA certificate (what a client needs to trust the deployment).
pub fn load_ca(path: &Path) -> Result<CertificateDer<'static>, CertError> {
    CertificateDer::from_pem_file(path).map_err(|e| CertError::File {
        path: path.into(),
        detail: e.to_string(),
    })
}
