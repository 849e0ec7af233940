//! The cloud's HTTPS API: management (JSON REST with API keys) and monitoring (reports from
//! deployment hosts, authenticated by their certificates).
//!
//! | method | path | who | does |
//! |---|---|---|---|
//! | GET, HEAD | /healthz | anyone | liveness |
//! | GET | /v1/openapi.json | anyone | this API's OpenAPI 3.1 description ([`super::openapi`]) |
//! | GET | /metrics | a scraper's deployment certificate | Prometheus metrics |
//! | POST | /v1/users | admin | create a user: `{"email","display_name","role"}` → the user and its API key (shown once) |
//! | GET | /v1/users, /v1/users/{id} | admin (or the user itself) | users (the list in pages) |
//! | POST | /v1/meetings | any key | create a meeting: `{"topic", "expected_participants"?}`; a member key becomes its host |
//! | GET | /v1/meetings, /v1/meetings/{id} | any key | meetings (the list in pages) |
//! | POST | /v1/meetings/{id}/end | admin or host | end it: `{"reason"}`; controllers disconnect everyone |
//! | POST | /v1/meetings/{id}/tickets | any key | join ticket + live controllers: `{"display_name"}` (members may omit it) |
//! | DELETE | /v1/meetings/{id}/participants/{pid} | admin or host | remove a participant |
//! | POST, DELETE | /v1/controllers/{id}/drain, /v1/mmrs/{id}/drain | admin | drain (`{"deadline_s"}`) or undrain |
//! | GET | /v1/status | admin | controllers known to status sync |
//! | GET | /v1/zone | admin | the zone: controllers, MMRs, links and paths, load, HA, meetings, recent events, from monitoring |
//! | GET | /dashboard | anyone (the page holds no data; it asks for an admin key and polls /v1/zone) | the zone dashboard, one self-contained HTML page |
//! | POST | /v1/monitoring/reports | the reporting node's own certificate | a node's monitoring report |
//!
//! Errors are JSON `{"error": "<code>", "message": "<what to do>"}`: 400 malformed, 401 no or
//! unknown key, 403 known key without the right (or a certificate of the wrong role or
//! node), 404, 405 (with `Allow`), 409 conflict, 413 body
//! too large, 422 invalid field, 429 over the rate limit (with `Retry-After`), 503 nothing can
//! serve it now. (431, headers too large, is hyper's, without a body.)
//!
//! Lists come in pages: `?limit=` (1 to [`PAGE_MAX`], [`PAGE_DEFAULT`] by default) items after
//! the id `?after=`; the answer's `next` is the `after` of the next page, `null` on the last.
//!
//! Limits ([`super::limits`]): a body over `api_max_body_bytes` is refused after reading no more
//! than that; every request but the unauthenticated probes and documents (`/healthz`,
//! `/v1/openapi.json`, `/dashboard`, `/metrics`) and certified monitoring reports is taken from
//! its key's token bucket, or its source address's when the key is missing or unknown.

use super::driver::CloudTx;
use super::limits::{Limited, LimitedBy, SizeLimits};
use super::CloudState;
use crate::events::CloudEvent;
use crate::http::{json_response, read_body, Body};
use crate::identity_gate::link;
use crate::metrics::{CloudGauges, CloudMetrics};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use mc_core::cloud::management::{Caller, ManagementError, Role, UserId};
use mc_core::cloud::requests::{
    parse_body, CreateMeeting, CreateUser, Drain, EndMeeting, TicketRequest,
};
use mc_rt::identity::{CertRole, IdentityError, PeerIdentity};
use mc_wire::monitor::{NodeRole, RecentKind, Report};
use mc_wire::notify::{DrainTarget, MeetingEvent};
use mc_wire::{MeetingId, ParticipantId};
use serde_json::{json, Value};

type Reply = Response<Body>;

