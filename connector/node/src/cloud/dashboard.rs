//! The zone dashboard: one self-contained page (HTML, CSS and script embedded, nothing fetched
//! from elsewhere) that asks for the operator's API key and polls `GET /v1/zone` every second.
//! The page holds no data, so it is served to anyone; the zone itself needs an admin key.

use crate::http::Body;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, StatusCode};

const PAGE: &str = include_str!("dashboard.html");

/// Only this origin's own inline code and its own API: the page cannot load or send anything
/// elsewhere, even if a report carried markup.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

pub(super) fn page() -> Response<Body> {
    Response::builder()
        .status(StatusCode::OK)
        .header(hyper::header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header(hyper::header::CACHE_CONTROL, "no-store")
        .header(
            hyper::header::CONTENT_SECURITY_POLICY,
            CONTENT_SECURITY_POLICY,
        )
        .header("x-content-type-options", "nosniff")
        .body(Full::new(Bytes::from_static(PAGE.as_bytes())))
        .expect("valid response")
}
