//! Snapshots of the exact bytes each wire format produces for a fixed example. A change to any
//! encoding shows up here as a diff to review; PROTOCOL.md quotes these examples.
//!
//! Every test also decodes its bytes again, so a snapshot is never of something we cannot read.
//! To refresh after an intended change: `INSTA_UPDATE=always cargo test -p mc-wire --test snapshots`,
//! then review the diff of `tests/snapshots/`.

use mc_wire::binding::{self, Binding};
use mc_wire::frame;
use mc_wire::link::{ControllerToMmr, MmrToController};
use mc_wire::monitor::{
    Capacity, HaReport, HostedMeeting as MonitoredMeeting, LinkPath, LinkState, MediaCounters,
    NodeRole, RecentEvent, RecentKind, Report,
};
use mc_wire::notify::{ControllerToNotify, DrainTarget, MeetingEvent, NotifyToController};
use mc_wire::peer::{HostedMeeting, PeerMsg};
use mc_wire::rfc4571;
use mc_wire::rtp::{RtpHeader, RtpPacket};
use mc_wire::signal::{ClientToZc, MediaEndpoints, RejectReason, ZcToClient};
use mc_wire::srtp::{MediaKey, Sealed};
use mc_wire::status::{
    ClaimOutcome, CloudToController, ControllerToCloud, Load, OwnedMeeting, SignallingEndpoints,
};
use mc_wire::ticket::{Ticket, TicketClaims};
use mc_wire::{hex, ports, ControllerId, MeetingId, MmrId, ParticipantId};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::{Debug, Write};

// ---------------------------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------------------------

/// A classic hexdump: offset, 16 bytes in two groups of 8, printable ASCII.
fn hexdump(bytes: &[u8]) -> String {
    let mut out = String::new();
    for (i, line) in bytes.chunks(16).enumerate() {
        write!(out, "{:04x} ", i * 16).unwrap();
        for j in 0..16 {
            if j == 8 {
                out.push(' ');
            }
            match line.get(j) {
                Some(b) => write!(out, " {b:02x}").unwrap(),
                None => out.push_str("   "),
            }
        }
        out.push_str("  |");
        out.extend(line.iter().map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            }
        }));
        out.push_str("|\n");
    }
    out
}

/// Both forms of some binary: the one-line hex (as carried in JSON or a log) and the dump.
fn render_bytes(title: &str, bytes: &[u8]) -> String {
    format!(
        "{title}: {} bytes\nhex: {}\n\n{}",
        bytes.len(),
        hex::encode(bytes),
        hexdump(bytes)
    )
}

/// A control frame: its header fields, its JSON body (as sent, then indented for reading), and
/// the bytes. Checks the frame decodes back to `msg`.
fn render_frame<T: Serialize + DeserializeOwned + PartialEq + Debug>(msg: &T) -> String {
    let bytes = frame::encode(msg);
    assert_eq!(&frame::decode::<T>(&bytes).expect("own frame decodes"), msg);
    let len = u32::from_be_bytes(bytes[..4].try_into().unwrap());
    let body = std::str::from_utf8(&bytes[5..]).expect("frame bodies are UTF-8");
    // Pretty-printed from the message itself, so fields keep the order they have on the wire.
    let pretty = serde_json::to_string_pretty(msg).unwrap();
    format!(
        "len: {len} (0x{len:08x}; version byte + {} body bytes)\nversion: {}\nbody: {body}\n\npretty:\n{pretty}\n\n{}",
        len - 1,
        bytes[4],
        render_bytes("frame", &bytes)
    )
}

/// A JSON document that travels as an HTTP body rather than in a frame: the body as the sender
/// puts it on the wire, then indented for reading. The monitoring reporter builds a
/// `serde_json::Value` first, so members come sorted by name (not in declaration order), and
/// that is what this shows. Checks the body decodes back to `msg`.
fn render_http_json<T: Serialize + DeserializeOwned + PartialEq + Debug>(msg: &T) -> String {
    let value = serde_json::to_value(msg).unwrap();
    let body = serde_json::to_string(&value).unwrap();
    assert_eq!(
        &serde_json::from_str::<T>(&body).expect("own JSON decodes"),
        msg
    );
    let pretty = serde_json::to_string_pretty(&value).unwrap();
    format!(
        "HTTP body (application/json): {} bytes\nbody: {body}\n\npretty:\n{pretty}",
        body.len()
    )
}

