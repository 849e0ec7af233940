//! Seed inputs for every target, made by the real encoders so they stay valid as formats change.
//! `examples/seed_corpus.rs` writes them to `corpus/<target>/seed-<name>`.

use crate::StreamInput;
use mc_core::cloud::requests::{CreateMeeting, CreateUser, Drain, EndMeeting, TicketRequest};
use mc_core::ticket::TicketSigner;
use mc_wire::binding::{code, Binding, BindingId};
use mc_wire::link::{ControllerToMmr, MmrToController};
use mc_wire::monitor::{
    Capacity, HaReport, HostedMeeting as MonitoredMeeting, LinkPath, LinkState, MediaCounters,
    NodeRole, RecentEvent, RecentKind, Report,
};
use mc_wire::notify::{ControllerToNotify, DrainTarget, MeetingEvent, NotifyToController};
use mc_wire::peer::{HostedMeeting, PeerMsg};
use mc_wire::rtp::RtpPacket;
use mc_wire::signal::{ClientToZc, MediaEndpoints, RejectReason, ZcToClient};
use mc_wire::srtp::MediaKey;
use mc_wire::status::{
    ClaimOutcome, CloudToController, ControllerToCloud, Load, OwnedMeeting, SignallingEndpoints,
};
use mc_wire::ticket::TicketClaims;
use mc_wire::{frame, rfc4571, ControllerId, MediaToken, MeetingId, MmrId, ParticipantId};
use serde::Serialize;

/// The seed of the cloud key the `ticket_verify` target's verifier trusts.
pub const TICKET_KEY_SEED: [u8; 32] = [7; 32];
/// The instant (Unix ms) the seed tickets are issued at; they expire a minute later.
pub const ISSUED_AT_MS: u64 = 1_700_000_000_000;

pub struct Seed {
    pub target: &'static str,
    pub name: String,
    pub bytes: Vec<u8>,
}

fn json<T: Serialize>(target: &'static str, name: &str, msg: &T) -> Seed {
    Seed {
        target,
        name: name.to_string(),
        bytes: serde_json::to_vec(msg).expect("seed messages encode"),
    }
}

fn token(b: u8) -> MediaToken {
    MediaToken::from_bytes(vec![b; 16])
}

fn endpoints() -> MediaEndpoints {
    MediaEndpoints {
        host: "10.0.0.5".into(),
        udp_port: 8801,
        tcp_port: 8801,
        tls_port: 443,
    }
}

fn signalling() -> SignallingEndpoints {
    SignallingEndpoints {
        host: "zc.example".into(),
        port: 8802,
        fallback_port: 443,
    }
}

fn load(p: u32, m: u32) -> Load {
    Load {
        participants: p,
        meetings: m,
    }
}

pub fn claims(name: &str, nonce: u8) -> TicketClaims {
    TicketClaims {
        meeting: MeetingId(42),
        participant: ParticipantId(7),
        display_name: name.into(),
        issued_at_ms: ISSUED_AT_MS,
        expires_at_ms: ISSUED_AT_MS + 60_000,
        nonce: [nonce; 16],
        expected_participants: None,
    }
}

