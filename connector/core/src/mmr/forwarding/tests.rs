use super::*;
use mc_wire::rtp::RtpPacket;
use proptest::prelude::*;

fn udp(port: u16) -> Endpoint {
    Endpoint::Udp(SocketAddr::from(([127, 0, 0, 1], port)))
}

/// Grants `token` to `participant` of `meeting`, as a ZC would.
fn admit(f: &mut Forwarding, token: &[u8], meeting: u64, participant: u64) {
    f.admit(
        MediaToken::from_bytes(token.to_vec()),
        MeetingId(meeting),
        ParticipantId(participant),
    );
}

/// A binding request as a client makes it: signed with the token, with its counter.
fn request(token: &[u8], counter: u64) -> Vec<u8> {
    let token = MediaToken::from_bytes(token.to_vec());
    Binding::Request {
        txn: [counter as u8; 12],
        username: BindingId::of(&token),
        counter,
    }
    .encode_signed(&token)
}

fn bind_n(f: &mut Forwarding, from: Endpoint, token: &[u8], counter: u64) -> Outcome {
    f.handle_packet(from, &request(token, counter))
}

/// Binds with a counter newer than any before (the test's clock, in effect).
fn bind(f: &mut Forwarding, from: Endpoint, token: &[u8]) -> Outcome {
    thread_local!(static NEXT: std::cell::Cell<u64> = const { std::cell::Cell::new(1) });
    bind_n(f, from, token, NEXT.with(|n| n.replace(n.get() + 1)))
}

fn rtp(ssrc: u32) -> Vec<u8> {
    RtpPacket {
        marker: false,
        payload_type: 111,
        sequence: 1,
        timestamp: 2,
        ssrc,
        csrc: vec![],
        payload: vec![0xab; 20],
    }
    .encode()
}

fn forwarded(o: Outcome) -> Vec<Endpoint> {
    match o {
        Outcome::Forward(to) => to,
        other => panic!("expected forward, got {other:?}"),
    }
}

#[test]
fn media_goes_to_the_others_in_the_meeting_and_nowhere_else() {
    let mut f = Forwarding::new();
    admit(&mut f, b"a", 1, 1);
    admit(&mut f, b"b", 1, 2);
    admit(&mut f, b"c", 2, 3);
    for (e, t) in [(udp(1), b"a"), (udp(2), b"b"), (udp(3), b"c")] {
        let Outcome::Reply(r) = bind(&mut f, e, t) else {
            panic!("bind refused")
        };
        let d = Binding::decode(&r).unwrap();
        assert!(
            d.verify(&MediaToken::from_bytes(t.to_vec())),
            "the MMR signs"
        );
        let Binding::Success { mapped, .. } = d.msg else {
            panic!()
        };
        assert_eq!(Endpoint::Udp(mapped), e);
    }
    assert_eq!(forwarded(f.handle_packet(udp(1), &rtp(1))), vec![udp(2)]);
    assert_eq!(
        forwarded(f.handle_packet(udp(3), &rtp(3))),
        Vec::<Endpoint>::new()
    );
}

#[test]
fn unbound_and_malformed_packets_are_dropped_and_counted() {
    let mut f = Forwarding::new();
    admit(&mut f, b"a", 1, 1);
    assert!(matches!(
        f.handle_packet(udp(9), &rtp(1)),
        Outcome::Drop(DropReason::Unbound)
    ));
    assert!(matches!(
        f.handle_packet(udp(9), &[0xff, 1, 2]),
        Outcome::Drop(DropReason::Malformed)
    ));
    assert!(matches!(
        f.handle_packet(udp(9), &[0x80, 1]),
        Outcome::Drop(DropReason::Malformed)
    ));
    assert!(matches!(
        bind(&mut f, udp(9), b"zz"),
        Outcome::Refuse(_, DropReason::BadToken)
    ));
    let c = f.counters();
    assert_eq!(
        (
            c.dropped_unbound,
            c.dropped_malformed,
            c.refused_bad_token,
            c.rtp_in
        ),
        (1, 2, 1, 0)
    );
}