// ---------------------------------------------------------------------------------------------
// The examples (fixed values; documentation addresses from RFC 5737 and names under example.net)
// ---------------------------------------------------------------------------------------------

const MEETING: MeetingId = MeetingId(4242);
const PARTICIPANT: ParticipantId = ParticipantId(17);
/// 2026-01-01T00:00:00Z.
const ISSUED_AT_MS: u64 = 1_767_225_600_000;
const MEDIA_TOKEN: [u8; 16] = [
    0x6d, 0x74, 0x6b, 0x2d, 0x9a, 0x41, 0x07, 0xc3, 0x5e, 0x12, 0xb8, 0x4f, 0x20, 0xd1, 0x7e, 0x33,
];
const TXN: [u8; 12] = [
    0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
];

fn claims() -> TicketClaims {
    TicketClaims {
        meeting: MEETING,
        participant: PARTICIPANT,
        display_name: "Ada Lovelace".into(),
        issued_at_ms: ISSUED_AT_MS,
        expires_at_ms: ISSUED_AT_MS + 5 * 60 * 1000,
        nonce: std::array::from_fn(|i| 0xa0 + i as u8),
        expected_participants: None,
    }
}

/// A ticket with a placeholder signature (64 bytes 0x00..0x3f): the layout is what matters here;
/// real signatures are made and checked in `mc-core`.
fn ticket() -> Ticket {
    let claims = claims();
    Ticket {
        signed_bytes: claims.encode(),
        claims,
        signature: (0..64).collect(),
    }
}

fn rtp_packet() -> RtpPacket {
    RtpPacket {
        marker: true,
        payload_type: 96,
        sequence: 1000,
        timestamp: 160_000,
        ssrc: 0x1122_3344,
        csrc: vec![0xaabb_ccdd, 0x0102_0304],
        payload: b"opaque media".to_vec(),
    }
}

// ---------------------------------------------------------------------------------------------
// Signalling (client <-> ZC)
// ---------------------------------------------------------------------------------------------

#[test]
fn signal_join() {
    insta::assert_snapshot!(
        "signal_join",
        render_frame(&ClientToZc::Join {
            ticket: ticket().to_text()
        })
    );
}

#[test]
fn signal_leave() {
    insta::assert_snapshot!("signal_leave", render_frame(&ClientToZc::Leave));
}

#[test]
fn signal_joined() {
    let joined = ZcToClient::Joined {
        meeting: MEETING,
        participant: PARTICIPANT,
        media: MediaEndpoints {
            host: "192.0.2.10".into(),
            udp_port: ports::MEDIA,
            tcp_port: ports::MEDIA,
            tls_port: ports::HTTPS,
        },
        media_token: mc_wire::MediaToken::from_bytes(MEDIA_TOKEN.to_vec()),
        media_key: media_key(1),
        rejoin_pass: None,
    };
    insta::assert_snapshot!("signal_joined", render_frame(&joined));
}

#[test]
fn signal_rejoin_and_rejoin_pass() {
    // A pass has a ticket's shape: hex(claims) "." hex(HMAC-SHA256 tag), here with a made-up tag.
    let claims = mc_wire::ticket::TicketClaims {
        meeting: MEETING,
        participant: PARTICIPANT,
        display_name: "Ada".into(),
        issued_at_ms: 1_764_000_000_000,
        expires_at_ms: 1_764_000_600_000,
        nonce: [0x42; 16],
        expected_participants: None,
    };
    let pass = format!(
        "{}.{}",
        mc_wire::hex::encode(&claims.encode()),
        "ab".repeat(32)
    );
    insta::assert_snapshot!(
        "signal_rejoin_pass",
        render_frame(&ZcToClient::RejoinPass { pass: pass.clone() })
    );
    insta::assert_snapshot!("signal_rejoin", render_frame(&ClientToZc::Rejoin { pass }));
}

#[test]
fn signal_rekey() {
    let rekey = ZcToClient::Rekey {
        media_key: media_key(2),
    };
    insta::assert_snapshot!("signal_rekey", render_frame(&rekey));
}