/// Items in a page of a list when the caller does not say.
pub const PAGE_DEFAULT: usize = 100;
/// Items in a page at most: 500 of the longest meetings (topic and reason of 200 escaped
/// characters each) are about 500 KB, well within what a client reads of one answer
/// ([`crate::http::MAX_RESPONSE_BYTES`]).
pub const PAGE_MAX: usize = 500;

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Reply {
    json_response(status, &json!({ "error": code, "message": message.into() }))
}

fn identity_refused(e: IdentityError) -> Reply {
    error(StatusCode::FORBIDDEN, "identity_refused", e.to_string())
}

fn management_error(e: ManagementError) -> Reply {
    let (status, code) = match &e {
        ManagementError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "unauthenticated"),
        ManagementError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
        ManagementError::NoSuchMeeting(_) => (StatusCode::NOT_FOUND, "no_such_meeting"),
        ManagementError::NoSuchUser(_) => (StatusCode::NOT_FOUND, "no_such_user"),
        ManagementError::MeetingEnded(_) => (StatusCode::CONFLICT, "meeting_ended"),
        ManagementError::Duplicate(_) => (StatusCode::CONFLICT, "duplicate"),
        ManagementError::Invalid { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_field"),
        ManagementError::Storage(_) => (StatusCode::INTERNAL_SERVER_ERROR, "storage_failed"),
    };
    error(status, code, e.to_string())
}

/// Reads a request body ([`parse_body`]): a client's malformed JSON is its `400 invalid_json`.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Box<Reply>> {
    parse_body(body).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            e.to_string(),
        ))
    })
}

/// The answer is the connection's last: the client is told, and the server closes after it.
fn closing(mut reply: Reply) -> Reply {
    reply.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
    reply
}

fn rate_limited(l: Limited) -> Reply {
    let whose = match l.by {
        LimitedBy::Key => "this API key",
        LimitedBy::Tickets => "join tickets with this API key",
        LimitedBy::Source => "requests from this address without a valid API key",
    };
    let mut reply = error(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "over the rate limit for {whose} ({} requests a second); nothing was done: retry after {} s",
            l.rate_per_s,
            l.retry_after_s()
        ),
    );
    reply.headers_mut().insert(
        hyper::header::RETRY_AFTER,
        hyper::header::HeaderValue::from(l.retry_after_s()),
    );
    reply
}

/// Which page of a list a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Page {
    limit: usize,
    after: Option<u64>,
}

fn page(query: Option<&str>) -> Result<Page, Box<Reply>> {
    let bad = |m: String| Box::new(error(StatusCode::BAD_REQUEST, "invalid_query", m));
    let mut page = Page {
        limit: PAGE_DEFAULT,
        after: None,
    };
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "limit" => {
                page.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=PAGE_MAX).contains(n))
                    .ok_or_else(|| bad(format!("limit {value:?} must be 1 to {PAGE_MAX}")))?;
            }
            "after" => {
                page.after = Some(value.parse::<u64>().map_err(|_| {
                    bad(format!(
                        "after {value:?} must be an id (a page's `next`), a non-negative integer"
                    ))
                })?);
            }
            _ => {}
        }
    }
    Ok(page)
}

/// One page of items ordered by id: the items after `page.after`, and the `next` cursor (the
/// last id of this page) when there are more.
fn paged<T: serde::Serialize>(
    items: impl Iterator<Item = (u64, T)>,
    page: Page,
) -> (Vec<T>, Option<u64>) {
    let mut rest = items.filter(|(id, _)| page.after.is_none_or(|a| *id > a));
    let mut taken = Vec::new();
    let mut last = None;
    for (id, item) in rest.by_ref().take(page.limit) {
        last = Some(id);
        taken.push(item);
    }
    let next = if rest.next().is_some() { last } else { None };
    (taken, next)
}

fn id_segment(s: &str, what: &str) -> Result<u64, Box<Reply>> {
    s.parse::<u64>().ok().filter(|n| *n > 0).ok_or_else(|| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            "invalid_id",
            format!("{s:?} is not a {what} id (a positive integer)"),
        ))
    })
}

