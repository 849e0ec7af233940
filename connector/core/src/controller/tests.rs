//! One controller core in virtual time: the decisions that used to live in shells' timers.

use super::*;
use crate::ticket::TicketSigner;
use mc_wire::monitor::LinkPath;
use mc_wire::notify::DrainTarget;
use mc_wire::signal::RejectReason;
use mc_wire::status::ClaimOutcome;
use mc_wire::ticket::TicketClaims;
use mc_wire::{MeetingId, ParticipantId};

const T0: u64 = 1_000_000;
const CLOUD: ConnId = 1;
const VM: ConnId = 2;

struct One {
    c: Controller,
    now_ms: u64,
    signer: TicketSigner,
    out: Vec<Output>,
    /// The MMR VM's current link.
    vm: ConnId,
}

fn media(host: &str) -> MediaEndpoints {
    MediaEndpoints {
        host: host.into(),
        udp_port: 8801,
        tcp_port: 8801,
        tls_port: 443,
    }
}

impl One {
    /// A lone controller, registered with the cloud, with one MMR VM linked (mmr-1, 10 seats).
    fn new() -> One {
        let p = Params {
            id: ControllerId("ctl".into()),
            zone: "z".into(),
            signalling: SignallingEndpoints {
                host: "ctl".into(),
                port: 8802,
                fallback_port: 443,
            },
            limits: ZcLimits { max_meetings: 10 },
            // The local MMR has no room, so meetings go to the MMR VM.
            local_mmr: (MmrId("ctl-mmr".into()), 0, media("ctl")),
            local_mmr_cascade_port: None,
            mmr_report_interval_ms: 1_000,
            handshake_timeout_ms: 5_000,
            peer: None,
        };
        let mut one = One {
            c: Controller::new(p, Rng::seed_from_u64(1)),
            now_ms: T0,
            signer: TicketSigner::from_seed(&[3; 32]),
            out: Vec::new(),
            vm: VM,
        };
        one.input(Input::CloudLinkOpened {
            conn: CLOUD,
            port: 8803,
            path: LinkPath::Dedicated,
        });
        let ticket_key = mc_wire::hex::encode(&one.signer.public_key());
        one.input(Input::Cloud {
            conn: CLOUD,
            msg: CloudToController::Registered {
                ticket_key,
                heartbeat_interval_ms: 1_000,
                lease_ms: 0,
                revoked: vec![],
            },
        });
        one.input(Input::MmrLinkOpened {
            conn: VM,
            from: "10.0.0.9:5000".into(),
        });
        one.input(Input::Mmr {
            conn: VM,
            msg: MmrToController::Hello {
                mmr: MmrId("mmr-1".into()),
                capacity: 10,
                media: media("vm"),
                cascade_port: None,
            },
        });
        one.out.clear();
        one
    }

    fn input(&mut self, input: Input) {
        self.c.handle(self.now_ms, input);
        self.collect();
    }

    fn collect(&mut self) {
        while let Some(o) = self.c.poll_output() {
            self.out.push(o);
        }
    }

    /// Advances time to `t`, firing every timer on the way, and keeps the MMR VM reporting.
    fn run_until(&mut self, t: u64, vm_reports: bool) {
        while let Some(due) = self.c.poll_timeout().filter(|d| *d <= t) {
            self.now_ms = self.now_ms.max(due);
            if vm_reports && self.c.mmr_by_id.contains_key(&MmrId("mmr-1".into())) {
                let load = MmrToController::Load {
                    participants: 0,
                    rtp_in: 0,
                    rtp_out: 0,
                    dropped: 0,
                };
                self.c.handle(
                    self.now_ms,
                    Input::Mmr {
                        conn: self.vm,
                        msg: load,
                    },
                );
            }
            self.c.handle_timeout(self.now_ms);
            self.collect();
        }
        self.now_ms = t;
    }

    fn join(&mut self, session: ConnId, participant: u64, meeting: u64) {
        let claims = TicketClaims {
            meeting: MeetingId(meeting),
            participant: ParticipantId(participant),
            display_name: "p".into(),
            issued_at_ms: self.now_ms,
            expires_at_ms: self.now_ms + 60_000,
            nonce: [participant as u8; 16],
            expected_participants: None,
        };
        let ticket = self.signer.sign(claims).to_text();
        self.input(Input::SessionOpened { conn: session });
        let msg = ClientToZc::Join { ticket };
        self.input(Input::Session { conn: session, msg });
    }

