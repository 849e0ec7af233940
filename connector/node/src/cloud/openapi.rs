//! The API's OpenAPI 3.1 description, `openapi.json` beside this file: kept in the repository,
//! compiled in, and served at `GET /v1/openapi.json` without a key (it describes the API and
//! reveals no data). `tests/openapi.rs` holds it to the routes the server answers, and
//! `ci/contract-test` fuzzes a running cloud from it.

use crate::http::Body;
use hyper::{Response, StatusCode};

const DOCUMENT: &str = include_str!("openapi.json");

pub(super) fn reply() -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Body::from(DOCUMENT))
        .expect("valid response")
}