/// Who is at the other end of an HTTPS connection: its address, and what its client certificate
/// (if it presented one) says it is.
#[derive(Debug, Clone)]
pub(super) struct TlsPeer {
    pub addr: std::net::SocketAddr,
    pub identity: Result<PeerIdentity, IdentityError>,
}

/// Where a request comes from and what its connection is served with.
#[derive(Debug, Clone)]
pub(super) struct Origin {
    pub peer: TlsPeer,
    pub sizes: SizeLimits,
}

pub(super) async fn handle(
    req: Request<Incoming>,
    cloud: CloudTx,
    metrics: CloudMetrics,
    origin: Origin,
) -> Reply {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let reply = answer(req, cloud, &metrics, origin).await;
    metrics.api_request(&method, &path, reply.status().as_u16());
    reply
}

async fn answer(
    req: Request<Incoming>,
    cloud: CloudTx,
    metrics: &CloudMetrics,
    origin: Origin,
) -> Reply {
    let Origin { peer, sizes } = origin;
    // A certificate that names a deployment host (which host is checked where it matters).
    let certified = peer.identity.is_ok();
    let source = peer.addr.ip();
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    // These answer without a key, so their wrong methods are refused before one is asked for.
    // (HEAD /healthz stays: probes use it.)
    if matches!(
        path.as_str(),
        "/healthz" | "/metrics" | "/v1/openapi.json" | "/dashboard"
    ) && method != Method::GET
        && !(path == "/healthz" && method == Method::HEAD)
    {
        return not_allowed(&method, &segments(&path));
    }
    if path == "/healthz" {
        return json_response(StatusCode::OK, &json!({ "status": "ok" }));
    }
    if path == "/v1/openapi.json" {
        return super::openapi::reply();
    }
    if path == "/dashboard" && method == Method::GET {
        return super::dashboard::page();
    }
    if path == "/metrics" && method == Method::GET {
        // Refused before the cloud's task does any work for it: only a scraper reads metrics.
        let scraper = peer
            .identity
            .clone()
            .and_then(|id| id.expect_role(CertRole::Scraper));
        if let Err(e) = metrics.identity.check(link::METRICS, peer.addr, scraper) {
            // The cloud's errors keep the API's shape (the health listeners' differs).
            return match e {
                IdentityError::NoCertificate => error(
                    StatusCode::FORBIDDEN,
                    "certificate_required",
                    "metrics need a client certificate from the deployment CA",
                ),
                e => identity_refused(e),
            };
        }
        let gauges = cloud
            .call(|s, now_ms| {
                let live = s
                    .status
                    .all()
                    .filter(|c| s.status.is_live(now_ms, c))
                    .count();
                CloudGauges {
                    latest_notification: s.notifications.latest_seq(),
                    controllers_live: live,
                    controllers_down: s.status.all().count().saturating_sub(live),
                }
            })
            .await;
        return match gauges {
            Ok(g) => crate::metrics::text_response(metrics.render(g)),
            Err(stopped) => error(
                StatusCode::SERVICE_UNAVAILABLE,
                "stopping",
                stopped.to_string(),
            ),
        };
    }
    let bearer = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    // Deployment hosts' reports are not callers' requests: their certificate vouches for them.
    if !(certified && path == "/v1/monitoring/reports") {
        let ticket = method == Method::POST
            && matches!(segments(&path).as_slice(), ["v1", "meetings", _, "tickets"]);
        let key = bearer.clone();
        let admitted = cloud
            .call(move |s, now_ms| {
                let management = &s.management;
                s.rate_limits
                    .admit(management, key.as_deref(), source, ticket, now_ms)
            })
            .await;
        match admitted {
            Ok(Ok(())) => {}
            Ok(Err(limited)) => {
                metrics.api_refused(limited.by.reason());
                return rate_limited(limited);
            }
            Err(stopped) => return stopping(stopped),
        }
    }
    let max = sizes.max_body_bytes;
    let too_large = |detail: String| {
        metrics.api_refused("body_too_large");
        // What the client still sends is not read: it learns so before it sends more.
        closing(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            detail,
        ))
    };
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared.filter(|len| *len > max as u64) {
        return too_large(format!(
            "the request body is {len} bytes; this cloud takes at most {max} (api_max_body_bytes)"
        ));
    }
    let query = req.uri().query().map(str::to_string);
    let body = match read_body(req.into_body(), max).await {
        Ok(b) => b,
        Err(e) => return too_large(format!("{e} (api_max_body_bytes)")),
    };
    // Everything up to here is the connection's; the decision is the cloud's, in turn.
    let decided = cloud
        .call(move |s, now_ms| {
            let (seg, bearer) = (segments(&path), bearer.as_deref());
            let request = Call {
                method: &method,
                seg: &seg,
                query: query.as_deref(),
                body: &body,
                bearer,
                peer: &peer,
            };
            route(request, s, now_ms).unwrap_or_else(|r| *r)
        })
        .await;
    decided.unwrap_or_else(stopping)
}