#[test]
fn signal_rejected_meeting_full() {
    let rejected = ZcToClient::Rejected {
        reason: RejectReason::MeetingFull,
        message: "meeting 4242 has no room for another participant".into(),
        retry_after_ms: None,
    };
    insta::assert_snapshot!("signal_rejected_meeting_full", render_frame(&rejected));
}

#[test]
fn signal_rejected_retry_after() {
    let rejected = ZcToClient::Rejected {
        reason: RejectReason::NotReady,
        message: "controller controller-1, which hosts meeting 4242, is not answering; the meeting moves here within 1200 ms, once its lease has run out".into(),
        retry_after_ms: Some(1_200),
    };
    insta::assert_snapshot!("signal_rejected_retry_after", render_frame(&rejected));
}

#[test]
fn signal_ended() {
    insta::assert_snapshot!(
        "signal_ended",
        render_frame(&ZcToClient::Ended {
            reason: "the meeting ended".into(),
            rejoin: false
        })
    );
}

// ---------------------------------------------------------------------------------------------
// Status sync (controller <-> cloud)
// ---------------------------------------------------------------------------------------------

#[test]
fn status_register() {
    let register = ControllerToCloud::Register {
        controller: ControllerId("zc-east-1".into()),
        zone: "east".into(),
        signalling: SignallingEndpoints {
            host: "zc1.example.net".into(),
            port: ports::ZC,
            fallback_port: ports::HTTPS,
        },
        capacity: Load {
            participants: 1000,
            meetings: 100,
        },
        meetings: vec![OwnedMeeting {
            meeting: MeetingId(4242),
            epoch: 1_764_000_000_123,
        }],
    };
    insta::assert_snapshot!("status_register", render_frame(&register));
}

#[test]
fn status_heartbeat() {
    let heartbeat = ControllerToCloud::Heartbeat {
        load: Load {
            participants: 37,
            meetings: 4,
        },
        capacity: Load {
            participants: 400,
            meetings: 100,
        },
        ready: true,
        sent_ms: 1_764_000_000_500,
    };
    insta::assert_snapshot!("status_heartbeat", render_frame(&heartbeat));
}

#[test]
fn status_heartbeat_not_ready() {
    let load = Load {
        participants: 37,
        meetings: 4,
    };
    let capacity = Load {
        participants: 400,
        meetings: 100,
    };
    let heartbeat = ControllerToCloud::Heartbeat {
        load,
        capacity,
        ready: false,
        sent_ms: 0,
    };
    // A heartbeat without `ready` (from a controller that predates it) reads as ready.
    let old = r#"{"type":"heartbeat","load":{"participants":37,"meetings":4},"capacity":{"participants":400,"meetings":100}}"#;
    assert_eq!(
        serde_json::from_str::<ControllerToCloud>(old).unwrap(),
        ControllerToCloud::Heartbeat {
            load,
            capacity,
            ready: true,
            sent_ms: 0,
        }
    );
    insta::assert_snapshot!("status_heartbeat_not_ready", render_frame(&heartbeat));
}

#[test]
fn status_registered() {
    let key: Vec<u8> = (0..32).map(|i| 0xd0 ^ i).collect();
    let registered = CloudToController::Registered {
        ticket_key: hex::encode(&key),
        heartbeat_interval_ms: 5000,
        lease_ms: 3600,
        revoked: vec![MeetingId(4242)],
    };
    insta::assert_snapshot!("status_registered", render_frame(&registered));
}

#[test]
fn status_ownership() {
    let claim = ControllerToCloud::Claim {
        request: 7,
        meeting: MeetingId(4242),
        alive_peers: vec![ControllerId("zc-east-2".into())],
    };
    insta::assert_snapshot!("status_claim", render_frame(&claim));
    let granted = CloudToController::Claimed {
        request: 7,
        meeting: MeetingId(4242),
        outcome: ClaimOutcome::Granted {
            epoch: 1_764_000_000_124,
        },
    };
    insta::assert_snapshot!("status_claimed_granted", render_frame(&granted));
    let hosted = CloudToController::Claimed {
        request: 8,
        meeting: MeetingId(4243),
        outcome: ClaimOutcome::HostedBy {
            controller: ControllerId("zc-east-2".into()),
            signalling: SignallingEndpoints {
                host: "zc2.example.net".into(),
                port: ports::ZC,
                fallback_port: ports::HTTPS,
            },
        },
    };
    insta::assert_snapshot!("status_claimed_hosted_by", render_frame(&hosted));
    let release = ControllerToCloud::Release {
        meeting: MeetingId(4242),
        epoch: 1_764_000_000_124,
    };
    insta::assert_snapshot!("status_release", render_frame(&release));
    let ack = CloudToController::Ack {
        echo_ms: 1_764_000_000_500,
    };
    insta::assert_snapshot!("status_ack", render_frame(&ack));
}