pub fn signal() -> (Vec<ClientToZc>, Vec<ZcToClient>) {
    let ticket = TicketSigner::from_seed(&TICKET_KEY_SEED)
        .sign(claims("Ada", 1))
        .to_text();
    (
        vec![
            ClientToZc::Rejoin {
                pass: mc_core::zc::rejoin::RejoinKeys::new([0x3c; 32]).issue(claims("Ada", 2)),
            },
            ClientToZc::Join { ticket },
            ClientToZc::Leave,
            ClientToZc::Ping,
        ],
        vec![
            ZcToClient::Joined {
                meeting: MeetingId(42),
                participant: ParticipantId(7),
                media: endpoints(),
                media_token: token(0xab),
                media_key: MediaKey::new(1, [0x5c; 32]),
                rejoin_pass: Some("00.ab".into()),
            },
            ZcToClient::RejoinPass {
                pass: "00.ab".into(),
            },
            ZcToClient::Rekey {
                media_key: MediaKey::new(2, [0x5d; 32]),
            },
            ZcToClient::Rejected {
                reason: RejectReason::MeetingFull,
                message: "the meeting is full".into(),
                retry_after_ms: None,
            },
            ZcToClient::Rejected {
                reason: RejectReason::NotReady,
                message: "the meeting moves here within 1200 ms".into(),
                retry_after_ms: Some(1_200),
            },
            ZcToClient::Ended {
                reason: "the host ended the meeting".into(),
                rejoin: true,
            },
            ZcToClient::Redirect {
                controller: ControllerId("controller-2".into()),
                host: "10.0.0.3".into(),
                port: 8802,
                fallback_port: 443,
                message: "hosted by controller-2".into(),
            },
            ZcToClient::Pong,
        ],
    )
}

pub fn link() -> (Vec<MmrToController>, Vec<ControllerToMmr>) {
    (
        vec![
            MmrToController::Hello {
                mmr: MmrId("mmr-1".into()),
                capacity: 1000,
                media: endpoints(),
                cascade_port: Some(8805),
            },
            MmrToController::Load {
                participants: 3,
                rtp_in: 1200,
                rtp_out: 2400,
                dropped: 1,
            },
            MmrToController::Admitted { token: token(1) },
        ],
        vec![
            ControllerToMmr::Welcome {
                controller: ControllerId("controller-1".into()),
                report_interval_ms: 1000,
            },
            ControllerToMmr::Admit {
                token: token(2),
                meeting: MeetingId(42),
                participant: ParticipantId(7),
            },
            ControllerToMmr::Revoke { token: token(2) },
            ControllerToMmr::Refused {
                message: "unknown MMR".into(),
            },
            ControllerToMmr::Keepalive,
        ],
    )
}

pub fn peer() -> Vec<PeerMsg> {
    vec![
        PeerMsg::Ping {
            controller: ControllerId("controller-1".into()),
            sent_ms: ISSUED_AT_MS,
            meetings: vec![HostedMeeting {
                meeting: MeetingId(42),
                epoch: 3,
                mmr: MmrId("mmr-1".into()),
                participants: 2,
            }],
            load: load(2, 1),
            capacity: load(1000, 100),
            rejoin_key: Some("5e".repeat(32)),
        },
        PeerMsg::Pong {
            controller: ControllerId("controller-2".into()),
            echo_ms: ISSUED_AT_MS,
        },
    ]
}

pub fn status() -> (Vec<ControllerToCloud>, Vec<CloudToController>) {
    (
        vec![
            ControllerToCloud::Register {
                controller: ControllerId("controller-1".into()),
                zone: "zone-a".into(),
                signalling: signalling(),
                capacity: load(1000, 100),
                meetings: vec![OwnedMeeting {
                    meeting: MeetingId(42),
                    epoch: 3,
                }],
            },
            ControllerToCloud::Heartbeat {
                load: load(2, 1),
                capacity: load(1000, 100),
                ready: false,
                sent_ms: ISSUED_AT_MS,
            },
            ControllerToCloud::Claim {
                request: 9,
                meeting: MeetingId(42),
                alive_peers: vec![ControllerId("controller-2".into())],
            },
            ControllerToCloud::Release {
                meeting: MeetingId(42),
                epoch: 3,
            },
        ],
        vec![
            CloudToController::Registered {
                ticket_key: mc_wire::hex::encode(
                    &TicketSigner::from_seed(&TICKET_KEY_SEED).public_key(),
                ),
                heartbeat_interval_ms: 1000,
                lease_ms: 5000,
                revoked: vec![MeetingId(41)],
            },
            CloudToController::Rejected {
                message: "unknown zone".into(),
            },
            CloudToController::Ack {
                echo_ms: ISSUED_AT_MS,
            },
            CloudToController::Claimed {
                request: 9,
                meeting: MeetingId(42),
                outcome: ClaimOutcome::Granted { epoch: 4 },
            },
            CloudToController::Claimed {
                request: 10,
                meeting: MeetingId(43),
                outcome: ClaimOutcome::HostedBy {
                    controller: ControllerId("controller-2".into()),
                    signalling: signalling(),
                },
            },
            CloudToController::Claimed {
                request: 11,
                meeting: MeetingId(44),
                outcome: ClaimOutcome::Retry {
                    message: "relearning ownership".into(),
                    retry_after_ms: Some(2_000),
                },
            },
        ],
    )
}