fn stopping(stopped: impl std::fmt::Display) -> Reply {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "stopping",
        stopped.to_string(),
    )
}

/// A request as the cloud's turn sees it.
struct Call<'a> {
    method: &'a Method,
    seg: &'a [&'a str],
    query: Option<&'a str>,
    body: &'a [u8],
    bearer: Option<&'a str>,
    peer: &'a TlsPeer,
}

fn route(call: Call<'_>, s: &mut CloudState, now_ms: u64) -> Result<Reply, Box<Reply>> {
    let Call {
        method,
        seg,
        query,
        body,
        bearer,
        peer,
    } = call;
    if seg == ["v1", "monitoring", "reports"] {
        if method != Method::POST {
            return Err(Box::new(not_allowed(method, seg)));
        }
        if let Err(IdentityError::NoCertificate) = &peer.identity {
            s.metrics
                .identity
                .refused(link::MONITORING, peer.addr, &IdentityError::NoCertificate);
            return Err(Box::new(error(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "monitoring reports need the reporting host's deployment certificate (mutual TLS)",
            )));
        }
        let report: Report = parse(body)?;
        if report.node.is_empty() || report.node.len() > 63 {
            return Err(Box::new(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                "node must be 1 to 63 bytes",
            )));
        }
        // A node reports only for itself: a report is the zone's view of that node.
        let role = match report.role {
            NodeRole::Controller => CertRole::Controller,
            NodeRole::Mmr => CertRole::Mmr,
        };
        let certified = peer
            .identity
            .clone()
            .and_then(|id| id.expect(role, &report.node));
        if let Err(e) = s
            .metrics
            .identity
            .check(link::MONITORING, peer.addr, certified)
        {
            return Err(Box::new(identity_refused(e)));
        }
        s.reports.insert(report.node.clone(), (now_ms, report));
        s.metrics.reports.inc();
        return Ok(json_response(
            StatusCode::ACCEPTED,
            &json!({ "accepted": true }),
        ));
    }
    if seg.first() != Some(&"v1") {
        return Err(Box::new(error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no resource at /{}", seg.join("/")),
        )));
    }
    let caller = s
        .management
        .authenticate(bearer)
        .map_err(|e| Box::new(management_error(e)))?;
    let m = |e| Box::new(management_error(e));
    match (method, &seg[1..]) {
        (&Method::POST, ["users"]) => {
            let c: CreateUser = parse(body)?;
            let (user, api_key) = s
                .management
                .create_user(now_ms, &caller, &c.email, &c.display_name, c.role)
                .map_err(m)?;
            Ok(json_response(
                StatusCode::CREATED,
                &json!({ "user": user, "api_key": api_key }),
            ))
        }
        (&Method::GET, ["users"]) => {
            let page = page(query)?;
            let users = s.management.users(&caller).map_err(m)?;
            let (users, next) = paged(users.into_iter().map(|u| (u.id.0, u)), page);
            Ok(json_response(
                StatusCode::OK,
                &json!({ "users": users, "next": next }),
            ))
        }
        (&Method::GET, ["users", id]) => {
            let id = UserId(id_segment(id, "user")?);
            Ok(json_response(
                StatusCode::OK,
                s.management.user(&caller, id).map_err(m)?,
            ))
        }
        (&Method::POST, ["meetings"]) => {
            let c: CreateMeeting = parse(body)?;
            let expected_participants = c.expected_participants().map_err(m)?;
            let meeting = s
                .management
                .create_meeting(now_ms, &caller, &c.topic, expected_participants)
                .map_err(m)?;
            s.notify(
                now_ms,
                MeetingEvent::Scheduled {
                    meeting: meeting.id,
                    topic: meeting.topic.clone(),
                },
            );
            Ok(json_response(StatusCode::CREATED, &meeting))
        }
        (&Method::GET, ["meetings"]) => {
            let page = page(query)?;
            let (meetings, next) = paged(s.management.meetings().map(|m| (m.id.0, m)), page);
            Ok(json_response(
                StatusCode::OK,
                &json!({ "meetings": meetings, "next": next }),
            ))
        }
        (&Method::GET, ["meetings", id]) => {
            let id = MeetingId(id_segment(id, "meeting")?);
            Ok(json_response(
                StatusCode::OK,
                s.management.meeting(id).map_err(m)?,
            ))
        }
        (&Method::POST, ["meetings", id, "end"]) => {
            let id = MeetingId(id_segment(id, "meeting")?);
            let e: EndMeeting = parse(body)?;
            let meeting = s
                .management
                .end_meeting(&caller, id, &e.reason)
                .map_err(m)?;
            s.notify(
                now_ms,
                MeetingEvent::Ended {
                    meeting: id,
                    reason: e.reason.clone(),
                },
            );
            s.events.record(CloudEvent::MeetingEnded {
                meeting: id,
                reason: e.reason.clone(),
            });
            Ok(json_response(StatusCode::OK, &meeting))
        }
        (&Method::DELETE, ["meetings", id, "participants", pid]) => {
            let id = MeetingId(id_segment(id, "meeting")?);
            let participant = ParticipantId(id_segment(pid, "participant")?);
            s.management.authorize_removal(&caller, id).map_err(m)?;
            let reason = "removed from the meeting by its host".to_string();
            s.notify(
                now_ms,
                MeetingEvent::ParticipantRemoved {
                    meeting: id,
                    participant,
                    reason,
                },
            );
            Ok(json_response(
                StatusCode::ACCEPTED,
                &json!({ "meeting": id, "participant": participant, "removed": "notified to controllers" }),
            ))
        }
        (&Method::POST, ["meetings", id, "tickets"]) => {
            let id = MeetingId(id_segment(id, "meeting")?);
            let j: TicketRequest = parse(body)?;
            // The meeting's live owner first (it may be drained: it still serves its meetings),
            // then every live, ready controller, least loaded first.
            let owner = s.status.live_owner(now_ms, id);
            let controllers: Vec<Value> = owner
                .into_iter()
                .chain(
                    s.status
                        .live_controllers(now_ms)
                        .into_iter()
                        .filter(|c| owner.is_none_or(|o| o.id != c.id)),
                )
                .map(|c| json!({ "id": c.id, "host": c.signalling.host, "port": c.signalling.port, "fallback_port": c.signalling.fallback_port }))
                .collect();
            if controllers.is_empty() {
                return Err(Box::new(error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no_live_controller",
                    "no controller is registered and live; start one or check its link to the cloud",
                )));
            }
            let issued = s
                .management
                .issue_ticket(now_ms, &caller, id, j.display_name.as_deref())
                .map_err(m)?;
            s.metrics.tickets.inc();
            if issued.starts_meeting {
                s.notify(now_ms, MeetingEvent::Started { meeting: id });
            }
            let (participant, ticket, expires_at_ms) =
                (issued.participant, issued.ticket, issued.expires_at_ms);
            s.events.record(CloudEvent::TicketIssued {
                participant,
                meeting: id,
            });
            Ok(json_response(
                StatusCode::CREATED,
                &json!({ "meeting": id, "participant": participant, "ticket": ticket, "expires_at_ms": expires_at_ms, "controllers": controllers }),
            ))
        }
        (&Method::POST | &Method::DELETE, [kind @ ("controllers" | "mmrs"), id, "drain"]) => {
            require_admin(&caller, "draining")?;
            if id.is_empty()
                || id.len() > 63
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return Err(Box::new(error(
                    StatusCode::BAD_REQUEST,
                    "invalid_id",
                    format!("{id:?} is not a controller or MMR id"),
                )));
            }
            let on = method == Method::POST;
            let d: Drain = parse(body)?;
            if d.deadline_s > 24 * 3600 {
                return Err(Box::new(error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_field",
                    "deadline_s must be at most a day",
                )));
            }
            let target = if *kind == "controllers" {
                if !s.status.all().any(|c| c.id.0 == *id) {
                    return Err(Box::new(error(
                        StatusCode::NOT_FOUND,
                        "no_such_controller",
                        format!("no controller {id} has registered"),
                    )));
                }
                DrainTarget::Controller(mc_wire::ControllerId(id.to_string()))
            } else {
                // Pushed to every controller, which ignore an MMR that is not theirs: an unknown
                // id would be accepted and do nothing.
                if !mmr_known(s, id) {
                    return Err(Box::new(error(
                        StatusCode::NOT_FOUND,
                        "no_such_mmr",
                        format!("no MMR {id} is known to the zone: none of that id has reported to monitoring, and it is no registered controller's own MMR"),
                    )));
                }
                DrainTarget::Mmr(mc_wire::MmrId(id.to_string()))
            };
            s.notify(
                now_ms,
                MeetingEvent::Drain {
                    target: target.clone(),
                    on,
                    deadline_ms: d.deadline_s * 1000,
                },
            );
            let drain = CloudEvent::Drain {
                kind: kind.to_string(),
                id: id.to_string(),
                on,
                deadline_s: d.deadline_s,
            };
            s.recent.push(RecentKind::Drain, drain.to_string());
            s.events.record(drain);
            // Remembered only for a node that reports (what the dashboard shows), so ids made up
            // by a caller cannot grow the set.
            if on && s.reports.contains_key(*id) {
                s.drains.insert(id.to_string());
            } else if !on {
                s.drains.remove(*id);
            }
            Ok(json_response(
                StatusCode::ACCEPTED,
                &json!({ "target": target, "draining": on, "deadline_s": d.deadline_s }),
            ))
        }
        (&Method::GET, ["status"]) => {
            require_admin(&caller, "the controllers' status")?;
            Ok(json_response(
                StatusCode::OK,
                &json!({ "controllers": controllers(s, now_ms) }),
            ))
        }
        (&Method::GET, ["zone"]) => {
            require_admin(&caller, "the zone's status")?;
            Ok(json_response(StatusCode::OK, &zone(s, now_ms)))
        }
        _ if allowed_methods(seg).is_some() => Err(Box::new(not_allowed(method, seg))),
        _ => Err(Box::new(error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no resource at /{}", seg.join("/")),
        ))),
    }
}