#[test]
fn peer_ping_and_pong() {
    let ping = PeerMsg::Ping {
        controller: ControllerId("zc-east-1".into()),
        sent_ms: 1_764_000_000_500,
        meetings: vec![HostedMeeting {
            meeting: MeetingId(4242),
            epoch: 1_764_000_000_124,
            mmr: MmrId("zc-east-1-mmr".into()),
            participants: 12,
        }],
        load: Load {
            participants: 12,
            meetings: 1,
        },
        rejoin_key: None,
        capacity: Load {
            participants: 200,
            meetings: 100,
        },
    };
    insta::assert_snapshot!("peer_ping", render_frame(&ping));
    let pong = PeerMsg::Pong {
        controller: ControllerId("zc-east-2".into()),
        echo_ms: 1_764_000_000_500,
    };
    insta::assert_snapshot!("peer_pong", render_frame(&pong));
}

#[test]
fn signal_redirect_and_keepalive() {
    let redirect = ZcToClient::Redirect {
        controller: ControllerId("zc-east-2".into()),
        host: "zc2.example.net".into(),
        port: ports::ZC,
        fallback_port: ports::HTTPS,
        message: "meeting m4242 is hosted by controller zc-east-2".into(),
    };
    insta::assert_snapshot!("signal_redirect", render_frame(&redirect));
    insta::assert_snapshot!("signal_ping", render_frame(&ClientToZc::Ping));
    insta::assert_snapshot!("signal_pong", render_frame(&ZcToClient::Pong));
}

#[test]
fn status_rejected() {
    let rejected = CloudToController::Rejected {
        message: "unknown controller zc-east-9".into(),
    };
    insta::assert_snapshot!("status_rejected", render_frame(&rejected));
}

// ---------------------------------------------------------------------------------------------
// MMR link (MMR VM <-> controller)
// ---------------------------------------------------------------------------------------------

const MMR: &str = "mmr-east-2";

#[test]
fn link_hello() {
    let hello = MmrToController::Hello {
        mmr: MmrId(MMR.into()),
        capacity: 200,
        media: MediaEndpoints {
            host: "192.0.2.20".into(),
            udp_port: ports::MEDIA,
            tcp_port: ports::MEDIA,
            tls_port: ports::HTTPS,
        },
        cascade_port: None,
    };
    insta::assert_snapshot!("link_hello", render_frame(&hello));
}

#[test]
fn link_load() {
    let load = MmrToController::Load {
        participants: 37,
        rtp_in: 182_044,
        rtp_out: 1_274_308,
        dropped: 12,
    };
    insta::assert_snapshot!("link_load", render_frame(&load));
}

#[test]
fn link_admitted() {
    insta::assert_snapshot!(
        "link_admitted",
        render_frame(&MmrToController::Admitted {
            token: mc_wire::MediaToken::from_bytes(MEDIA_TOKEN.to_vec())
        })
    );
}

#[test]
fn link_welcome() {
    let welcome = ControllerToMmr::Welcome {
        controller: ControllerId("zc-east-1".into()),
        report_interval_ms: 1000,
    };
    insta::assert_snapshot!("link_welcome", render_frame(&welcome));
}

#[test]
fn link_admit() {
    let admit = ControllerToMmr::Admit {
        token: mc_wire::MediaToken::from_bytes(MEDIA_TOKEN.to_vec()),
        meeting: MEETING,
        participant: PARTICIPANT,
    };
    insta::assert_snapshot!("link_admit", render_frame(&admit));
}

#[test]
fn link_revoke() {
    insta::assert_snapshot!(
        "link_revoke",
        render_frame(&ControllerToMmr::Revoke {
            token: mc_wire::MediaToken::from_bytes(MEDIA_TOKEN.to_vec())
        })
    );
}

