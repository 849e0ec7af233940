//! HTTP/1.1 over the seam's TLS streams, with hyper. hyper's own tokio glue uses the real runtime
//! (which panics in simulation), so the timer here is written against the seam, and connections
//! are driven by the seam's `spawn`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use mc_rt::{AsyncRead, AsyncWrite};
use serde::Serialize;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use thiserror::Error;

/// Request and response bodies larger than this are refused.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// A client must send its request headers within this time (slow-loris protection).
pub const HEADER_READ_TIMEOUT_MS: u64 = 10_000;

#[derive(Clone, Debug)]
struct SeamTimer;

struct SeamSleep(Pin<Box<dyn Future<Output = ()> + Send + Sync>>);

impl Future for SeamSleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

impl hyper::rt::Sleep for SeamSleep {}

impl hyper::rt::Timer for SeamTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn hyper::rt::Sleep>> {
        Box::pin(SeamSleep(Box::pin(mc_rt::sleep(duration))))
    }

    fn sleep_until(&self, deadline: std::time::Instant) -> Pin<Box<dyn hyper::rt::Sleep>> {
        self.sleep(deadline.saturating_duration_since(std::time::Instant::now()))
    }
}

pub type Body = Full<Bytes>;

/// Serves HTTP/1.1 requests on one connection until the peer closes it.
pub async fn serve<S, H, F>(stream: S, handler: H) -> Result<(), hyper::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let fut = handler(req);
        async move { Ok::<_, std::convert::Infallible>(fut.await) }
    });
    hyper::server::conn::http1::Builder::new()
        .timer(SeamTimer)
        .header_read_timeout(Duration::from_millis(HEADER_READ_TIMEOUT_MS))
        .serve_connection(TokioIo::new(stream), service)
        .await
}

/// The client sent a body we will not read: too large, or broken off.
#[derive(Debug, Error)]
#[error("request body unreadable or over {MAX_BODY_BYTES} bytes: {0}")]
pub struct BodyError(Box<dyn std::error::Error + Send + Sync>);

/// Reads a request body, refusing one over [`MAX_BODY_BYTES`].
pub async fn read_body(body: Incoming) -> Result<Bytes, BodyError> {
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => Err(BodyError(e)),
    }
}

pub fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let body = serde_json::to_vec_pretty(value).expect("responses serialize");
    Response::builder()
        .status(status)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("valid response")
}

#[derive(Debug, Error)]
pub enum HttpError {
    #[error("HTTP exchange failed: {0}")]
    Protocol(#[from] hyper::Error),
    #[error("the server's response was not valid JSON: {0}")]
    BadJson(String),
    #[error("{status}: {message}")]
    Status { status: StatusCode, message: String },
}

/// One JSON request on a fresh connection; 2xx answers return the body, others an error with the
/// server's message.
pub async fn request_json<S>(
    stream: S,
    method: &str,
    host: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value, HttpError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake::<_, Body>(TokioIo::new(stream)).await?;
    let driver = mc_rt::spawn(async move {
        let _ = conn.await;
    });
    let bytes = body
        .map(|b| serde_json::to_vec(&b).expect("json"))
        .unwrap_or_default();
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, host);
    if let Some(bearer) = bearer {
        req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {bearer}"));
    }
    let req = req
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(bytes)))
        .expect("valid request");
    let resp = sender.send_request(req).await?;
    let status = resp.status();
    let body = Limited::new(resp.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
        .map_err(|e| HttpError::BadJson(e.to_string()))?
        .to_bytes();
    driver.abort();
    let value: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| HttpError::BadJson(e.to_string()))?;
    if status.is_success() {
        Ok(value)
    } else {
        let message = value
            .get("message")
            .and_then(|m| m.as_str())
            .unwrap_or("no message")
            .to_string();
        Err(HttpError::Status { status, message })
    }
}