fn segments(path: &str) -> Vec<&str> {
    path.trim_end_matches('/').split('/').skip(1).collect()
}

/// The methods each resource of the table above supports, for a 405's `Allow` (RFC 9110 says a
/// 405 must carry it); `None` for a path that is no resource.
fn allowed_methods(seg: &[&str]) -> Option<&'static str> {
    Some(match seg {
        ["healthz"] => "GET, HEAD",
        ["metrics"] | ["dashboard"] | ["v1", "openapi.json"] => "GET",
        ["v1", "users" | "meetings"] => "GET, POST",
        ["v1", "users" | "meetings", _] | ["v1", "status" | "zone"] => "GET",
        ["v1", "meetings", _, "end" | "tickets"] | ["v1", "monitoring", "reports"] => "POST",
        ["v1", "meetings", _, "participants", _] => "DELETE",
        ["v1", "controllers" | "mmrs", _, "drain"] => "POST, DELETE",
        _ => return None,
    })
}

fn not_allowed(method: &Method, seg: &[&str]) -> Reply {
    let allow = allowed_methods(seg).unwrap_or("");
    let mut reply = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{method} is not supported on /{}; use {allow}",
            seg.join("/")
        ),
    );
    reply.headers_mut().insert(
        hyper::header::ALLOW,
        hyper::header::HeaderValue::from_static(allow),
    );
    reply
}

