use super::*;
use mc_wire::signal::{RejectReason, ZcToClient};

const TIMING: Timing = Timing {
    packet_interval_ms: Some(20),
    duration_ms: 0,
    media_keepalive_ms: 1_000,
    media_keepalive_misses: 3,
    media_reprobe_ms: 30_000,
    signal_keepalive_ms: 1_000,
};

fn drain(s: &mut Session) -> Vec<Output> {
    std::iter::from_fn(|| s.poll_output()).collect()
}

/// What the session asked for besides media sends and pings, which fall due all the time.
fn drain_quiet(s: &mut Session) -> Vec<Output> {
    drain(s)
        .into_iter()
        .filter(|o| !matches!(o, Output::SendMedia | Output::Ping))
        .collect()
}

/// Runs the session's timers from `from_ms` to `to_ms` (inclusive), answering nothing, and
/// returns what it asked for (without the media sends, which are counted).
fn run(s: &mut Session, from_ms: u64, to_ms: u64) -> (Vec<(u64, Output)>, usize) {
    let (mut outs, mut sends) = (Vec::new(), 0);
    let mut now = from_ms;
    while let Some(t) = s.poll_timeout().filter(|t| *t <= to_ms) {
        now = now.max(t);
        s.handle_timeout(now);
        for o in drain(s) {
            match o {
                Output::SendMedia => sends += 1,
                o => outs.push((now, o)),
            }
        }
    }
    (outs, sends)
}

/// Admission, then the binding on `path` (after UDP and whatever comes before it failed).
fn admit(s: &mut Session, now_ms: u64, path: MediaPath) {
    s.handle(now_ms, Input::Admitted);
    for p in [MediaPath::Udp, MediaPath::Tcp, MediaPath::Tls] {
        if p == path {
            break;
        }
        s.handle(now_ms, Input::BindFailed { path: p });
    }
    s.handle(now_ms, Input::Bound { path });
}

fn joined(timing: Timing) -> Session {
    let mut s = Session::new(0, timing);
    assert_eq!(drain(&mut s), [Output::Join]);
    admit(&mut s, 100, MediaPath::Udp);
    drain(&mut s);
    s
}

#[test]
fn a_passing_failure_is_retried_with_backoff_and_a_final_one_ends_the_run() {
    let mut s = Session::new(0, TIMING);
    assert_eq!(drain(&mut s), [Output::Join]);
    let mut at = Vec::new();
    let mut now = 0;
    for _ in 0..4 {
        now += 10;
        s.handle(now, Input::JoinFailed(JoinFailure::ZoneInFlux));
        drain(&mut s);
        now = s.poll_timeout().expect("a retry is due");
        s.handle_timeout(now);
        assert_eq!(drain(&mut s), [Output::Join]);
        at.push(now);
    }
    assert_eq!(
        at,
        [510, 1_520, 3_030, 5_040],
        "500, 1000, 1500, 2000 ms apart"
    );
    s.handle(
        now + 10,
        Input::JoinFailed(JoinFailure::Refused(RejectReason::ZoneFull)),
    );
    assert_eq!(
        drain(&mut s),
        [Output::Finished(Finish::JoinFailed(JoinFailure::Refused(
            RejectReason::ZoneFull
        )))]
    );
    assert_eq!(s.poll_timeout(), None);
}

#[test]
fn a_refusal_that_says_when_is_retried_then_not_on_the_backoff() {
    let mut s = Session::new(0, TIMING);
    assert_eq!(drain(&mut s), [Output::Join]);
    s.handle(
        10,
        Input::JoinDeferred {
            failure: JoinFailure::ZoneInFlux,
            retry_after_ms: 1_234,
        },
    );
    drain(&mut s);
    assert_eq!(s.poll_timeout(), Some(1_244), "not the backoff's 500 ms");
    s.handle_timeout(1_244);
    assert_eq!(drain(&mut s), [Output::Join]);
    // A controller cannot park a client for longer than MAX_RETRY_AFTER_MS at a time.
    s.handle(
        2_000,
        Input::JoinDeferred {
            failure: JoinFailure::ZoneInFlux,
            retry_after_ms: 3_600_000,
        },
    );
    drain(&mut s);
    assert_eq!(s.poll_timeout(), Some(2_000 + MAX_RETRY_AFTER_MS));
}