pub fn notify() -> (Vec<ControllerToNotify>, Vec<NotifyToController>) {
    let events = [
        MeetingEvent::Scheduled {
            meeting: MeetingId(42),
            topic: "standup".into(),
        },
        MeetingEvent::Started {
            meeting: MeetingId(42),
        },
        MeetingEvent::Ended {
            meeting: MeetingId(42),
            reason: "over".into(),
        },
        MeetingEvent::ParticipantRemoved {
            meeting: MeetingId(42),
            participant: ParticipantId(7),
            reason: "removed".into(),
        },
        MeetingEvent::Drain {
            target: DrainTarget::Controller(ControllerId("controller-1".into())),
            on: true,
            deadline_ms: 60_000,
        },
        MeetingEvent::Drain {
            target: DrainTarget::Mmr(MmrId("mmr-1".into())),
            on: false,
            deadline_ms: 0,
        },
    ];
    let mut to_controller = vec![NotifyToController::Welcome {
        oldest_seq: 1,
        latest_seq: 6,
    }];
    to_controller.extend(events.into_iter().enumerate().map(|(i, event)| {
        NotifyToController::Event {
            seq: i as u64 + 1,
            at_ms: ISSUED_AT_MS,
            event,
        }
    }));
    (
        vec![ControllerToNotify::Hello {
            controller: ControllerId("controller-1".into()),
            after_seq: 0,
        }],
        to_controller,
    )
}

pub fn monitor() -> Vec<Report> {
    let minimal = Report {
        node: "mmr-1".into(),
        role: NodeRole::Mmr,
        live: true,
        ready: true,
        links: [(
            "controller".to_string(),
            LinkState {
                path: LinkPath::Fallback,
                port: 443,
            },
        )]
        .into(),
        participants: 2,
        meetings: 1,
        media: MediaCounters {
            rtp_in: 10,
            rtp_out: 20,
            dropped: 0,
            udp_endpoints: 1,
            tcp_endpoints: 1,
            tls_endpoints: 0,
        },
        capacity: None,
        draining: false,
        ha: None,
        hosted: vec![],
        recent: vec![],
    };
    let full = Report {
        node: "controller-1".into(),
        role: NodeRole::Controller,
        capacity: Some(Capacity {
            participants: 1000,
            meetings: Some(100),
        }),
        draining: true,
        ha: Some(HaReport {
            lease_remaining_ms: 4000,
            fenced: false,
            owned: vec![OwnedMeeting {
                meeting: MeetingId(42),
                epoch: 3,
            }],
            peer_up: true,
            takeovers: 1,
        }),
        hosted: vec![MonitoredMeeting {
            meeting: MeetingId(42),
            mmr: MmrId("mmr-1".into()),
            participants: 2,
        }],
        recent: vec![RecentEvent {
            at_ms: ISSUED_AT_MS,
            kind: RecentKind::Takeover,
            text: "took over m42".into(),
        }],
        ..minimal.clone()
    };
    vec![minimal, full]
}

pub fn rtp_packets() -> Vec<RtpPacket> {
    vec![
        RtpPacket {
            marker: true,
            payload_type: 111,
            sequence: 65535,
            timestamp: 960,
            ssrc: 0x1234_5678,
            csrc: vec![],
            payload: b"opus frame".to_vec(),
        },
        RtpPacket {
            marker: false,
            payload_type: 96,
            sequence: 1,
            timestamp: 90_000,
            ssrc: 7,
            csrc: vec![1, 2],
            payload: vec![0; 40],
        },
    ]
}