/// An MMR the zone knows of: an MMR VM that has reported to monitoring, a controller's own MMR
/// (of a controller registered with status sync or reporting), or one a controller reports
/// hosting meetings on.
fn mmr_known(s: &CloudState, id: &str) -> bool {
    use mc_wire::monitor::NodeRole;
    let own = |controller: &str| crate::controller::local_mmr_id(controller).0 == id;
    s.status.all().any(|c| own(&c.id.0))
        || s.reports.values().any(|(_, r)| match r.role {
            NodeRole::Mmr => r.node == id,
            NodeRole::Controller => own(&r.node) || r.hosted.iter().any(|h| h.mmr.0 == id),
        })
}

fn require_admin(caller: &Caller, what: &str) -> Result<(), Box<Reply>> {
    let admin = matches!(caller, Caller::Operator)
        || matches!(caller, Caller::User(u) if u.role == Role::Admin);
    if admin {
        Ok(())
    } else {
        Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("{what} needs an admin key"),
        )))
    }
}

fn controllers(s: &CloudState, now_ms: u64) -> Vec<Value> {
    s.status
        .all()
        .map(|c| {
            let mut v = serde_json::to_value(c).expect("serializable");
            v["live"] = json!(s.status.is_live(now_ms, c));
            // In an HA pair: the meetings the ownership registry grants it.
            v["owned_meetings"] = json!(s.status.owners().filter(|(_, (o, _))| *o == c.id).count());
            v
        })
        .collect()
}