#[test]
fn passing_failures_stop_being_retried_at_the_join_deadline() {
    let mut s = Session::new(0, TIMING);
    drain(&mut s);
    let mut now = 0;
    loop {
        now += 1;
        s.handle(now, Input::JoinFailed(JoinFailure::CloudUnreachable));
        let out = drain(&mut s);
        if let Some(Output::Finished(f)) = out.last() {
            assert_eq!(f, &Finish::JoinFailed(JoinFailure::CloudUnreachable));
            break;
        }
        now = s.poll_timeout().unwrap();
        s.handle_timeout(now);
        drain(&mut s);
    }
    assert!(
        (JOIN_DEADLINE_MS..JOIN_DEADLINE_MS + RETRY.max_ms + 10).contains(&now),
        "gave up at {now} ms"
    );
}

#[test]
fn media_keeps_its_cadence_and_what_was_missed_is_not_sent_late() {
    let mut s = joined(TIMING);
    let (_, sends) = run(&mut s, 100, 1_099);
    assert_eq!(sends, 49, "one packet every 20 ms (and one at the join)");
    // The shell was busy for 95 ms: one packet now, then back on the 20 ms grid.
    s.handle_timeout(1_195);
    let out = drain(&mut s);
    assert_eq!(
        out.iter().filter(|o| **o == Output::SendMedia).count(),
        1,
        "{out:?}"
    );
    assert_eq!(s.poll_timeout(), Some(1_200));
}

#[test]
fn a_silent_controller_is_left_and_the_meeting_rejoined() {
    let mut s = joined(TIMING);
    // Pongs come back for two seconds, then nothing.
    for t in [1_105, 2_105] {
        s.handle(t, Input::Signal(ZcToClient::Pong));
        s.handle(t, Input::MediaHeard);
        drain(&mut s);
    }
    let (outs, _) = run(&mut s, 2_105, 6_200);
    let pings: Vec<u64> = outs
        .iter()
        .filter(|(_, o)| *o == Output::Ping)
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(pings, [3_100, 4_100, 5_100]);
    let after: Vec<&Output> = outs
        .iter()
        .skip_while(|(t, _)| *t < 6_100)
        .map(|(_, o)| o)
        .filter(|o| **o != Output::SendKeepalive)
        .collect();
    assert_eq!(
        after,
        [
            &Output::Leave,
            &Output::Event(Event::Rejoining {
                attempt: 1,
                reason: EndReason::ControllerSilent
            }),
            &Output::Join
        ],
        "silent for more than three intervals at 6,100: {outs:?}"
    );
    admit(&mut s, 6_300, MediaPath::Tcp);
    assert_eq!(s.rejoins(), 1);
    assert_eq!(
        s.joined_after_ms(),
        Some(100),
        "the first join is what counts"
    );
}

#[test]
fn udp_silence_falls_back_to_a_stream_and_a_later_probe_climbs_back() {
    let mut s = joined(TIMING);
    let (outs, _) = run(&mut s, 100, 3_100);
    assert_eq!(
        outs.iter()
            .filter(|(_, o)| *o == Output::SendKeepalive)
            .count(),
        3,
        "at 1,100, 2,100 and 3,100 (and one at the join)"
    );
    // The controller still answers; the MMR does not.
    s.handle(3_150, Input::Signal(ZcToClient::Pong));
    let (outs, _) = run(&mut s, 3_150, 4_100);
    let ours: Vec<&Output> = outs
        .iter()
        .map(|(_, o)| o)
        .filter(|o| **o != Output::Ping)
        .collect();
    assert_eq!(
        ours,
        [
            &Output::Event(Event::UdpLost),
            &Output::Bind {
                path: MediaPath::Tcp
            }
        ],
        "no keepalive while falling back: {outs:?}"
    );
    assert!(
        !outs.iter().any(|(t, _)| *t > 4_100),
        "nothing more is due before the fallback answers"
    );
    s.handle(
        4_300,
        Input::Bound {
            path: MediaPath::Tcp,
        },
    );
    assert_eq!(
        drain_quiet(&mut s),
        [Output::Event(Event::MediaMoved {
            from: MediaPath::Udp,
            to: MediaPath::Tcp
        })]
    );
    for t in (4_300..34_300).step_by(1_000) {
        s.handle(t, Input::Signal(ZcToClient::Pong));
    }
    let (outs, _) = run(&mut s, 34_000, 34_300);
    assert!(outs.contains(&(34_300, Output::ProbeUdp)), "{outs:?}");
    s.handle(34_400, Input::Reprobed { bound: true });
    assert_eq!(
        drain_quiet(&mut s),
        [Output::Event(Event::MediaMoved {
            from: MediaPath::Tcp,
            to: MediaPath::Udp
        })]
    );
}

