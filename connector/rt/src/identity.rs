//! What a deployment certificate says its holder is: a role and a node name, carried as one
//! subject-alternative-name URI `urn:meeting-connector:<role>:<node>` (for example
//! `urn:meeting-connector:controller:controller-1`).
//!
//! The deployment CA signs every host's certificate, so the CA alone says only "one of ours".
//! Each mutual-TLS link also needs "the one this link expects": status sync takes a controller
//! registering under its own name, a controller's MMR link an MMR saying hello as itself, and so
//! on. [`PeerIdentity::from_der`] reads that claim from the end-entity certificate rustls
//! verified; the links compare it with what the peer says it is ([`PeerIdentity::expect`]).

use std::fmt;
use thiserror::Error;

/// The prefix of the identity URI; what follows is `<role>:<node>`.
pub const URI_PREFIX: &str = "urn:meeting-connector:";

/// Node names in certificates: what configuration allows for ids (letters, digits, '-', '_').
pub const MAX_NODE_NAME_BYTES: usize = 63;

/// The role a certificate's holder plays in the deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CertRole {
    /// The cloud: status sync, notification, monitoring and the management API.
    Cloud,
    /// A controller VM (ZC and its MMR).
    Controller,
    /// An MMR VM.
    Mmr,
    /// A metrics scraper or operator tool: it may read `/metrics` and `/v1/health`, nothing more.
    Scraper,
}

impl CertRole {
    pub const ALL: [CertRole; 4] = [
        CertRole::Cloud,
        CertRole::Controller,
        CertRole::Mmr,
        CertRole::Scraper,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CertRole::Cloud => "cloud",
            CertRole::Controller => "controller",
            CertRole::Mmr => "mmr",
            CertRole::Scraper => "scraper",
        }
    }

    pub fn parse(s: &str) -> Option<CertRole> {
        CertRole::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for CertRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role and the node it names, as one certificate carries them.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PeerIdentity {
    pub role: CertRole,
    pub node: String,
}

/// Why a peer's certificate does not make it who the link needs. Every variant is the peer's
/// fault (or its operator's: a certificate issued without an identity, or for another host).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdentityError {
    #[error("the peer presented no certificate")]
    NoCertificate,
    #[error("the peer's certificate does not parse: {0}")]
    Unreadable(String),
    #[error("the peer's certificate carries no {URI_PREFIX}<role>:<node> identity; reissue it with `connector certs init`, which writes one")]
    NoIdentity,
    #[error("the peer's certificate carries {count} {URI_PREFIX} identities; it must carry one")]
    Ambiguous { count: usize },
    #[error("the peer's certificate identity {uri:?} is not {URI_PREFIX}<role>:<node> with a known role and a valid node name")]
    Malformed { uri: String },
    #[error("this link takes a {expected} certificate; the peer presented a {presented} certificate (for {node:?})")]
    WrongRole {
        expected: CertRole,
        presented: CertRole,
        node: String,
    },
    #[error(
        "the peer claims to be {role} {claimed:?}, but its certificate is for {role} {certified:?}"
    )]
    NameMismatch {
        role: CertRole,
        claimed: String,
        certified: String,
    },
}

impl IdentityError {
    /// Every reason label, for counters that start at zero.
    pub const REASONS: [&'static str; 4] = [
        "no_certificate",
        "no_identity",
        "wrong_role",
        "name_mismatch",
    ];

    /// A bounded label for counting refusals.
    pub fn reason(&self) -> &'static str {
        match self {
            IdentityError::NoCertificate => "no_certificate",
            IdentityError::Unreadable(_)
            | IdentityError::NoIdentity
            | IdentityError::Ambiguous { .. }
            | IdentityError::Malformed { .. } => "no_identity",
            IdentityError::WrongRole { .. } => "wrong_role",
            IdentityError::NameMismatch { .. } => "name_mismatch",
        }
    }
}

/// Whether `name` may be a node name in a certificate.
pub fn valid_node_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NODE_NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl PeerIdentity {
    /// An identity to issue; `None` if `node` is no valid node name.
    pub fn new(role: CertRole, node: &str) -> Option<PeerIdentity> {
        valid_node_name(node).then(|| PeerIdentity {
            role,
            node: node.to_string(),
        })
    }

    /// The subject-alternative-name URI that carries this identity.
    pub fn uri(&self) -> String {
        format!("{URI_PREFIX}{}:{}", self.role, self.node)
    }

    /// Reads an identity URI; `None` if it is not one of ours.
    pub fn from_uri(uri: &str) -> Option<PeerIdentity> {
        let (role, node) = uri.strip_prefix(URI_PREFIX)?.split_once(':')?;
        PeerIdentity::new(CertRole::parse(role)?, node)
    }

    /// The identity an end-entity certificate (DER) carries.
    pub fn from_der(der: &[u8]) -> Result<PeerIdentity, IdentityError> {
        use x509_parser::extensions::GeneralName;
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| IdentityError::Unreadable(e.to_string()))?;
        let sans = cert
            .subject_alternative_name()
            .map_err(|e| IdentityError::Unreadable(e.to_string()))?;
        let ours: Vec<&str> = sans
            .iter()
            .flat_map(|s| s.value.general_names.iter())
            .filter_map(|n| match n {
                GeneralName::URI(u) if u.starts_with(URI_PREFIX) => Some(*u),
                _ => None,
            })
            .collect();
        match ours.as_slice() {
            [] => Err(IdentityError::NoIdentity),
            [uri] => PeerIdentity::from_uri(uri).ok_or_else(|| IdentityError::Malformed {
                uri: uri.to_string(),
            }),
            more => Err(IdentityError::Ambiguous { count: more.len() }),
        }
    }

    /// This identity if it is of `role`.
    pub fn expect_role(self, role: CertRole) -> Result<PeerIdentity, IdentityError> {
        if self.role == role {
            Ok(self)
        } else {
            Err(IdentityError::WrongRole {
                expected: role,
                presented: self.role,
                node: self.node,
            })
        }
    }

    /// `Ok` if this identity is `role` and names `claimed`: what a peer says it is (in a hello,
    /// a registration, a report) must be what its certificate says.
    pub fn expect(&self, role: CertRole, claimed: &str) -> Result<(), IdentityError> {
        self.clone().expect_role(role)?;
        if self.node == claimed {
            Ok(())
        } else {
            Err(IdentityError::NameMismatch {
                role,
                claimed: claimed.to_string(),
                certified: self.node.clone(),
            })
        }
    }
}

