//! The management API's JSON request bodies, and the one function that reads them.
//!
//! They live here, beside the state machine they drive, rather than in the HTTPS shell, so the
//! bytes a hostile client sends can be fuzzed without a server (`fuzz/fuzz_targets/cloud_api.rs`).
//! The shell (`mc-node`'s `cloud::api`) maps a [`BodyError`] to `400 invalid_json`.

use super::management::{ManagementError, Role, MAX_EXPECTED_PARTICIPANTS};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// `POST /v1/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    pub email: String,
    pub display_name: String,
    #[serde(default = "member")]
    pub role: Role,
}

fn member() -> Role {
    Role::Member
}

/// `POST /v1/meetings`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateMeeting {
    pub topic: String,
    /// The size hint, read as any JSON value so that a wrong type (`-1`, `2.5`, `"many"`) is a
    /// `422` naming the field, from [`CreateMeeting::expected_participants`], rather than the
    /// parser's bare `400`. Absent or `null`: no hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_participants: Option<serde_json::Value>,
}

impl CreateMeeting {
    /// The size hint as a whole number (its range is checked by management).
    pub fn expected_participants(&self) -> Result<Option<u64>, ManagementError> {
        self.expected_participants
            .as_ref()
            .map(|v| {
                v.as_u64().ok_or_else(|| ManagementError::Invalid {
                    field: "expected_participants",
                    reason: format!(
                        "must be a whole number from 1 to {MAX_EXPECTED_PARTICIPANTS}, not {v}"
                    ),
                })
            })
            .transpose()
    }
}

/// `POST /v1/meetings/{id}/end`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EndMeeting {
    #[serde(default = "ended_by_host")]
    pub reason: String,
}

fn ended_by_host() -> String {
    "the host ended the meeting".into()
}

/// `POST /v1/meetings/{id}/tickets`: members may omit the name (their own is used).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TicketRequest {
    pub display_name: Option<String>,
}

/// `POST|DELETE /v1/{controllers,mmrs}/{id}/drain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Drain {
    #[serde(default = "default_deadline_s")]
    pub deadline_s: u64,
}

fn default_deadline_s() -> u64 {
    60
}

/// Why a request body was refused: always the client's fault (`400 invalid_json`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BodyError {
    /// Empty, and the request has required fields.
    #[error("request body required: {0}")]
    Required(String),
    #[error("request body: expected a JSON object")]
    NotAnObject,
    #[error("request body: {0}")]
    Invalid(String),
}

/// Reads one request body. An empty body is `{}` (so requests whose fields all have defaults need
/// none); anything else must be one JSON object of the request's fields.
pub fn parse_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, BodyError> {
    if body.is_empty() {
        return serde_json::from_slice(b"{}").map_err(|e| BodyError::Required(e.to_string()));
    }
    // serde also reads a struct from a JSON array of its fields in order, so `["standup"]` would
    // create a meeting and `[]` drain with the default deadline: only an object is a request.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(BodyError::NotAnObject);
    }
    serde_json::from_slice(body).map_err(|e| BodyError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_body_takes_the_defaults_or_names_the_missing_field() {
        assert_eq!(parse_body::<Drain>(b""), Ok(Drain { deadline_s: 60 }));
        assert_eq!(
            parse_body::<EndMeeting>(b"").unwrap().reason,
            "the host ended the meeting"
        );
        let e = parse_body::<CreateMeeting>(b"").unwrap_err();
        assert!(e.to_string().contains("missing field `topic`"), "{e}");
    }

    #[test]
    fn only_an_object_of_known_fields_is_a_request() {
        assert_eq!(
            parse_body::<CreateMeeting>(br#"["standup"]"#),
            Err(BodyError::NotAnObject)
        );
        assert_eq!(parse_body::<Drain>(b" []"), Err(BodyError::NotAnObject));
        assert!(matches!(
            parse_body::<CreateMeeting>(br#"{"topic":"a","host":1}"#),
            Err(BodyError::Invalid(_))
        ));
        let m: CreateMeeting =
            parse_body(br#"{"topic":"a","expected_participants":null}"#).unwrap();
        assert_eq!(m.expected_participants(), Ok(None));
        let m: CreateMeeting = parse_body(br#"{"topic":"a","expected_participants":500}"#).unwrap();
        assert_eq!(m.expected_participants(), Ok(Some(500)));
        // A hint of the wrong type is read, and refused naming the field.
        for bad in [r#""many""#, "-1", "2.5", "[]"] {
            let body = format!(r#"{{"topic":"a","expected_participants":{bad}}}"#);
            let m: CreateMeeting = parse_body(body.as_bytes()).unwrap();
            assert!(
                matches!(
                    m.expected_participants(),
                    Err(ManagementError::Invalid {
                        field: "expected_participants",
                        ..
                    })
                ),
                "{bad}"
            );
        }
        let u: CreateUser =
            parse_body(br#" {"email":"a@b","display_name":"A","role":"admin"}"#).unwrap();
        assert_eq!(u.role, Role::Admin);
    }

    /// Found by `ci/fuzz` (cloud_api): a hint too large for any integer is read as a float, and
    /// what is written back must read as the same request.
    #[test]
    fn a_hint_too_large_for_an_integer_is_refused_and_reads_back_the_same() {
        let body = br#"{"topic":"town hall","expected_participants":50000003118985439067300750}"#;
        let m: CreateMeeting = parse_body(body).unwrap();
        assert!(matches!(
            m.expected_participants(),
            Err(ManagementError::Invalid {
                field: "expected_participants",
                ..
            })
        ));
        let again = serde_json::to_vec(&m).unwrap();
        assert_eq!(parse_body::<CreateMeeting>(&again), Ok(m));
    }
}