#[test]
fn no_stream_path_either_means_the_mmr_is_gone_so_the_meeting_is_rejoined() {
    let mut s = joined(TIMING);
    for t in (1_000..=5_000).step_by(1_000) {
        s.handle(t, Input::Signal(ZcToClient::Pong));
    }
    assert!(drain(&mut s).contains(&Output::Bind {
        path: MediaPath::Tcp
    }));
    s.handle(
        5_001,
        Input::BindFailed {
            path: MediaPath::Tcp,
        },
    );
    assert_eq!(
        drain_quiet(&mut s),
        [Output::Bind {
            path: MediaPath::Tls
        }]
    );
    s.handle(
        5_002,
        Input::BindFailed {
            path: MediaPath::Tls,
        },
    );
    let out = drain_quiet(&mut s);
    assert_eq!(out.first(), Some(&Output::Leave));
    assert!(out.contains(&Output::Join), "{out:?}");
}

#[test]
fn the_zc_ending_a_session_for_good_ends_the_run_without_a_leave() {
    let mut s = joined(TIMING);
    s.handle(
        500,
        Input::Signal(ZcToClient::Ended {
            reason: "meeting ended".into(),
            rejoin: false,
        }),
    );
    assert_eq!(
        drain_quiet(&mut s),
        [Output::Finished(Finish::Left {
            ended: Some(EndReason::ByZc("meeting ended".into())),
            rejoin_failed: None
        })]
    );
}

#[test]
fn a_rejoin_refused_for_good_is_reported_with_why_the_session_ended() {
    let mut s = joined(TIMING);
    s.handle(500, Input::SignalLost);
    drain(&mut s);
    s.handle(
        600,
        Input::JoinFailed(JoinFailure::Refused(RejectReason::MeetingFull)),
    );
    assert_eq!(
        drain(&mut s),
        [Output::Finished(Finish::Left {
            ended: Some(EndReason::SignallingLost),
            rejoin_failed: Some(JoinFailure::Refused(RejectReason::MeetingFull))
        })]
    );
}

#[test]
fn a_stop_during_the_first_attempt_still_leaves_cleanly_once_admitted() {
    let mut s = Session::new(0, TIMING);
    drain(&mut s);
    s.handle(50, Input::Stop);
    assert_eq!(drain(&mut s), [], "the attempt under way decides");
    admit(&mut s, 80, MediaPath::Udp);
    assert_eq!(
        drain(&mut s),
        [
            Output::Bind {
                path: MediaPath::Udp
            },
            Output::Event(Event::Joined { rejoin: false }),
            Output::Leave,
            Output::Finished(Finish::Left {
                ended: None,
                rejoin_failed: None
            })
        ]
    );
}

#[test]
fn the_configured_duration_counts_from_the_first_join_and_covers_a_rejoin() {
    let mut s = joined(Timing {
        duration_ms: 2_000,
        ..TIMING
    });
    s.handle(500, Input::SignalLost);
    drain(&mut s);
    // Still rejoining when the time is up: the run ends with why it was rejoining.
    let (outs, _) = run(&mut s, 500, 2_100);
    assert_eq!(
        outs.last(),
        Some(&(
            2_100,
            Output::Finished(Finish::Left {
                ended: Some(EndReason::SignallingLost),
                rejoin_failed: None
            })
        ))
    );
}