/// The token the seed bindings are signed with.
pub fn binding_token() -> MediaToken {
    token(0xab)
}

pub fn bindings() -> Vec<Binding> {
    let txn = *b"txn-0123456\x01";
    vec![
        Binding::Request {
            txn,
            username: BindingId::of(&binding_token()),
            counter: 7,
        },
        Binding::Success {
            txn,
            mapped: "192.0.2.10:50000".parse().unwrap(),
        },
        Binding::Success {
            txn,
            mapped: "[2001:db8::5]:8801".parse().unwrap(),
        },
        Binding::Error {
            txn,
            code: code::UNAUTHORIZED,
            reason: "unknown media token".into(),
        },
    ]
}

/// The meeting key the `srtp` target opens with (id 1), or another.
pub fn srtp_key(id: u32) -> MediaKey {
    MediaKey::new(id, [0x77; 32])
}

/// Every seed of every target.
pub fn all() -> Vec<Seed> {
    let mut out = Vec::new();
    let mut frames = Vec::new();
    macro_rules! json_seeds {
        ($target:literal, $msgs:expr) => {
            for (i, m) in $msgs.iter().enumerate() {
                out.push(json($target, &format!("{i}"), m));
            }
            frames.push($msgs.iter().flat_map(frame::encode).collect::<Vec<u8>>());
        };
    }
    // The order of `frames` is the `frame` target's selector (fuzz_targets/frame.rs).
    let (a, b) = signal();
    json_seeds!("signal", a);
    json_seeds!("signal", b);
    let (a, b) = link();
    json_seeds!("link", a);
    json_seeds!("link", b);
    json_seeds!("peer", peer());
    let (a, b) = status();
    json_seeds!("status", a);
    json_seeds!("status", b);
    let (a, b) = notify();
    json_seeds!("notify", a);
    json_seeds!("notify", b);
    // Reports travel as HTTP bodies, not in frames.
    for (i, r) in monitor().iter().enumerate() {
        out.push(json("monitor", &format!("{i}"), r));
    }
    // JSON seeds are numbered per call above; give them distinct names per target.
    let mut seen = std::collections::BTreeMap::<&str, usize>::new();
    for s in &mut out {
        let n = seen.entry(s.target).or_default();
        s.name = format!("{n}");
        *n += 1;
    }
    for (selector, stream) in frames.iter().enumerate() {
        for (how, sizes) in [("whole", &[][..]), ("split", &[1, 7, 200][..])] {
            out.push(Seed {
                target: "frame",
                name: format!("type{selector}-{how}"),
                bytes: StreamInput {
                    selector: selector as u8,
                    sizes,
                    stream,
                }
                .to_bytes(),
            });
        }
    }
    // Cascade link frames: a hello, and each RTP packet as one MMR forwards it to another.
    out.push(Seed {
        target: "cascade",
        name: "hello".into(),
        bytes: mc_wire::cascade::CascadeFrame::Hello {
            mmr: MmrId("mmr-1".into()),
        }
        .encode(),
    });
    for (i, p) in rtp_packets().iter().enumerate() {
        out.push(Seed {
            target: "cascade",
            name: format!("media-{i}"),
            bytes: mc_wire::cascade::media_framed(MeetingId(42), &p.encode())[2..].to_vec(),
        });
    }
    for (i, p) in rtp_packets().iter().enumerate() {
        out.push(Seed {
            target: "rtp",
            name: format!("{i}"),
            bytes: p.encode(),
        });
    }
    // Sealed RTP as a participant receives it: under the seed key, and one under another key.
    for (i, p) in rtp_packets().iter().enumerate() {
        let key = if i == 0 { srtp_key(9) } else { srtp_key(1) };
        if let Ok(sealed) = key.stream(p.ssrc).seal(i as u32, &p.encode()) {
            out.push(Seed {
                target: "srtp",
                name: format!("{i}"),
                bytes: sealed,
            });
        }
    }
    for (i, b) in bindings().iter().enumerate() {
        out.push(Seed {
            target: "binding",
            name: format!("{i}"),
            bytes: b.encode_signed(&binding_token()),
        });
    }
    // RFC 4571: RTP and binding packets back to back, as on TCP 8801, read whole and in pieces.
    let mut stream = Vec::new();
    for p in rtp_packets() {
        rfc4571::encode_into(&p.encode(), &mut stream);
    }
    rfc4571::encode_into(&[], &mut stream);
    for b in bindings() {
        rfc4571::encode_into(&b.encode_signed(&binding_token()), &mut stream);
    }
    for (selector, sizes) in [(0u8, &[][..]), (3, &[2, 5, 64][..])] {
        out.push(Seed {
            target: "rfc4571",
            name: format!("mixed-{selector}"),
            bytes: StreamInput {
                selector,
                sizes,
                stream: &stream,
            }
            .to_bytes(),
        });
    }
    // Tickets: the text form (ticket) and, for the verifier, a mode byte then the same text.
    let signer = TicketSigner::from_seed(&TICKET_KEY_SEED);
    // The last is version 2: a meeting's size hint after the name.
    let hinted = |c: TicketClaims| TicketClaims {
        expected_participants: Some(500),
        ..c
    };
    let all = [
        claims("Ada", 0),
        claims("", 1),
        claims("Zoë Ünïcode", 2),
        hinted(claims("Ada", 3)),
    ];
    for (i, c) in all.into_iter().enumerate() {
        let t = signer.sign(c);
        out.push(Seed {
            target: "ticket",
            name: format!("text{i}"),
            bytes: t.to_text().into_bytes(),
        });
        out.push(Seed {
            target: "ticket",
            name: format!("claims{i}"),
            bytes: t.signed_bytes.clone(),
        });
        let mut v = vec![0u8];
        v.extend_from_slice(t.to_text().as_bytes());
        out.push(Seed {
            target: "ticket_verify",
            name: format!("text{i}"),
            bytes: v,
        });
    }
    // The verifier's signing mode: mode 1, then claim bytes (see fuzz_targets/ticket_verify.rs).
    let mut v = vec![1u8];
    v.extend_from_slice(&claims("Ada", 9).encode());
    out.push(Seed {
        target: "ticket_verify",
        name: "signed".into(),
        bytes: v,
    });
    // Cloud API bodies: a selector byte (fuzz_targets/cloud_api.rs), then the JSON body.
    let bodies: Vec<(u8, Vec<u8>)> = vec![
        (
            0,
            serde_json::to_vec(&CreateUser {
                email: "ada@example.com".into(),
                display_name: "Ada".into(),
                role: mc_core::cloud::management::Role::Admin,
            })
            .unwrap(),
        ),
        (
            1,
            serde_json::to_vec(&CreateMeeting {
                topic: "standup".into(),
                expected_participants: None,
            })
            .unwrap(),
        ),
        (
            2,
            serde_json::to_vec(&EndMeeting {
                reason: "over".into(),
            })
            .unwrap(),
        ),
        (
            3,
            serde_json::to_vec(&TicketRequest {
                display_name: Some("Ada".into()),
            })
            .unwrap(),
        ),
        (4, serde_json::to_vec(&Drain { deadline_s: 30 }).unwrap()),
        (5, serde_json::to_vec(&monitor()[1]).unwrap()),
        (4, vec![]),
        (
            1,
            serde_json::to_vec(&CreateMeeting {
                topic: "town hall".into(),
                expected_participants: Some(500.into()),
            })
            .unwrap(),
        ),
    ];
    for (i, (selector, body)) in bodies.into_iter().enumerate() {
        let mut v = vec![selector];
        v.extend_from_slice(&body);
        out.push(Seed {
            target: "cloud_api",
            name: format!("{i}"),
            bytes: v,
        });
    }
    out
}