#[test]
fn revoking_a_token_stops_its_media_and_rebinding_moves_it() {
    let mut f = Forwarding::new();
    admit(&mut f, b"a", 1, 1);
    admit(&mut f, b"b", 1, 2);
    bind(&mut f, udp(1), b"a");
    bind(&mut f, udp(2), b"b");
    // Participant b falls back to a stream: the stream replaces its UDP endpoint.
    bind(&mut f, Endpoint::Stream(5), b"b");
    assert_eq!(
        forwarded(f.handle_packet(udp(1), &rtp(1))),
        vec![Endpoint::Stream(5)]
    );
    assert!(matches!(
        f.handle_packet(udp(2), &rtp(2)),
        Outcome::Drop(DropReason::Unbound)
    ));
    assert_eq!(
        f.revoke(&MediaToken::from_bytes(b"b".to_vec())),
        Some(Endpoint::Stream(5))
    );
    assert!(matches!(
        f.handle_packet(Endpoint::Stream(5), &rtp(2)),
        Outcome::Drop(DropReason::Unbound)
    ));
    assert_eq!(
        forwarded(f.handle_packet(udp(1), &rtp(1))),
        Vec::<Endpoint>::new()
    );
}

#[test]
fn a_captured_binding_replayed_from_elsewhere_or_later_is_refused_and_counted() {
    let mut f = Forwarding::new();
    admit(&mut f, b"victim", 1, 1);
    admit(&mut f, b"other", 1, 2);
    bind_n(&mut f, udp(2), b"other", 1);
    let captured = request(b"victim", 10);
    assert!(matches!(
        f.handle_packet(udp(1), &captured),
        Outcome::Reply(_)
    ));
    // The same bytes from the attacker's address: refused, and the victim keeps its media.
    assert!(matches!(
        f.handle_packet(udp(66), &captured),
        Outcome::Refuse(_, DropReason::Replayed)
    ));
    assert_eq!(forwarded(f.handle_packet(udp(2), &rtp(2))), vec![udp(1)]);
    // Repeated from the victim's own endpoint (its answer was lost): answered, nothing moves.
    assert!(matches!(
        f.handle_packet(udp(1), &captured),
        Outcome::Reply(_)
    ));
    // The victim moves to a stream with a newer counter; the old request replayed later from
    // its old address does not move it back.
    bind_n(&mut f, Endpoint::Stream(3), b"victim", 11);
    assert!(matches!(
        f.handle_packet(udp(1), &captured),
        Outcome::Refuse(_, DropReason::Replayed)
    ));
    assert_eq!(
        forwarded(f.handle_packet(udp(2), &rtp(2))),
        vec![Endpoint::Stream(3)]
    );
    assert_eq!(f.counters().refused_replayed, 2);
}

#[test]
fn a_request_signed_without_the_token_moves_nothing() {
    let mut f = Forwarding::new();
    admit(&mut f, b"victim", 1, 1);
    admit(&mut f, b"other", 1, 2);
    bind_n(&mut f, udp(1), b"victim", 1);
    bind_n(&mut f, udp(2), b"other", 1);
    // The attacker knows the victim's binding id (it is on the wire) but not its token.
    let forged = Binding::Request {
        txn: [1; 12],
        username: BindingId::of(&MediaToken::from_bytes(b"victim".to_vec())),
        counter: 1_000,
    }
    .encode_signed(&MediaToken::from_bytes(b"guess".to_vec()));
    let Outcome::Refuse(reply, DropReason::BadToken) = f.handle_packet(udp(66), &forged) else {
        panic!("a forged binding was not refused")
    };
    assert!(!Binding::decode(&reply).unwrap().has_integrity());
    assert_eq!(forwarded(f.handle_packet(udp(2), &rtp(2))), vec![udp(1)]);
    assert_eq!(f.counters().refused_bad_token, 1);
}

proptest! {
    /// Under any interleaving of grants, bindings, disconnects and packets, a packet is only ever
    /// forwarded to endpoints bound in the sender's own meeting, never back to the sender.
    #[test]
    fn never_forwards_across_meetings(ops in prop::collection::vec((0u8..4, 0u8..6, 0u16..6), 1..300)) {
        let mut f = Forwarding::new();
        let meeting_of = |t: u8| MeetingId((t % 2) as u64);
        for (op, tok, port) in ops {
            let e = if port == 5 { Endpoint::Stream(tok as u64) } else { udp(port) };
            match op {
                0 => f.admit(MediaToken::from_bytes(vec![tok]), meeting_of(tok), ParticipantId(tok as u64)),
                1 => { bind(&mut f, e, &[tok]); }
                2 => { f.revoke(&MediaToken::from_bytes(vec![tok])); }
                _ => {
                    let sender = f.participant_at(e);
                    if let Outcome::Forward(to) = f.handle_packet(e, &rtp(1)) {
                        let (m, _) = sender.expect("only bound endpoints forward");
                        for dest in to {
                            prop_assert_ne!(dest, e);
                            prop_assert_eq!(f.participant_at(dest).map(|(dm, _)| dm), Some(m));
                        }
                    }
                }
            }
        }
    }
}