#[test]
fn rejoins_stop_after_the_most_one_run_makes() {
    let mut s = joined(TIMING);
    let mut now = 100;
    for _ in 0..MAX_REJOINS {
        now += 10;
        s.handle(now, Input::SignalLost);
        assert!(drain(&mut s).contains(&Output::Join));
        admit(&mut s, now, MediaPath::Udp);
        drain(&mut s);
    }
    s.handle(now + 10, Input::SignalLost);
    assert_eq!(
        drain(&mut s),
        [Output::Finished(Finish::Left {
            ended: Some(EndReason::SignallingLost),
            rejoin_failed: None
        })]
    );
    assert_eq!(s.rejoins(), MAX_REJOINS);
}

#[test]
fn a_muted_participant_sends_no_media_but_keeps_its_paths_alive() {
    let mut s = joined(Timing {
        packet_interval_ms: None,
        ..TIMING
    });
    let (outs, sends) = run(&mut s, 100, 1_100);
    assert_eq!(sends, 0);
    assert!(outs.contains(&(1_100, Output::SendKeepalive)));
    assert!(outs.contains(&(1_100, Output::Ping)));
}

#[test]
fn a_redirect_is_followed_twice_per_attempt_then_the_attempt_is_retried() {
    let mut s = Session::new(0, TIMING);
    assert_eq!(drain(&mut s), [Output::Join]);
    s.handle(10, Input::Redirected);
    assert_eq!(drain(&mut s), [Output::FollowRedirect]);
    s.handle(20, Input::Redirected);
    assert_eq!(drain(&mut s), [Output::FollowRedirect]);
    s.handle(30, Input::Redirected);
    assert_eq!(
        drain(&mut s),
        [Output::Event(Event::Retrying {
            attempt: 1,
            failure: JoinFailure::ZoneInFlux,
            retry_in_ms: 500
        })]
    );
    s.handle_timeout(530);
    assert_eq!(drain(&mut s), [Output::Join]);
    s.handle(540, Input::Redirected);
    assert_eq!(
        drain(&mut s),
        [Output::FollowRedirect],
        "a new attempt may be redirected again"
    );
}

#[test]
fn media_binds_down_the_paths_after_admission_and_none_working_gives_the_seat_back() {
    let mut s = Session::new(0, TIMING);
    drain(&mut s);
    s.handle(10, Input::Admitted);
    assert_eq!(
        drain(&mut s),
        [Output::Bind {
            path: MediaPath::Udp
        }]
    );
    s.handle(
        20,
        Input::BindFailed {
            path: MediaPath::Udp,
        },
    );
    assert_eq!(
        drain(&mut s),
        [Output::Bind {
            path: MediaPath::Tcp
        }]
    );
    s.handle(
        30,
        Input::BindFailed {
            path: MediaPath::Tcp,
        },
    );
    s.handle(
        40,
        Input::BindFailed {
            path: MediaPath::Tls,
        },
    );
    assert_eq!(
        drain(&mut s),
        [
            Output::Bind {
                path: MediaPath::Tls
            },
            Output::Leave,
            Output::Event(Event::Retrying {
                attempt: 1,
                failure: JoinFailure::ZoneInFlux,
                retry_in_ms: 500
            })
        ]
    );
}

#[test]
fn a_controller_lost_between_admission_and_media_fails_the_attempt_and_drops_it() {
    let mut s = Session::new(0, TIMING);
    drain(&mut s);
    s.handle(10, Input::Admitted);
    drain(&mut s);
    s.handle(20, Input::SignalLost);
    assert_eq!(
        drain(&mut s),
        [
            Output::Leave,
            Output::Event(Event::Retrying {
                attempt: 1,
                failure: JoinFailure::ZoneInFlux,
                retry_in_ms: 500
            })
        ]
    );
    // The binding's late answer changes nothing.
    s.handle(
        30,
        Input::Bound {
            path: MediaPath::Udp,
        },
    );
    assert_eq!(drain(&mut s), []);
    assert_eq!(s.poll_timeout(), Some(520));
}