    fn sent_to(&self, conn: ConnId) -> Vec<&Message> {
        self.out
            .iter()
            .filter_map(|o| match o {
                Output::Send { conn: c, msg } if *c == conn => Some(msg),
                _ => None,
            })
            .collect()
    }

    fn events(&self) -> Vec<String> {
        self.out
            .iter()
            .filter_map(|o| match o {
                Output::Event(e) if e.logged() => Some(e.to_string()),
                _ => None,
            })
            .collect()
    }

    fn admitted_token(&self) -> mc_wire::MediaToken {
        self.sent_to(VM)
            .into_iter()
            .find_map(|m| match m {
                Message::Mmr(ControllerToMmr::Admit { token, .. }) => Some(token.clone()),
                _ => None,
            })
            .expect("a grant went to the MMR VM")
    }
}

fn joined(msgs: &[&Message]) -> bool {
    msgs.iter()
        .any(|m| matches!(m, Message::Client(ZcToClient::Joined { .. })))
}

#[test]
fn a_client_hears_joined_only_once_the_mmr_vm_holds_the_grant() {
    let mut one = One::new();
    one.join(10, 1, 7);
    let token = one.admitted_token();
    assert!(!joined(&one.sent_to(10)), "held until the MMR confirms");
    one.input(Input::Mmr {
        conn: VM,
        msg: MmrToController::Admitted { token },
    });
    assert!(joined(&one.sent_to(10)));
}

#[test]
fn a_held_join_whose_mmr_dies_is_ended_not_joined_and_forgotten() {
    let mut one = One::new();
    one.join(10, 1, 7);
    let token = one.admitted_token();
    one.input(Input::Closed {
        conn: VM,
        why: Closed::Io("reset".into()),
    });
    // The MMR gets one report interval to link again before it is declared down.
    one.run_until(T0 + 999, false);
    assert!(one.events().iter().all(|e| !e.contains("is down")));
    one.run_until(T0 + 1_000, false);
    assert!(one.events().iter().any(|e| e == "MMR mmr-1 is down: reset"));
    let to_client = one.sent_to(10);
    assert!(!joined(&to_client));
    assert!(matches!(
        to_client.last(),
        Some(Message::Client(ZcToClient::Ended { rejoin: true, .. }))
    ));
    assert!(one.c.held.is_empty(), "the hold goes with the MMR");
    // A late confirmation of the dead grant sends nothing.
    one.out.clear();
    one.input(Input::Mmr {
        conn: VM,
        msg: MmrToController::Admitted { token },
    });
    assert!(one.sent_to(10).is_empty());
}

#[test]
fn an_mmr_vm_is_down_after_three_missed_reports_and_one_interval_of_grace() {
    let mut one = One::new();
    one.join(10, 1, 7);
    one.run_until(T0 + 2_999, false);
    assert!(one.events().iter().all(|e| !e.contains("is down")));
    assert!(
        one.sent_to(VM)
            .iter()
            .filter(|m| matches!(m, Message::Mmr(ControllerToMmr::Keepalive)))
            .count()
            >= 2,
        "keepalives every interval"
    );
    one.run_until(T0 + 4_000, false);
    assert!(one
        .events()
        .iter()
        .any(|e| e == "MMR mmr-1 is down: no load report for 3000 ms"));
}

#[test]
fn an_mmr_vm_that_links_again_within_the_grace_keeps_its_meetings_and_grants() {
    let mut one = One::new();
    one.join(10, 1, 7);
    one.input(Input::Closed {
        conn: VM,
        why: Closed::Moving { port: 8802 },
    });
    one.run_until(T0 + 500, false);
    one.out.clear();
    one.input(Input::MmrLinkOpened {
        conn: 3,
        from: "10.0.0.9:5001".into(),
    });
    one.input(Input::Mmr {
        conn: 3,
        msg: MmrToController::Hello {
            mmr: MmrId("mmr-1".into()),
            capacity: 10,
            media: media("vm"),
            cascade_port: None,
        },
    });
    one.vm = 3;
    let again = one.sent_to(3);
    assert!(matches!(
        again[0],
        Message::Mmr(ControllerToMmr::Welcome { .. })
    ));
    assert!(again
        .iter()
        .any(|m| matches!(m, Message::Mmr(ControllerToMmr::Admit { .. }))));
    one.run_until(T0 + 5_000, true);
    assert!(
        one.events().iter().all(|e| !e.contains("is down")),
        "{:#?}",
        one.events()
    );
    assert_eq!(one.c.status().zone.meetings.len(), 1);
}

