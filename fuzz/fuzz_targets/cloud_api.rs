//! The cloud management API's JSON request bodies, read as the HTTPS shell reads them
//! (`mc_core::cloud::requests::parse_body`), and the monitoring report body.
//!
//! Input: `selector u8 | body`. Promises checked: only an empty body or a JSON object is read
//! (never an array of fields); a refused non-empty body that does not start with `{` is refused
//! as not an object; whatever is read re-encodes to a body that reads the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mc_core::cloud::requests::{
    parse_body, BodyError, CreateMeeting, CreateUser, Drain, EndMeeting, TicketRequest,
};
use mc_wire::monitor::Report;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;

fn check<T: Serialize + DeserializeOwned + PartialEq + Debug>(body: &[u8]) {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    match parse_body::<T>(body) {
        Ok(req) => {
            assert!(body.is_empty() || first == Some(&b'{'), "read a non-object");
            let again = serde_json::to_vec(&req).unwrap();
            assert_eq!(parse_body::<T>(&again), Ok(req));
        }
        Err(BodyError::NotAnObject) => assert!(!body.is_empty() && first != Some(&b'{')),
        Err(BodyError::Required(_)) => assert!(body.is_empty()),
        Err(BodyError::Invalid(_)) => assert_eq!(first, Some(&b'{')),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    match selector % 6 {
        0 => check::<CreateUser>(body),
        1 => check::<CreateMeeting>(body),
        2 => check::<EndMeeting>(body),
        3 => check::<TicketRequest>(body),
        4 => check::<Drain>(body),
        _ => check::<Report>(body),
    }
});
