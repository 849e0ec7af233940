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
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use thiserror::Error;

/// Request bodies larger than this are refused where no other limit is configured.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// A request line and headers larger than this are refused with 431 where no other limit is
/// configured.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// What a client reads of an answer at most. Well above the largest answer the cloud sends (a
/// page of meetings or users is capped; see the cloud's API), and still a bound on what a
/// misbehaving server can make a client hold.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;
/// A client must send its request headers within this time (slow-loris protection).
pub const HEADER_READ_TIMEOUT_MS: u64 = 10_000;
/// After its last answer, a connection reads and drops what the client still sends for up to
/// this long, and this much, before it closes (see [`linger`]).
pub const LINGER_MS: u64 = 2_000;
pub const LINGER_MAX_BYTES: usize = 16 * 1024 * 1024;

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
        self.sleep(deadline.saturating_duration_since(self.now()))
    }

    // hyper reckons its deadlines from this: the runtime's clock, so that a simulation's
    // virtual time (and a test's paused time) is the one every deadline is measured in.
    fn now(&self) -> std::time::Instant {
        mc_rt::std_now()
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
    serve_limited(stream, MAX_HEADER_BYTES, handler).await
}

/// [`serve`], refusing a request line and headers over `max_header_bytes` with 431 (hyper
/// answers it, without a body, and closes; the error it returns then says
/// [`hyper::Error::is_parse_too_large`]).
pub async fn serve_limited<S, H, F>(
    stream: S,
    max_header_bytes: usize,
    handler: H,
) -> Result<(), hyper::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let fut = handler(req);
        async move { Ok::<_, std::convert::Infallible>(fut.await) }
    });
    let held = Held(Arc::new(Mutex::new(stream)));
    let served = hyper::server::conn::http1::Builder::new()
        .timer(SeamTimer)
        .header_read_timeout(Duration::from_millis(HEADER_READ_TIMEOUT_MS))
        .max_header_size(max_header_bytes)
        .serve_connection(TokioIo::new(held.clone()), service)
        .without_shutdown()
        .await;
    // hyper has not shut the stream down either way (it drops it on an error, after a 431 too).
    linger(held).await;
    served.map(drop)
}

/// The stream hyper serves on, held here as well, so that it is closed properly however hyper
/// ends with it.
struct Held<S>(Arc<Mutex<S>>);

impl<S> Clone for Held<S> {
    fn clone(&self) -> Self {
        Held(self.0.clone())
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Held<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut mc_rt::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0.lock().unwrap()).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Held<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.0.lock().unwrap()).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0.lock().unwrap()).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0.lock().unwrap()).poll_shutdown(cx)
    }
}

/// Closes a connection whose answers are all sent without destroying them: the write side first
/// (TLS close_notify, then FIN), then what the client still sends is read and dropped until it
/// closes too, for at most [`LINGER_MS`] and [`LINGER_MAX_BYTES`]. A socket closed with unread
/// bytes in it sends a reset instead of a FIN, and a reset can reach the client before it has
/// read the answer (a 413 to a body it is still sending): it then sees a dropped connection.
/// This is the "lingering close" of RFC 9112 §9.6.
async fn linger<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S) {
    use mc_rt::{AsyncReadExt, AsyncWriteExt};
    let drained = async {
        if stream.shutdown().await.is_err() {
            return;
        }
        let mut buf = vec![0u8; 16 * 1024];
        let mut dropped = 0;
        while dropped < LINGER_MAX_BYTES {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => dropped += n,
            }
        }
    };
    let _ = mc_rt::timeout(Duration::from_millis(LINGER_MS), drained).await;
}

/// The client sent a body we will not read: too large, or broken off.
#[derive(Debug, Error)]
#[error("the request body is unreadable or over {max_bytes} bytes: {source}")]
pub struct BodyError {
    pub max_bytes: usize,
    source: Box<dyn std::error::Error + Send + Sync>,
}

/// Reads a request body, refusing one over `max_bytes`: no more than that is read.
pub async fn read_body(body: Incoming, max_bytes: usize) -> Result<Bytes, BodyError> {
    match Limited::new(body, max_bytes).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(source) => Err(BodyError { max_bytes, source }),
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
    Status {
        status: StatusCode,
        message: String,
        /// A 429's or 503's `Retry-After`, in seconds.
        retry_after_s: Option<u64>,
    },
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
    let retry_after_s = resp
        .headers()
        .get(hyper::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let body = Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
        .collect()
        .await
        .map_err(|e| {
            HttpError::BadJson(format!(
                "reading the answer (at most {MAX_RESPONSE_BYTES} bytes): {e}"
            ))
        })?
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
        Err(HttpError::Status {
            status,
            message,
            retry_after_s,
        })
    }
}