#[test]
fn a_drain_moves_one_meeting_per_slot_of_its_deadline_then_says_drained() {
    let mut one = One::new();
    for m in 1..=3 {
        one.join(10 + m, m, m);
    }
    one.out.clear();
    one.input(Input::Notification(MeetingEvent::Drain {
        target: DrainTarget::Mmr(MmrId("mmr-1".into())),
        on: true,
        deadline_ms: 3_000,
    }));
    // 3 meetings over 90 % of 3 s: one every 900 ms, the first at once.
    let moved_at = |one: &One| {
        one.events()
            .iter()
            .filter(|e| e.starts_with("moved meeting"))
            .count()
    };
    one.run_until(T0, true);
    assert_eq!(moved_at(&one), 1);
    one.run_until(T0 + 899, true);
    assert_eq!(moved_at(&one), 1);
    one.run_until(T0 + 900, true);
    assert_eq!(moved_at(&one), 2);
    one.run_until(T0 + 2_700, true);
    assert_eq!(moved_at(&one), 3);
    assert_eq!(
        one.events().last().map(String::as_str),
        Some("MMR mmr-1 drained")
    );
}

#[test]
fn a_session_that_never_joins_is_closed_after_the_handshake_timeout() {
    let mut one = One::new();
    one.input(Input::SessionOpened { conn: 10 });
    one.run_until(T0 + 4_999, true);
    assert!(!one.out.contains(&Output::Close { conn: 10 }));
    one.run_until(T0 + 5_000, true);
    assert!(one.out.contains(&Output::Close { conn: 10 }));
}

/// A controller of an HA pair, registered with a 1.5 s lease, whose peer (on an accepted link)
/// pinged once at `T0` hosting meetings 7 and 8.
fn paired() -> One {
    let mut one = One::new();
    one.c.p.peer = Some(PeerParams {
        interval_ms: 500,
        down_after_ms: 2_000,
    });
    one.c.zc.enable_ownership();
    let mut ha = Ha::new(2_000);
    ha.set_lease_ms(1_500);
    one.c.ha = Some(ha);
    one.input(Input::PeerLinkOpened {
        conn: 5,
        dialled: None,
    });
    let hosted = |m: u64| mc_wire::peer::HostedMeeting {
        meeting: MeetingId(m),
        epoch: 1,
        mmr: MmrId("peer-mmr".into()),
        participants: 3,
    };
    let ping = PeerMsg::Ping {
        controller: ControllerId("peer".into()),
        sent_ms: T0,
        meetings: vec![hosted(7), hosted(8)],
        load: Load::default(),
        capacity: Load::default(),
        rejoin_key: Some(mc_wire::hex::encode(&[6; 32])),
    };
    one.input(Input::Peer { conn: 5, msg: ping });
    one.out.clear();
    one
}

impl One {
    /// Advances to `t` as [`One::run_until`], the cloud acknowledging every heartbeat.
    fn run_acked(&mut self, t: u64) {
        while let Some(due) = self.c.poll_timeout().filter(|d| *d <= t) {
            self.now_ms = self.now_ms.max(due);
            let load = MmrToController::Load {
                participants: 0,
                rtp_in: 0,
                rtp_out: 0,
                dropped: 0,
            };
            let vm = self.vm;
            self.input(Input::Mmr {
                conn: vm,
                msg: load,
            });
            self.c.handle_timeout(self.now_ms);
            self.collect();
            let beats: Vec<u64> = self
                .sent_to(CLOUD)
                .into_iter()
                .filter_map(|m| match m {
                    Message::Cloud(ControllerToCloud::Heartbeat { sent_ms, .. }) => Some(*sent_ms),
                    _ => None,
                })
                .collect();
            self.out.retain(|o| {
                !matches!(
                    o,
                    Output::Send {
                        msg: Message::Cloud(ControllerToCloud::Heartbeat { .. }),
                        ..
                    }
                )
            });
            for echo_ms in beats {
                self.input(Input::Cloud {
                    conn: CLOUD,
                    msg: CloudToController::Ack { echo_ms },
                });
            }
        }
        self.now_ms = t;
    }