/// How many events `/v1/zone` lists, newest first: the cloud's and every node's.
const ZONE_EVENTS: usize = 30;

/// The zone as an operator wants to see it: every controller and MMR, whether each is live and
/// ready, what each link uses, and the load; and the latest operator events, newest first.
fn zone(s: &CloudState, now_ms: u64) -> Value {
    let stale_after_ms = s.config.controller_down_after_ms;
    let nodes: Vec<Value> = s
        .reports
        .values()
        .map(|(at, r)| {
            let mut v = serde_json::to_value(r).expect("serializable");
            v["report_age_ms"] = json!(now_ms.saturating_sub(*at));
            v["reporting"] = json!(now_ms.saturating_sub(*at) <= stale_after_ms);
            v["drain_requested"] = json!(s.drains.contains(&r.node));
            v
        })
        .collect();
    let mut events: Vec<(u64, Value)> = s
        .recent
        .snapshot()
        .into_iter()
        .map(|e| {
            (
                e.at_ms,
                json!({ "at_ms": e.at_ms, "node": "cloud", "kind": e.kind, "text": e.text }),
            )
        })
        .chain(s.reports.values().flat_map(|(_, r)| {
            r.recent.iter().map(|e| {
                let v = json!({ "at_ms": e.at_ms, "node": r.node, "kind": e.kind, "text": e.text });
                (e.at_ms, v)
            })
        }))
        .collect();
    events.sort_by_key(|(at_ms, _)| std::cmp::Reverse(*at_ms));
    events.truncate(ZONE_EVENTS);
    let live_meetings = s
        .management
        .meetings()
        .filter(|m| m.ended.is_none())
        .count();
    let (participants, hosted) = s
        .status
        .all()
        .filter(|c| s.status.is_live(now_ms, c))
        .fold((0, 0), |(p, m), c| {
            (p + c.load.participants, m + c.load.meetings)
        });
    json!({
        "now_ms": now_ms,
        "controllers": controllers(s, now_ms),
        "nodes": nodes,
        "meetings": { "scheduled": live_meetings, "hosted": hosted },
        "participants": participants,
        "events": events.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
    })
}