impl fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.role, self.node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate with these URIs among its subject alternative names.
    fn cert_with_uris(uris: &[&str]) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        for u in uris {
            let uri = u.to_string().try_into().unwrap();
            params.subject_alt_names.push(rcgen::SanType::URI(uri));
        }
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        params.self_signed(&key).unwrap().der().to_vec()
    }

    fn id(role: CertRole, node: &str) -> PeerIdentity {
        PeerIdentity::new(role, node).unwrap()
    }

    #[test]
    fn the_uri_names_role_then_node_and_reads_back() {
        let ctl = id(CertRole::Controller, "controller-1");
        assert_eq!(ctl.uri(), "urn:meeting-connector:controller:controller-1");
        for role in CertRole::ALL {
            let one = id(role, "node_7-a");
            assert_eq!(PeerIdentity::from_uri(&one.uri()), Some(one));
        }
    }

    #[test]
    fn uris_that_are_not_identities_read_as_none() {
        for uri in [
            "urn:meeting-connector:admin:root",
            "urn:meeting-connector:controller:",
            "urn:meeting-connector:controller",
            "urn:meeting-connector:controller:a:b",
            "urn:meeting-connector:controller:a b",
            "urn:meeting-connector:Controller:controller-1",
            "urn:other:controller:controller-1",
        ] {
            assert_eq!(PeerIdentity::from_uri(uri), None, "{uri}");
        }
        let long = format!("{URI_PREFIX}mmr:{}", "m".repeat(MAX_NODE_NAME_BYTES + 1));
        assert_eq!(PeerIdentity::from_uri(&long), None);
    }

    #[test]
    fn a_certificate_yields_its_one_identity() {
        let der = cert_with_uris(&[
            "https://example.com/not-ours",
            "urn:meeting-connector:mmr:mmr-1",
        ]);
        assert_eq!(PeerIdentity::from_der(&der), Ok(id(CertRole::Mmr, "mmr-1")));
    }

    #[test]
    fn certificates_without_exactly_one_valid_identity_are_refused() {
        assert_eq!(
            PeerIdentity::from_der(&cert_with_uris(&[])),
            Err(IdentityError::NoIdentity)
        );
        assert_eq!(
            PeerIdentity::from_der(&cert_with_uris(&[
                "urn:meeting-connector:mmr:mmr-1",
                "urn:meeting-connector:controller:controller-1",
            ])),
            Err(IdentityError::Ambiguous { count: 2 })
        );
        assert_eq!(
            PeerIdentity::from_der(&cert_with_uris(&["urn:meeting-connector:admin:root"])),
            Err(IdentityError::Malformed {
                uri: "urn:meeting-connector:admin:root".into()
            })
        );
        let garbage = PeerIdentity::from_der(b"\x30\x03\x02\x01\x00").unwrap_err();
        assert!(matches!(garbage, IdentityError::Unreadable(_)), "{garbage}");
        assert_eq!(garbage.reason(), "no_identity");
    }

    #[test]
    fn a_wrong_role_or_another_name_is_refused_with_its_reason() {
        let mmr = id(CertRole::Mmr, "mmr-1");
        assert_eq!(mmr.expect(CertRole::Mmr, "mmr-1"), Ok(()));
        let wrong_role = mmr.expect(CertRole::Controller, "mmr-1").unwrap_err();
        assert_eq!(
            wrong_role,
            IdentityError::WrongRole {
                expected: CertRole::Controller,
                presented: CertRole::Mmr,
                node: "mmr-1".into()
            }
        );
        assert_eq!(wrong_role.reason(), "wrong_role");
        let other = mmr.expect(CertRole::Mmr, "mmr-2").unwrap_err();
        assert_eq!(
            other,
            IdentityError::NameMismatch {
                role: CertRole::Mmr,
                claimed: "mmr-2".into(),
                certified: "mmr-1".into()
            }
        );
        assert_eq!(other.reason(), "name_mismatch");
        assert!(
            other.to_string().contains("claims to be mmr \"mmr-2\""),
            "{other}"
        );
        for e in [IdentityError::NoCertificate, IdentityError::NoIdentity] {
            assert!(IdentityError::REASONS.contains(&e.reason()));
        }
    }
}