    fn claims(&self) -> Vec<MeetingId> {
        self.sent_to(CLOUD)
            .into_iter()
            .filter_map(|m| match m {
                Message::Cloud(ControllerToCloud::Claim { meeting, .. }) => Some(*meeting),
                _ => None,
            })
            .collect()
    }

    fn answer_claim(&mut self, meeting: u64, outcome: ClaimOutcome) {
        self.input(Input::Cloud {
            conn: CLOUD,
            msg: CloudToController::Claimed {
                request: 0,
                meeting: MeetingId(meeting),
                outcome,
            },
        });
    }
}

#[test]
fn a_join_for_a_silent_peers_meeting_is_told_when_it_moves_here() {
    let mut one = paired();
    // The peer has missed two pings: suspect, but its lease (1.5 s + 0.5 s) may still run.
    one.run_acked(T0 + 1_200);
    one.join(20, 1, 7);
    assert_eq!(one.claims(), vec![MeetingId(7)]);
    let hosted_by = ClaimOutcome::HostedBy {
        controller: ControllerId("peer".into()),
        signalling: SignallingEndpoints {
            host: "peer".into(),
            port: 8802,
            fallback_port: 443,
        },
    };
    one.answer_claim(7, hosted_by);
    let refused = one.sent_to(20);
    assert!(
        matches!(
            refused.as_slice(),
            [Message::Client(ZcToClient::Rejected {
                reason: RejectReason::NotReady,
                retry_after_ms: Some(800),
                ..
            })]
        ),
        "{refused:?}"
    );
}

#[test]
fn the_silent_peers_meetings_are_claimed_when_its_lease_runs_out_and_held_for_their_participants() {
    let mut one = paired();
    one.run_acked(T0 + 1_999);
    assert!(one.claims().is_empty(), "the peer's lease may still run");
    one.run_acked(T0 + 2_000);
    assert_eq!(one.claims(), vec![MeetingId(7), MeetingId(8)]);
    assert!(one
        .events()
        .iter()
        .any(|e| e.contains("claiming 2 of the 2 meetings")));
    one.answer_claim(7, ClaimOutcome::Granted { epoch: 9 });
    one.answer_claim(8, ClaimOutcome::Granted { epoch: 10 });
    assert!(
        one.sent_to(CLOUD)
            .iter()
            .all(|m| !matches!(m, Message::Cloud(ControllerToCloud::Release { .. }))),
        "an empty meeting taken over is held for its participants"
    );
    assert_eq!(one.c.status().ha.expect("paired").takeovers, 2);
    one.out.clear();
    // A participant of meeting 7 comes back: admitted at once, with no claim to wait for.
    one.join(21, 1, 7);
    assert!(one.claims().is_empty());
    assert!(one.out.iter().any(|o| matches!(
        o,
        Output::Send {
            msg: Message::Mmr(ControllerToMmr::Admit { .. }),
            ..
        }
    )));
    // Nobody comes back to meeting 8: it is given back when its hold runs out, not before.
    one.run_acked(T0 + 2_000 + crate::zc::admission::ADOPTION_HOLD_MS - 1);
    let releases = |one: &One| -> Vec<MeetingId> {
        one.sent_to(CLOUD)
            .into_iter()
            .filter_map(|m| match m {
                Message::Cloud(ControllerToCloud::Release { meeting, .. }) => Some(*meeting),
                _ => None,
            })
            .collect()
    };
    assert!(releases(&one).is_empty());
    one.run_acked(T0 + 2_000 + crate::zc::admission::ADOPTION_HOLD_MS);
    assert_eq!(
        releases(&one),
        vec![MeetingId(8)],
        "meeting 7 has a participant"
    );
}