#[test]
fn link_refused() {
    // The text the controller sends when the capacity is 0 or the id is its own MMR's.
    let refused = ControllerToMmr::Refused {
        message: format!("MMR {MMR} with capacity 0 cannot join: the id is taken by this controller's own MMR or the capacity is 0"),
    };
    insta::assert_snapshot!("link_refused", render_frame(&refused));
}

#[test]
fn link_keepalive() {
    insta::assert_snapshot!("link_keepalive", render_frame(&ControllerToMmr::Keepalive));
    assert!(
        serde_json::from_str::<ControllerToMmr>(r#"{"type":"keepalive","extra":1}"#).is_err(),
        "a keepalive has no fields"
    );
}

// ---------------------------------------------------------------------------------------------
// Notification (cloud -> controller)
// ---------------------------------------------------------------------------------------------

/// When the example events happened: an hour after the ticket was issued.
const EVENT_AT_MS: u64 = ISSUED_AT_MS + 60 * 60 * 1000;

#[test]
fn notify_hello() {
    let hello = ControllerToNotify::Hello {
        controller: ControllerId("zc-east-1".into()),
        after_seq: 41,
    };
    insta::assert_snapshot!("notify_hello", render_frame(&hello));
}

#[test]
fn notify_welcome() {
    insta::assert_snapshot!(
        "notify_welcome",
        render_frame(&NotifyToController::Welcome {
            oldest_seq: 1,
            latest_seq: 44
        })
    );
}

#[test]
fn notify_event_ended() {
    let event = NotifyToController::Event {
        seq: 42,
        at_ms: EVENT_AT_MS,
        event: MeetingEvent::Ended {
            meeting: MEETING,
            reason: "the host ended the meeting".into(),
        },
    };
    insta::assert_snapshot!("notify_event_ended", render_frame(&event));
}

#[test]
fn notify_event_participant_removed() {
    let event = NotifyToController::Event {
        seq: 43,
        at_ms: EVENT_AT_MS + 1500,
        event: MeetingEvent::ParticipantRemoved {
            meeting: MEETING,
            participant: PARTICIPANT,
            reason: "removed from the meeting by its host".into(),
        },
    };
    insta::assert_snapshot!("notify_event_participant_removed", render_frame(&event));
}

#[test]
fn notify_event_drain_mmr() {
    let event = NotifyToController::Event {
        seq: 44,
        at_ms: EVENT_AT_MS + 3000,
        event: MeetingEvent::Drain {
            target: DrainTarget::Mmr(MmrId(MMR.into())),
            on: true,
            deadline_ms: 60_000,
        },
    };
    insta::assert_snapshot!("notify_event_drain_mmr", render_frame(&event));
}

// ---------------------------------------------------------------------------------------------
// Monitoring (every process -> cloud, HTTPS)
// ---------------------------------------------------------------------------------------------

#[test]
fn monitor_report() {
    let links = [
        (
            "notification",
            LinkState {
                path: LinkPath::Fallback,
                port: ports::HTTPS,
            },
        ),
        (
            "status_sync",
            LinkState {
                path: LinkPath::Dedicated,
                port: ports::STATUS_SYNC,
            },
        ),
    ];
    let report = Report {
        node: "zc-east-1".into(),
        role: NodeRole::Controller,
        live: true,
        ready: true,
        links: links
            .into_iter()
            .map(|(name, state)| (name.to_string(), state))
            .collect(),
        participants: 37,
        meetings: 4,
        media: MediaCounters {
            rtp_in: 182_044,
            rtp_out: 1_274_308,
            dropped: 12,
            udp_endpoints: 30,
            tcp_endpoints: 5,
            tls_endpoints: 2,
        },
        capacity: Some(Capacity {
            participants: 400,
            meetings: Some(50),
        }),
        draining: false,
        ha: Some(HaReport {
            lease_remaining_ms: 7_500,
            fenced: false,
            owned: vec![OwnedMeeting {
                meeting: MeetingId(12),
                epoch: 3,
            }],
            peer_up: true,
            takeovers: 1,
        }),
        hosted: vec![MonitoredMeeting {
            meeting: MeetingId(12),
            mmr: MmrId("mmr-2".into()),
            participants: 5,
        }],
        recent: vec![RecentEvent {
            at_ms: 1_700_000_000_000,
            kind: RecentKind::Link,
            text:
                "cloud_link up on port 443, fallback (fallback: the dedicated port did not answer)"
                    .into(),
        }],
    };
    insta::assert_snapshot!("monitor_report", render_http_json(&report));
}

// ---------------------------------------------------------------------------------------------
// Media
// ---------------------------------------------------------------------------------------------

#[test]
fn rtp_with_two_csrcs_and_marker() {
    let p = rtp_packet();
    let bytes = p.encode();
    assert_eq!(RtpPacket::decode(&bytes).unwrap(), p);
    let h = RtpHeader::parse(&bytes).unwrap();
    let summary = format!(
        "V=2 P=0 X=0 CC={} M={} PT={} seq={} ts={} ssrc={:#010x} csrc=[{}]\npayload at {}..{} ({:?})\n\n",
        h.csrc.len(),
        h.marker as u8,
        h.payload_type,
        h.sequence,
        h.timestamp,
        h.ssrc,
        h.csrc.iter().map(|c| format!("{c:#010x}")).collect::<Vec<_>>().join(", "),
        h.payload_offset,
        h.payload_offset + h.payload_len,
        String::from_utf8_lossy(&bytes[h.payload_offset..h.payload_offset + h.payload_len]),
    );
    insta::assert_snapshot!(
        "rtp_two_csrcs_marker",
        summary + &render_bytes("RTP packet", &bytes)
    );
}

fn media_token() -> mc_wire::MediaToken {
    mc_wire::MediaToken::from_bytes(MEDIA_TOKEN.to_vec())
}

/// A meeting key with a fixed secret: 32 bytes counting up from 0x40.
fn media_key(id: u32) -> MediaKey {
    MediaKey::new(id, std::array::from_fn(|i| 0x40 + i as u8))
}

/// Signed with the media token from the `joined` example, as requests and successes are.
fn render_binding(b: &Binding) -> String {
    let bytes = b.encode_signed(&media_token());
    let decoded = Binding::decode(&bytes).unwrap();
    assert_eq!(&decoded.msg, b);
    assert!(decoded.verify(&media_token()));
    let integrity = &bytes[bytes.len() - binding::INTEGRITY_BYTES..];
    let what = match b {
        Binding::Request {
            username, counter, ..
        } => format!(
            "request, USERNAME {} (the binding id of the media token), BINDING-COUNTER {counter}",
            hex::encode(&username.0)
        ),
        Binding::Success { mapped, .. } => format!("success, XOR-MAPPED-ADDRESS {mapped}"),
        Binding::Error { code, reason, .. } => format!("error, ERROR-CODE {code} {reason:?}"),
    };
    format!(
        "{what}\ntransaction id {}\nMESSAGE-INTEGRITY-SHA256 {} (HMAC-SHA256 keyed by the media token)\n\n{}",
        hex::encode(b.txn()),
        hex::encode(integrity),
        render_bytes("binding message", &bytes)
    )
}

#[test]
fn binding_request() {
    let b = Binding::Request {
        txn: TXN,
        username: binding::BindingId::of(&media_token()),
        counter: 1,
    };
    insta::assert_snapshot!("binding_request", render_binding(&b));
}

#[test]
fn binding_success_v4() {
    let b = Binding::Success {
        txn: TXN,
        mapped: "198.51.100.7:50000".parse().unwrap(),
    };
    insta::assert_snapshot!("binding_success_v4", render_binding(&b));
}

#[test]
fn binding_success_v6() {
    let b = Binding::Success {
        txn: TXN,
        mapped: "[2001:db8::7]:50000".parse().unwrap(),
    };
    insta::assert_snapshot!("binding_success_v6", render_binding(&b));
}

#[test]
fn binding_error() {
    let b = Binding::Error {
        txn: TXN,
        code: binding::code::UNAUTHORIZED,
        reason: "unknown or revoked media token".into(),
    };
    // About a grant the MMR does not know, so it has no key to sign with.
    let bytes = b.encode_unsigned();
    let decoded = Binding::decode(&bytes).unwrap();
    assert!(decoded.msg == b && !decoded.has_integrity());
    let text = format!(
        "error, ERROR-CODE 401 {:?}, unsigned\ntransaction id {}\n\n{}",
        "unknown or revoked media token",
        hex::encode(&TXN),
        render_bytes("binding message", &bytes)
    );
    insta::assert_snapshot!("binding_error", text);
}

#[test]
fn binding_stale_signed() {
    let b = Binding::Error {
        txn: TXN,
        code: binding::code::STALE,
        reason: "stale binding counter".into(),
    };
    insta::assert_snapshot!("binding_stale", render_binding(&b));
}

#[test]
fn sealed_rtp_packet() {
    let key = media_key(1);
    let plain = rtp_packet().encode();
    let ssrc = RtpHeader::parse(&plain).unwrap().ssrc;
    let (stream_key, salt) = key.derive(ssrc);
    let stream = key.stream(ssrc);
    let sealed = stream.seal(0, &plain).unwrap();
    let s = Sealed::peek(&sealed).unwrap();
    assert_eq!(stream.open(&s, &sealed).unwrap(), plain);
    let text = format!(
        "meeting key id 1, secret {}\nSSRC {ssrc:#010x}: stream key {}\n                  salt {}\nROC 0, sequence {}: nonce {}\n\n{}\n{}",
        hex::encode(&std::array::from_fn::<u8, 32, _>(|i| 0x40 + i as u8)),
        hex::encode(&stream_key),
        hex::encode(&salt),
        s.sequence,
        hex::encode(&nonce(&salt, ssrc, 0, s.sequence)),
        render_bytes("plaintext RTP packet (section 9)", &plain),
        render_bytes("sealed", &sealed)
    );
    insta::assert_snapshot!("srtp_sealed_rtp", text);
}

/// The nonce as PROTOCOL §9.2 defines it, computed here independently of the sealer.
fn nonce(salt: &[u8; 12], ssrc: u32, roc: u32, seq: u16) -> [u8; 12] {
    let mut iv = [0u8; 12];
    iv[2..6].copy_from_slice(&ssrc.to_be_bytes());
    iv[6..10].copy_from_slice(&roc.to_be_bytes());
    iv[10..].copy_from_slice(&seq.to_be_bytes());
    std::array::from_fn(|i| iv[i] ^ salt[i])
}

#[test]
fn rfc4571_framed_rtp_packet() {
    let packet = rtp_packet().encode();
    let framed = rfc4571::encode(&packet);
    assert_eq!(rfc4571::decode_all(&framed).unwrap(), vec![&packet[..]]);
    let text = format!(
        "length prefix: {:02x} {:02x} ({} bytes follow)\n\n{}",
        framed[0],
        framed[1],
        packet.len(),
        render_bytes("framed", &framed)
    );
    insta::assert_snapshot!("rfc4571_framed_rtp", text);
}

// ---------------------------------------------------------------------------------------------
// Join ticket
// ---------------------------------------------------------------------------------------------

#[test]
fn ticket_claims_encoding() {
    let c = claims();
    let bytes = c.encode();
    assert_eq!(TicketClaims::decode(&bytes).unwrap(), c);
    let what = format!(
        "version 1, meeting {}, participant {}, issued_at_ms {}, expires_at_ms {}, nonce {}, display name {:?} ({} bytes)",
        c.meeting.0,
        c.participant.0,
        c.issued_at_ms,
        c.expires_at_ms,
        hex::encode(&c.nonce),
        c.display_name,
        c.display_name.len()
    );
    insta::assert_snapshot!(
        "ticket_claims",
        format!("{what}\n\n{}", render_bytes("claims", &bytes))
    );
}

#[test]
fn ticket_claims_with_a_size_hint_encoding() {
    let c = TicketClaims {
        expected_participants: Some(500),
        ..claims()
    };
    let bytes = c.encode();
    assert_eq!(TicketClaims::decode(&bytes).unwrap(), c);
    insta::assert_snapshot!(
        "ticket_claims_hinted",
        format!(
            "version 2: version 1's fields, then expected_participants 500\n\n{}",
            render_bytes("claims", &bytes)
        )
    );
}

#[test]
fn ticket_text() {
    let t = ticket();
    let text = t.to_text();
    assert_eq!(Ticket::parse(&text).unwrap(), t);
    insta::assert_snapshot!("ticket_text", format!("{} chars\n{text}", text.len()));
}
