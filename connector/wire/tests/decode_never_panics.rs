//! Every decoder takes arbitrary bytes from a peer and returns a value or a typed `DecodeError`;
//! none may panic. Roundtrip properties check that what we encode decodes to the same value, and
//! that anything a decoder accepts re-encodes to something that decodes to the same value.
//! Unit tests at the end pin the specific error each kind of bad input gets.

use mc_wire::binding::{Binding, BindingId};
use mc_wire::frame::{self, FrameDecoder, MAX_FRAME_BYTES};
use mc_wire::peer::PeerMsg;
use mc_wire::rfc4571::{self, Rfc4571Decoder};
use mc_wire::rtp::{RtpHeader, RtpPacket};
use mc_wire::signal::{ClientToZc, MediaEndpoints, RejectReason, ZcToClient};
use mc_wire::status::{
    ClaimOutcome, CloudToController, ControllerToCloud, Load, SignallingEndpoints,
};
use mc_wire::ticket::{Ticket, TicketClaims, MAX_DISPLAY_NAME_BYTES, MAX_TICKET_CHARS};
use mc_wire::MediaToken;
use mc_wire::{
    classify_media, hex, ControllerId, DecodeError, MediaKind, MeetingId, ParticipantId,
};
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::Debug;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const FUZZ_CASES: u32 = 512;
const ROUNDTRIP_CASES: u32 = 256;

/// Failures are not persisted: proptest cannot place a regressions file for an integration test
/// (it looks for lib.rs or main.rs), and says so on every run. A failure prints its minimal input.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..2048)
}

/// Sizes of the pieces a stream is read in; the last one repeats until the input is used up.
fn chunk_sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..300, 1..32)
}

/// Splits `data` into pieces of the given sizes (cycling through them).
fn split<'a>(data: &'a [u8], sizes: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].min(rest.len());
        out.push(&rest[..n]);
        rest = &rest[n..];
        i += 1;
    }
    out
}

/// Splits `data` at the given cut points (any order, duplicates and out-of-range ones allowed).
fn split_at_points<'a>(data: &'a [u8], points: &[usize]) -> Vec<&'a [u8]> {
    let mut cuts: Vec<usize> = points.iter().map(|p| p % (data.len() + 1)).collect();
    cuts.push(0);
    cuts.push(data.len());
    cuts.sort_unstable();
    cuts.dedup();
    cuts.windows(2).map(|w| &data[w[0]..w[1]]).collect()
}

/// A valid encoding with a few bytes overwritten, inserted or removed: gets fuzz input past the
/// first checks (magic numbers, versions, lengths) that random bytes almost never pass.
fn mutated(valid: Vec<u8>, edits: Vec<(usize, u8, u8)>) -> Vec<u8> {
    let mut v = valid;
    for (at, kind, byte) in edits {
        let at = if v.is_empty() { 0 } else { at % (v.len() + 1) };
        match kind % 4 {
            0 | 1 if at < v.len() => v[at] = byte,
            2 => v.insert(at, byte),
            3 if at < v.len() => {
                v.remove(at);
            }
            _ => v.push(byte),
        }
    }
    v
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    prop::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 0..6)
}

fn display_name() -> impl Strategy<Value = String> {
    // Any chars (control, multi-byte, …), cut at a char boundary to at most 64 bytes.
    prop::collection::vec(any::<char>(), 0..=MAX_DISPLAY_NAME_BYTES).prop_map(|chars| {
        let mut s = String::new();
        for c in chars {
            if s.len() + c.len_utf8() > MAX_DISPLAY_NAME_BYTES {
                break;
            }
            s.push(c);
        }
        s
    })
}

fn ticket_claims() -> impl Strategy<Value = TicketClaims> {
    (
        any::<u64>(),
        any::<u64>(),
        display_name(),
        any::<u64>(),
        any::<u64>(),
        any::<[u8; 16]>(),
        prop::option::of(1..=u32::MAX),
    )
        .prop_map(
            |(m, p, display_name, issued_at_ms, expires_at_ms, nonce, expected_participants)| {
                TicketClaims {
                    meeting: MeetingId(m),
                    participant: ParticipantId(p),
                    display_name,
                    issued_at_ms,
                    expires_at_ms,
                    nonce,
                    expected_participants,
                }
            },
        )
}

fn ticket() -> impl Strategy<Value = Ticket> {
    (ticket_claims(), prop::collection::vec(any::<u8>(), 0..=64)).prop_map(|(claims, signature)| {
        Ticket {
            signed_bytes: claims.encode(),
            claims,
            signature,
        }
    })
}

fn rtp_packet() -> impl Strategy<Value = RtpPacket> {
    (
        any::<bool>(),
        0u8..=127,
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
        prop::collection::vec(any::<u32>(), 0..=15),
        prop::collection::vec(any::<u8>(), 0..1500),
    )
        .prop_map(
            |(marker, payload_type, sequence, timestamp, ssrc, csrc, payload)| RtpPacket {
                marker,
                payload_type,
                sequence,
                timestamp,
                ssrc,
                csrc,
                payload,
            },
        )
}

fn socket_addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port)),
        (any::<[u8; 16]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port)),
    ]
}

/// The token every binding in these tests is signed with.
fn test_token() -> MediaToken {
    MediaToken::from_bytes(vec![0x5a; 16])
}

/// Encodes as a client or MMR would: signed (requests must be; replies to a known grant are).
fn enc(b: &Binding) -> Vec<u8> {
    b.encode_signed(&test_token())
}

fn binding() -> impl Strategy<Value = Binding> {
    prop_oneof![
        (any::<[u8; 12]>(), any::<[u8; 16]>(), any::<u64>()).prop_map(
            |(txn, username, counter)| Binding::Request {
                txn,
                username: BindingId(username),
                counter
            }
        ),
        (any::<[u8; 12]>(), socket_addr())
            .prop_map(|(txn, mapped)| Binding::Success { txn, mapped }),
        (any::<[u8; 12]>(), 300u16..=699, "[ -~]{0,40}")
            .prop_map(|(txn, code, reason)| Binding::Error { txn, code, reason }),
    ]
}

fn client_to_zc() -> impl Strategy<Value = ClientToZc> {
    prop_oneof![
        any::<String>().prop_map(|ticket| ClientToZc::Join { ticket }),
        any::<String>().prop_map(|pass| ClientToZc::Rejoin { pass }),
        Just(ClientToZc::Leave),
    ]
}

fn reject_reason() -> impl Strategy<Value = RejectReason> {
    // Every reason, including any added later (this list once missed controller_draining).
    prop::sample::select(RejectReason::ALL.to_vec())
}

fn zc_to_client() -> impl Strategy<Value = ZcToClient> {
    prop_oneof![
        (
            any::<u64>(),
            any::<u64>(),
            any::<String>(),
            any::<[u16; 3]>(),
            proptest::collection::vec(any::<u8>(), 1..=64),
            any::<(u32, [u8; 32])>(),
            any::<Option<String>>(),
        )
            .prop_map(
                |(
                    m,
                    p,
                    host,
                    [udp_port, tcp_port, tls_port],
                    token,
                    (key_id, secret),
                    rejoin_pass,
                )| {
                    ZcToClient::Joined {
                        meeting: MeetingId(m),
                        participant: ParticipantId(p),
                        media: MediaEndpoints {
                            host,
                            udp_port,
                            tcp_port,
                            tls_port,
                        },
                        media_token: mc_wire::MediaToken::from_bytes(token),
                        media_key: mc_wire::srtp::MediaKey::new(key_id, secret),
                        rejoin_pass,
                    }
                }
            ),
        any::<String>().prop_map(|pass| ZcToClient::RejoinPass { pass }),
        any::<(u32, [u8; 32])>().prop_map(|(id, secret)| ZcToClient::Rekey {
            media_key: mc_wire::srtp::MediaKey::new(id, secret)
        }),
        (reject_reason(), any::<String>(), any::<Option<u64>>()).prop_map(
            |(reason, message, retry_after_ms)| ZcToClient::Rejected {
                reason,
                message,
                retry_after_ms
            }
        ),
        (any::<String>(), any::<bool>())
            .prop_map(|(reason, rejoin)| ZcToClient::Ended { reason, rejoin }),
    ]
}

fn load() -> impl Strategy<Value = Load> {
    (any::<u32>(), any::<u32>()).prop_map(|(participants, meetings)| Load {
        participants,
        meetings,
    })
}

fn controller_to_cloud() -> impl Strategy<Value = ControllerToCloud> {
    prop_oneof![
        (
            any::<String>(),
            any::<String>(),
            any::<String>(),
            any::<u16>(),
            any::<u16>(),
            load()
        )
            .prop_map(|(c, zone, host, port, fallback_port, capacity)| {
                ControllerToCloud::Register {
                    controller: ControllerId(c),
                    zone,
                    signalling: SignallingEndpoints {
                        host,
                        port,
                        fallback_port,
                    },
                    capacity,
                    meetings: vec![],
                }
            }),
        (load(), load(), any::<bool>(), any::<u64>()).prop_map(
            |(load, capacity, ready, sent_ms)| {
                ControllerToCloud::Heartbeat {
                    load,
                    capacity,
                    ready,
                    sent_ms,
                }
            }
        ),
        (any::<u64>(), any::<u64>(), any::<String>()).prop_map(|(request, meeting, peer)| {
            ControllerToCloud::Claim {
                request,
                meeting: MeetingId(meeting),
                alive_peers: vec![ControllerId(peer)],
            }
        }),
        (any::<u64>(), any::<u64>()).prop_map(|(meeting, epoch)| ControllerToCloud::Release {
            meeting: MeetingId(meeting),
            epoch
        }),
    ]
}

fn cloud_to_controller() -> impl Strategy<Value = CloudToController> {
    prop_oneof![
        (any::<String>(), any::<u64>()).prop_map(|(ticket_key, heartbeat_interval_ms)| {
            CloudToController::Registered {
                ticket_key,
                heartbeat_interval_ms,
                lease_ms: heartbeat_interval_ms / 2,
                revoked: vec![MeetingId(heartbeat_interval_ms)],
            }
        }),
        any::<String>().prop_map(|message| CloudToController::Rejected { message }),
        any::<u64>().prop_map(|echo_ms| CloudToController::Ack { echo_ms }),
        (any::<u64>(), any::<u64>(), any::<String>()).prop_map(|(request, epoch, message)| {
            CloudToController::Claimed {
                request,
                meeting: MeetingId(epoch),
                outcome: if epoch % 2 == 0 {
                    ClaimOutcome::Granted { epoch }
                } else {
                    ClaimOutcome::Retry {
                        message,
                        retry_after_ms: (epoch % 3 == 0).then_some(epoch),
                    }
                },
            }
        }),
    ]
}

/// A frame header (`len`, version) in front of arbitrary bytes: reaches the JSON parser.
fn frame_with_body(version: u8, body: &[u8]) -> Vec<u8> {
    let mut v = ((body.len() + 1) as u32).to_be_bytes().to_vec();
    v.push(version);
    v.extend_from_slice(body);
    v
}

/// Frame bodies that look like JSON messages, so the fuzzer exercises serde, not just the frame.
fn jsonish_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        bytes(),
        r#"\{("[a-z_]{0,12}":("[a-z_]{0,16}"|[0-9-]{1,22}|null|true|\{\}|\[\]|\{"[a-z_]{1,8}":[0-9]{1,5}\}),?){0,6}\}"#
            .prop_map(String::into_bytes),
        prop::sample::select(vec![
            r#"{"type":"join","ticket":"x"}"#,
            r#"{"type":"leave"}"#,
            r#"{"type":"joined","meeting":1,"participant":2,"media":{"host":"h","udp_port":1,"tcp_port":2,"tls_port":3},"media_token":"ab"}"#,
            r#"{"type":"rejected","reason":"meeting_full","message":"m"}"#,
            r#"{"type":"ended","reason":"r"}"#,
            r#"{"type":"register","controller":"c","zone":"z","signalling":{"host":"h","port":1,"fallback_port":2},"capacity":{"participants":1,"meetings":2}}"#,
            r#"{"type":"heartbeat","load":{"participants":1,"meetings":2}}"#,
            r#"{"type":"registered","ticket_key":"ab","heartbeat_interval_ms":5}"#,
            r#"{"type":"rejected","message":"no"}"#,
            r#"{"type":"claim","request":1,"meeting":2,"alive_peers":["b"]}"#,
            r#"{"type":"claimed","request":1,"meeting":2,"outcome":{"type":"granted","epoch":3}}"#,
            r#"{"type":"ping","controller":"a","sent_ms":1,"meetings":[{"meeting":1,"epoch":2,"mmr":"m","participants":3}],"load":{"participants":1,"meetings":2},"capacity":{"participants":1,"meetings":2}}"#,
            r#"{"type":"redirect","controller":"b","host":"h","port":1,"fallback_port":2,"message":"m"}"#,
        ])
        .prop_flat_map(|s| edits().prop_map(move |e| mutated(s.as_bytes().to_vec(), e))),
        // Deep nesting must hit serde_json's recursion limit, not overflow the stack.
        (1usize..1000).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n)).into_bytes()),
        (1usize..1000).prop_map(|n| format!(r#"{{"type":"join","ticket":{}1{}}}"#, "[".repeat(n), "]".repeat(n)).into_bytes()),
    ]
}

// ---------------------------------------------------------------------------------------------
// Helpers that call a decoder and check its answer is sane
// ---------------------------------------------------------------------------------------------

/// The error renders (its Display must not panic either).
fn check_err(e: &DecodeError) {
    assert!(!e.to_string().is_empty());
}

/// `frame::decode` on arbitrary input; when it accepts, re-encoding decodes to the same value.
fn frame_decode_checked<T: DeserializeOwned + Serialize + PartialEq + Debug>(input: &[u8]) {
    match frame::decode::<T>(input) {
        Ok(msg) => {
            let again: T =
                frame::decode(&frame::encode(&msg)).expect("a decoded message re-encodes");
            assert_eq!(again, msg);
        }
        Err(e) => check_err(&e),
    }
}

/// Feeds a `FrameDecoder` in chunks, taking messages out after each; stops at the first error,
/// as a receiver closes the stream then.
fn frame_stream_checked<T: DeserializeOwned + Debug>(input: &[u8], sizes: &[usize]) {
    let mut dec = FrameDecoder::default();
    for chunk in split(input, sizes) {
        dec.push(chunk);
        loop {
            match dec.next_message::<T>() {
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(e) => {
                    check_err(&e);
                    return;
                }
            }
        }
    }
}

fn all_frame_decoders(input: &[u8], sizes: &[usize]) {
    frame_decode_checked::<ClientToZc>(input);
    frame_decode_checked::<ZcToClient>(input);
    frame_decode_checked::<ControllerToCloud>(input);
    frame_decode_checked::<CloudToController>(input);
    frame_decode_checked::<PeerMsg>(input);
    frame_stream_checked::<ClientToZc>(input, sizes);
    frame_stream_checked::<ZcToClient>(input, sizes);
    frame_stream_checked::<ControllerToCloud>(input, sizes);
    frame_stream_checked::<CloudToController>(input, sizes);
    frame_stream_checked::<PeerMsg>(input, sizes);
}

fn rtp_checked(input: &[u8]) {
    match RtpHeader::parse(input) {
        Ok(h) => {
            // The ranges it reports lie inside the packet and account for every byte.
            assert_eq!(
                h.payload_offset + h.payload_len + h.padding_len,
                input.len()
            );
            assert!(h.csrc.len() <= 15);
            assert!(h.payload_type <= 127);
            assert_eq!(classify_media(input), MediaKind::Rtp);
            let p = RtpPacket::decode(input).expect("parse accepted it, so decode does");
            assert_eq!(
                &p.payload[..],
                &input[h.payload_offset..h.payload_offset + h.payload_len]
            );
            // Re-encoding what was accepted is stable.
            assert_eq!(
                RtpPacket::decode(&p.encode()).expect("re-encoded packet decodes"),
                p
            );
        }
        Err(e) => {
            check_err(&e);
            assert_eq!(RtpPacket::decode(input).unwrap_err(), e);
        }
    }
}

fn binding_checked(input: &[u8]) {
    match Binding::decode(input) {
        Ok(b) => {
            assert_eq!(classify_media(input), MediaKind::Binding);
            assert_eq!(
                Binding::decode(&enc(&b.msg))
                    .expect("re-encoded binding decodes")
                    .msg,
                b.msg
            );
        }
        Err(e) => check_err(&e),
    }
}

fn rfc4571_checked(input: &[u8], sizes: &[usize]) {
    let all = rfc4571::decode_all(input);
    let mut dec = Rfc4571Decoder::default();
    let mut streamed: Vec<Vec<u8>> = Vec::new();
    for chunk in split(input, sizes) {
        dec.push(chunk);
        while let Some(p) = dec.next_packet() {
            assert!(
                !p.is_empty(),
                "the stream decoder skips zero-length packets"
            );
            streamed.push(p.to_vec());
        }
    }
    match all {
        // Where the whole buffer is whole frames, both decoders agree (but for empty packets).
        Ok(packets) => {
            let nonempty: Vec<Vec<u8>> = packets
                .iter()
                .filter(|p| !p.is_empty())
                .map(|p| p.to_vec())
                .collect();
            assert_eq!(streamed, nonempty);
        }
        Err(e) => check_err(&e),
    }
}

fn ticket_claims_checked(input: &[u8]) {
    match TicketClaims::decode(input) {
        Ok(c) => {
            assert!(c.display_name.len() <= MAX_DISPLAY_NAME_BYTES);
            // The encoding is canonical: what decodes re-encodes to the very same bytes.
            assert_eq!(c.encode(), input);
        }
        Err(e) => check_err(&e),
    }
}

fn ticket_text_checked(input: &str) {
    match Ticket::parse(input) {
        Ok(t) => {
            assert_eq!(t.claims.encode(), t.signed_bytes);
            assert_eq!(
                Ticket::parse(&t.to_text()).expect("re-rendered ticket parses"),
                t
            );
        }
        Err(e) => check_err(&e),
    }
}

fn hex_checked(input: &str) {
    match hex::decode("test", input) {
        Ok(b) => {
            assert_eq!(b.len() * 2, input.len());
            assert_eq!(hex::encode(&b), input.to_ascii_lowercase());
        }
        Err(e) => check_err(&e),
    }
}

// ---------------------------------------------------------------------------------------------
// Arbitrary input never panics
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(FUZZ_CASES))]

    #[test]
    fn every_decoder_survives_arbitrary_bytes(input in bytes(), sizes in chunk_sizes()) {
        all_frame_decoders(&input, &sizes);
        rtp_checked(&input);
        binding_checked(&input);
        rfc4571_checked(&input, &sizes);
        ticket_claims_checked(&input);
        let text = String::from_utf8_lossy(&input);
        ticket_text_checked(&text);
        hex_checked(&text);
        let _ = classify_media(&input);
    }

    #[test]
    fn frame_decoders_survive_arbitrary_bodies(
        version in prop_oneof![Just(frame::VERSION), any::<u8>()],
        body in jsonish_body(),
        trailer in prop::collection::vec(any::<u8>(), 0..8),
        sizes in chunk_sizes(),
    ) {
        let mut input = frame_with_body(version, &body);
        all_frame_decoders(&input, &sizes);
        input.extend_from_slice(&trailer);
        all_frame_decoders(&input, &sizes);
    }

    #[test]
    fn frame_decoders_survive_mutated_frames(
        msg in prop_oneof![
            client_to_zc().prop_map(|m| frame::encode(&m)),
            zc_to_client().prop_map(|m| frame::encode(&m)),
            controller_to_cloud().prop_map(|m| frame::encode(&m)),
            cloud_to_controller().prop_map(|m| frame::encode(&m)),
        ],
        e in edits(),
        sizes in chunk_sizes(),
    ) {
        all_frame_decoders(&mutated(msg, e), &sizes);
    }

    #[test]
    fn rtp_decoders_survive_rtp_like_bytes(mut input in prop::collection::vec(any::<u8>(), 12..2048), first in any::<u8>()) {
        // Version 2, and any P/X/CC bits: reaches the CSRC, extension and padding checks.
        input[0] = 0x80 | (first & 0x3f);
        rtp_checked(&input);
    }

    #[test]
    fn rtp_decoders_survive_mutated_packets(p in rtp_packet(), e in edits(), flags in any::<u8>()) {
        let mut v = p.encode();
        v[0] = (v[0] & 0xc0) | (flags & 0x3f);
        rtp_checked(&mutated(v, e));
    }

    #[test]
    fn binding_decoder_survives_binding_like_bytes(
        ty in prop::sample::select(vec![0x0001u16, 0x0101, 0x0111, 0x0002, 0x0000]),
        txn in any::<[u8; 12]>(),
        attrs in prop::collection::vec(
            (
                prop::sample::select(vec![0x4001u16, 0x0020, 0x0009, 0x8022, 0x0000]),
                prop_oneof![
                    prop::collection::vec(any::<u8>(), 0..80),
                    // Shaped like an ERROR-CODE or XOR-MAPPED-ADDRESS value, with any class,
                    // number, family and length.
                    (any::<[u8; 4]>(), "[ -~]{0,20}").prop_map(|(head, reason)| [&head[..], reason.as_bytes()].concat()),
                    (any::<u8>(), prop::sample::select(vec![1u8, 2, 3]), prop::collection::vec(any::<u8>(), 0..=18))
                        .prop_map(|(r, family, rest)| [&[r, family][..], &rest].concat()),
                ],
            ),
            0..5,
        ),
        lie_about_len in any::<Option<u16>>(),
        chop in any::<Option<usize>>(),
    ) {
        // A well-formed header around well- or badly-formed attributes.
        let mut body = Vec::new();
        for (at, value) in &attrs {
            body.extend_from_slice(&at.to_be_bytes());
            body.extend_from_slice(&(value.len() as u16).to_be_bytes());
            body.extend_from_slice(value);
            body.resize(body.len().div_ceil(4) * 4, 0);
        }
        if let Some(n) = chop {
            body.truncate(n % (body.len() + 1));
        }
        let mut v = ty.to_be_bytes().to_vec();
        v.extend_from_slice(&lie_about_len.unwrap_or(body.len() as u16).to_be_bytes());
        v.extend_from_slice(&mc_wire::binding::MAGIC_COOKIE.to_be_bytes());
        v.extend_from_slice(&txn);
        v.extend_from_slice(&body);
        binding_checked(&v);
    }

    #[test]
    fn binding_error_codes_decode_in_range_or_not_at_all(
        txn in any::<[u8; 12]>(),
        head in any::<[u8; 4]>(),
        reason in "[ -~]{0,20}",
    ) {
        let value = [&head[..], reason.as_bytes()].concat();
        let mut v = 0x0111u16.to_be_bytes().to_vec();
        let padded = 4 + value.len().div_ceil(4) * 4;
        v.extend_from_slice(&(padded as u16).to_be_bytes());
        v.extend_from_slice(&mc_wire::binding::MAGIC_COOKIE.to_be_bytes());
        v.extend_from_slice(&txn);
        v.extend_from_slice(&0x0009u16.to_be_bytes());
        v.extend_from_slice(&(value.len() as u16).to_be_bytes());
        v.extend_from_slice(&value);
        v.resize(20 + padded, 0);
        match Binding::decode(&v) {
            Ok(d) => {
                let Binding::Error { code, .. } = &d.msg else { panic!("not an error: {d:?}") };
                prop_assert!((300..=699).contains(code), "code {}", code);
                prop_assert_eq!(Binding::decode(&d.msg.encode_unsigned()).unwrap(), d);
            }
            Err(e) => prop_assert!(matches!(e, DecodeError::Malformed { .. }), "{:?}", e),
        }
    }

    #[test]
    fn binding_decoder_survives_mutated_messages(b in binding(), e in edits()) {
        binding_checked(&mutated(enc(&b), e));
    }

    #[test]
    fn rfc4571_decoders_survive_arbitrary_streams(input in bytes(), sizes in chunk_sizes()) {
        rfc4571_checked(&input, &sizes);
    }

    #[test]
    fn ticket_decoders_survive_arbitrary_strings(s in any::<String>()) {
        ticket_text_checked(&s);
        hex_checked(&s);
    }

    #[test]
    fn ticket_decoders_survive_ticket_like_strings(
        s in prop_oneof![
            "[0-9a-fA-F]{0,300}\\.[0-9a-fA-F]{0,200}",
            "01[0-9a-f]{96}00[0-9a-f]{2}[0-9a-f]{0,140}\\.[0-9a-f]{128}",
            "[0-9a-f.]{0,1100}",
        ],
    ) {
        ticket_text_checked(&s);
    }

    #[test]
    fn ticket_decoders_survive_mutated_tickets(t in ticket(), e in edits()) {
        let claims = mutated(t.signed_bytes.clone(), e.clone());
        ticket_claims_checked(&claims);
        let text = mutated(t.to_text().into_bytes(), e);
        ticket_text_checked(&String::from_utf8_lossy(&text));
    }

    #[test]
    fn ticket_claims_decoder_survives_claims_like_bytes(mut input in prop::collection::vec(any::<u8>(), 51..160), name_len in 0u16..80) {
        // Version 1 and a plausible name length: reaches the length and UTF-8 checks.
        input[0] = mc_wire::ticket::VERSION;
        input[49..51].copy_from_slice(&name_len.to_be_bytes());
        ticket_claims_checked(&input);
        let fitted = &input[..(51 + name_len as usize).min(input.len())];
        ticket_claims_checked(fitted);
    }

    #[test]
    fn hex_decoder_survives_hexish_strings(s in "[0-9a-fA-Fg-zG-Z \\x00-\\x1f\u{7f}é€😀]{0,64}") {
        hex_checked(&s);
    }

    #[test]
    fn classify_media_is_total(input in bytes()) {
        let kind = classify_media(&input);
        match input.first() {
            None => prop_assert_eq!(kind, MediaKind::Unknown),
            Some(b) if b >> 6 == 0 => prop_assert_eq!(kind, MediaKind::Binding),
            Some(b) if b >> 6 == 2 => prop_assert_eq!(kind, MediaKind::Rtp),
            Some(_) => prop_assert_eq!(kind, MediaKind::Unknown),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Roundtrips
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config(ROUNDTRIP_CASES))]

    #[test]
    fn rtp_packet_roundtrips(p in rtp_packet()) {
        let bytes = p.encode();
        prop_assert_eq!(classify_media(&bytes), MediaKind::Rtp);
        let h = RtpHeader::parse(&bytes).unwrap();
        prop_assert_eq!(h.payload_offset, 12 + 4 * p.csrc.len());
        prop_assert_eq!(h.payload_len, p.payload.len());
        prop_assert_eq!(h.padding_len, 0);
        prop_assert_eq!(h.extension, None);
        prop_assert_eq!(RtpPacket::decode(&bytes).unwrap(), p);
    }

    #[test]
    fn binding_roundtrips(b in binding()) {
        let bytes = enc(&b);
        prop_assert_eq!(classify_media(&bytes), MediaKind::Binding);
        prop_assert_eq!(bytes.len() % 4, 0);
        let d = Binding::decode(&bytes).unwrap();
        prop_assert!(d.verify(&test_token()));
        prop_assert_eq!(d.msg, b);
    }

    #[test]
    fn ticket_claims_roundtrip(c in ticket_claims()) {
        let bytes = c.encode();
        let hint_len = if c.expected_participants.is_some() { 4 } else { 0 };
        prop_assert_eq!(bytes.len(), 51 + c.display_name.len() + hint_len);
        prop_assert_eq!(TicketClaims::decode(&bytes).unwrap(), c);
    }

    #[test]
    fn ticket_text_roundtrips(t in ticket()) {
        let text = t.to_text();
        prop_assert!(text.len() <= MAX_TICKET_CHARS);
        prop_assert_eq!(Ticket::parse(&text).unwrap(), t);
    }

    #[test]
    fn hex_roundtrips(b in prop::collection::vec(any::<u8>(), 0..256)) {
        let s = hex::encode(&b);
        prop_assert_eq!(hex::decode("test", &s).unwrap(), b.clone());
        prop_assert_eq!(hex::decode("test", &s.to_uppercase()).unwrap(), b);
    }

    #[test]
    fn rfc4571_stream_reassembles(
        packets in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..20),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let mut stream = Vec::new();
        for p in &packets {
            rfc4571::encode_into(p, &mut stream);
        }
        let one_by_one: Vec<u8> = packets.iter().flat_map(|p| rfc4571::encode(p)).collect();
        prop_assert_eq!(&one_by_one, &stream);

        let mut dec = Rfc4571Decoder::default();
        let mut got: Vec<Vec<u8>> = Vec::new();
        for piece in split_at_points(&stream, &cuts) {
            dec.push(piece);
            while let Some(p) = dec.next_packet() {
                got.push(p.to_vec());
            }
        }
        let expected: Vec<Vec<u8>> = packets.iter().filter(|p| !p.is_empty()).cloned().collect();
        prop_assert_eq!(got, expected);

        // decode_all keeps zero-length packets: it splits, it does not filter.
        let all: Vec<Vec<u8>> = rfc4571::decode_all(&stream).unwrap().into_iter().map(<[u8]>::to_vec).collect();
        prop_assert_eq!(all, packets);
    }

    #[test]
    fn client_frames_reassemble(
        msgs in prop::collection::vec(client_to_zc(), 0..12),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let mut stream = Vec::new();
        for m in &msgs {
            let f = frame::encode(m);
            prop_assert_eq!(frame::decode::<ClientToZc>(&f).unwrap(), m.clone());
            stream.extend_from_slice(&f);
        }
        let mut dec = FrameDecoder::default();
        let mut got = Vec::new();
        for piece in split_at_points(&stream, &cuts) {
            dec.push(piece);
            while let Some(m) = dec.next_message::<ClientToZc>().unwrap() {
                got.push(m);
            }
        }
        prop_assert_eq!(got, msgs);
        prop_assert_eq!(dec.buffered(), 0);
    }

    #[test]
    fn server_frames_roundtrip(
        z in zc_to_client(),
        up in controller_to_cloud(),
        down in cloud_to_controller(),
    ) {
        prop_assert_eq!(frame::decode::<ZcToClient>(&frame::encode(&z)).unwrap(), z);
        prop_assert_eq!(frame::decode::<ControllerToCloud>(&frame::encode(&up)).unwrap(), up);
        prop_assert_eq!(frame::decode::<CloudToController>(&frame::encode(&down)).unwrap(), down);
    }
}

// ---------------------------------------------------------------------------------------------
// Specific typed errors
// ---------------------------------------------------------------------------------------------

fn leave_frame() -> Vec<u8> {
    frame::encode(&ClientToZc::Leave)
}

#[test]
fn oversized_frame_is_refused_from_its_header_alone() {
    let len = (MAX_FRAME_BYTES + 1) as u32;
    let header = len.to_be_bytes();
    let too_large = DecodeError::TooLarge {
        what: "control frame",
        len: MAX_FRAME_BYTES + 1,
        max: MAX_FRAME_BYTES,
    };

    // The stream decoder answers as soon as it has the four length bytes: it does not wait for
    // (and buffer) the 64 KiB body the header announces.
    let mut dec = FrameDecoder::default();
    dec.push(&header);
    assert_eq!(dec.next_message::<ClientToZc>().unwrap_err(), too_large);
    assert_eq!(dec.buffered(), 4);
    assert_eq!(frame::decode::<ClientToZc>(&header).unwrap_err(), too_large);

    // The largest length there is, too.
    assert_eq!(
        frame::decode::<ClientToZc>(&u32::MAX.to_be_bytes()).unwrap_err(),
        DecodeError::TooLarge {
            what: "control frame",
            len: u32::MAX as usize,
            max: MAX_FRAME_BYTES
        }
    );
}

#[test]
fn frame_of_exactly_the_maximum_is_accepted() {
    // `{"type":"leave"}` padded with JSON whitespace to exactly MAX_FRAME_BYTES (version + body).
    let mut body = br#"{"type":"leave"}"#.to_vec();
    body.resize(MAX_FRAME_BYTES - 1, b' ');
    let f = frame_with_body(frame::VERSION, &body);
    assert_eq!(f.len(), 4 + MAX_FRAME_BYTES);
    assert_eq!(frame::decode::<ClientToZc>(&f).unwrap(), ClientToZc::Leave);
}

#[test]
fn frame_with_wrong_version_is_unsupported() {
    let mut f = leave_frame();
    f[4] = 2;
    assert_eq!(
        frame::decode::<ClientToZc>(&f).unwrap_err(),
        DecodeError::UnsupportedVersion {
            what: "control frame",
            version: 2
        }
    );
    f[4] = 0;
    assert!(matches!(
        frame::decode::<ClientToZc>(&f),
        Err(DecodeError::UnsupportedVersion { version: 0, .. })
    ));
}

#[test]
fn empty_frame_is_malformed() {
    assert!(matches!(
        frame::decode::<ClientToZc>(&[0, 0, 0, 0]),
        Err(DecodeError::Malformed { .. })
    ));
}

#[test]
fn truncated_frame_says_how_much_it_needs() {
    let f = leave_frame();
    assert_eq!(
        frame::decode::<ClientToZc>(&f[..f.len() - 1]).unwrap_err(),
        DecodeError::Truncated {
            what: "control frame",
            needed: f.len(),
            have: f.len() - 1
        }
    );
    assert_eq!(
        frame::decode::<ClientToZc>(&f[..2]).unwrap_err(),
        DecodeError::Truncated {
            what: "control frame",
            needed: 4,
            have: 2
        }
    );
}

#[test]
fn bytes_after_the_frame_are_malformed() {
    let mut f = leave_frame();
    f.push(0);
    assert!(matches!(
        frame::decode::<ClientToZc>(&f),
        Err(DecodeError::Malformed { .. })
    ));
}

#[test]
fn field_order_and_whitespace_do_not_matter() {
    for body in [
        &br#"{"ticket":"t","type":"join"}"#[..],
        br#" { "type" : "join" , "ticket" : "t" } "#,
    ] {
        let f = frame_with_body(frame::VERSION, body);
        assert_eq!(
            frame::decode::<ClientToZc>(&f).unwrap(),
            ClientToZc::Join { ticket: "t".into() }
        );
    }
    let f = frame_with_body(frame::VERSION, b"\n{\"type\":\"leave\"}\n");
    assert_eq!(frame::decode::<ClientToZc>(&f).unwrap(), ClientToZc::Leave);
}

#[test]
fn frame_with_unknown_message_or_field_is_malformed() {
    for body in [
        &br#"{"type":"dance"}"#[..],
        br#"{"type":"join","ticket":"t","extra":1}"#,
        br#"{"type":"join","ticket":"a","ticket":"b"}"#,
        br#"{"type":"leave","extra":1}"#,
        br#"{"type":"leave","type":"leave"}"#,
        br#"{"type":"join"}"#,
        b"not json",
        b"",
    ] {
        let f = frame_with_body(frame::VERSION, body);
        assert!(
            matches!(
                frame::decode::<ClientToZc>(&f),
                Err(DecodeError::Malformed {
                    what: "control message",
                    ..
                })
            ),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

fn rtp_bytes() -> Vec<u8> {
    RtpPacket {
        marker: false,
        payload_type: 96,
        sequence: 1,
        timestamp: 2,
        ssrc: 3,
        csrc: vec![],
        payload: vec![1, 2, 3, 4],
    }
    .encode()
}

#[test]
fn rtp_version_1_is_unsupported() {
    let mut p = rtp_bytes();
    p[0] = (p[0] & 0x3f) | 1 << 6;
    assert_eq!(
        RtpHeader::parse(&p).unwrap_err(),
        DecodeError::UnsupportedVersion {
            what: "RTP packet",
            version: 1
        }
    );
    assert_eq!(
        RtpPacket::decode(&p).unwrap_err(),
        DecodeError::UnsupportedVersion {
            what: "RTP packet",
            version: 1
        }
    );
}

#[test]
fn rtp_padding_count_zero_is_malformed() {
    let mut p = rtp_bytes();
    p[0] |= 0x20;
    *p.last_mut().unwrap() = 0;
    assert!(matches!(
        RtpHeader::parse(&p),
        Err(DecodeError::Malformed {
            what: "RTP packet",
            ..
        })
    ));
}

#[test]
fn rtp_padding_longer_than_the_payload_is_malformed() {
    let mut p = rtp_bytes();
    p[0] |= 0x20;
    *p.last_mut().unwrap() = 5; // payload is 4 bytes
    assert!(matches!(
        RtpHeader::parse(&p),
        Err(DecodeError::Malformed { .. })
    ));
    // Padding may take the whole payload (the count byte counts itself).
    *p.last_mut().unwrap() = 4;
    let h = RtpHeader::parse(&p).unwrap();
    assert_eq!((h.payload_len, h.padding_len), (0, 4));
}

#[test]
fn rtp_shorter_than_its_csrcs_or_extension_is_truncated() {
    assert!(matches!(
        RtpHeader::parse(&[0x80; 11]),
        Err(DecodeError::Truncated {
            needed: 12,
            have: 11,
            ..
        })
    ));
    let mut p = rtp_bytes();
    p[0] |= 0x02; // two CSRCs, but only four bytes follow the fixed header
    assert!(matches!(
        RtpHeader::parse(&p),
        Err(DecodeError::Truncated {
            needed: 20,
            have: 16,
            ..
        })
    ));
    let mut p = rtp_bytes();
    p[0] |= 0x10; // extension header claims 0x0304 words
    assert!(matches!(
        RtpHeader::parse(&p),
        Err(DecodeError::Truncated { .. })
    ));
}

#[test]
fn rtp_extension_is_parsed_and_skipped() {
    let mut p = rtp_bytes();
    p[0] |= 0x10;
    p.truncate(12);
    p.extend_from_slice(&[0xbe, 0xde, 0, 1, 9, 8, 7, 6, 0xaa]);
    let h = RtpHeader::parse(&p).unwrap();
    assert_eq!(h.extension, Some((0xbede, vec![9, 8, 7, 6])));
    assert_eq!((h.payload_offset, h.payload_len), (20, 1));
    assert_eq!(RtpPacket::decode(&p).unwrap().payload, vec![0xaa]);
}

fn request_bytes() -> Vec<u8> {
    enc(&Binding::Request {
        txn: [7; 12],
        username: BindingId::of(&test_token()),
        counter: 1,
    })
}

#[test]
fn binding_with_bad_magic_cookie_is_malformed() {
    let mut b = request_bytes();
    b[4] ^= 0xff;
    assert_eq!(
        Binding::decode(&b).unwrap_err(),
        DecodeError::Malformed {
            what: "binding message",
            detail: "bad magic cookie".into()
        }
    );
}

#[test]
fn binding_request_without_username_is_malformed() {
    // Header only: no attributes at all.
    let mut b = request_bytes();
    b.truncate(20);
    b[2..4].copy_from_slice(&0u16.to_be_bytes());
    assert_eq!(
        Binding::decode(&b).unwrap_err(),
        DecodeError::Malformed {
            what: "binding message",
            detail: "request without USERNAME".into()
        }
    );
    // An unknown attribute instead of the username: skipped, so still no username.
    let mut b = request_bytes();
    b[20..22].copy_from_slice(&0x8022u16.to_be_bytes());
    assert!(matches!(
        Binding::decode(&b),
        Err(DecodeError::Malformed { .. })
    ));
}

#[test]
fn binding_request_with_a_short_username_or_counter_or_no_integrity_is_malformed() {
    let good = request_bytes();
    // USERNAME is the first attribute (type at 20, length at 22): claim 12 bytes instead of 16.
    let mut short_user = good.clone();
    short_user[22..24].copy_from_slice(&12u16.to_be_bytes());
    // BINDING-COUNTER follows at 40: claim 4 bytes instead of 8 (the padding keeps the layout).
    let mut short_counter = good.clone();
    short_counter[42..44].copy_from_slice(&4u16.to_be_bytes());
    // The integrity attribute's type renamed to an unknown one: skipped, so none.
    let mut no_integrity = good.clone();
    no_integrity[52..54].copy_from_slice(&0x8099u16.to_be_bytes());
    for (what, b) in [
        ("short username", short_user),
        ("short counter", short_counter),
        ("no integrity", no_integrity),
    ] {
        assert!(Binding::decode(&b).is_err(), "{what}");
    }
}

#[test]
fn binding_length_field_must_match() {
    let mut b = request_bytes();
    b.push(0);
    assert!(matches!(
        Binding::decode(&b),
        Err(DecodeError::Malformed { .. })
    ));
    assert!(matches!(
        Binding::decode(&b[..19]),
        Err(DecodeError::Truncated {
            needed: 20,
            have: 19,
            ..
        })
    ));
}

#[test]
fn binding_error_code_out_of_range_is_malformed() {
    let good = Binding::Error {
        txn: [1; 12],
        code: 401,
        reason: "Unauthorized".into(),
    }
    .encode_unsigned();
    assert!(Binding::decode(&good).is_ok());
    // ERROR-CODE value starts at byte 24: two reserved bytes, the class, the number.
    for (class, number) in [(2u8, 0u8), (7, 0), (3, 100), (4, 255)] {
        let mut b = good.clone();
        b[26] = class;
        b[27] = number;
        assert!(
            matches!(Binding::decode(&b), Err(DecodeError::Malformed { .. })),
            "class {class} number {number}"
        );
    }
}

#[test]
fn binding_success_with_bad_address_family_is_malformed() {
    let mut b = Binding::Success {
        txn: [1; 12],
        mapped: "192.0.2.1:5000".parse().unwrap(),
    }
    .encode_unsigned();
    b[25] = 2; // says IPv6, but carries four address bytes
    assert!(matches!(
        Binding::decode(&b),
        Err(DecodeError::Malformed { .. })
    ));
}

#[test]
fn unknown_binding_type_is_malformed() {
    let mut b = request_bytes();
    b[0..2].copy_from_slice(&0x0002u16.to_be_bytes());
    assert!(matches!(
        Binding::decode(&b),
        Err(DecodeError::Malformed { .. })
    ));
}

fn claims() -> TicketClaims {
    TicketClaims {
        meeting: MeetingId(7),
        participant: ParticipantId(1),
        display_name: "Ada".into(),
        issued_at_ms: 1_000,
        expires_at_ms: 2_000,
        nonce: [9; 16],
        expected_participants: None,
    }
}

#[test]
fn a_size_hint_makes_version_2_and_version_1_stays_as_it_was() {
    let plain = claims().encode();
    assert_eq!((plain[0], plain.len()), (1, 51 + 3));
    let hinted = TicketClaims {
        expected_participants: Some(500),
        ..claims()
    };
    let b = hinted.encode();
    assert_eq!(b[0], 2);
    assert_eq!(
        &b[1..plain.len()],
        &plain[1..],
        "the same fields, then the hint"
    );
    assert_eq!(&b[plain.len()..], &500u32.to_be_bytes());
    assert_eq!(TicketClaims::decode(&b).unwrap(), hinted);
    // A hint of 0, a missing hint, or one on a version 1 ticket is malformed.
    let mut zero = b.clone();
    zero[plain.len()..].copy_from_slice(&[0; 4]);
    let mut no_hint = plain.clone();
    no_hint[0] = 2;
    let mut v1_with_hint = b.clone();
    v1_with_hint[0] = 1;
    for bad in [zero, no_hint, v1_with_hint] {
        assert!(
            matches!(
                TicketClaims::decode(&bad),
                Err(DecodeError::Malformed { .. })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn ticket_claims_errors_are_typed() {
    let good = claims().encode();
    let mut b = good.clone();
    b[0] = 3;
    assert_eq!(
        TicketClaims::decode(&b).unwrap_err(),
        DecodeError::UnsupportedVersion {
            what: "join ticket",
            version: 3
        }
    );
    assert!(matches!(
        TicketClaims::decode(&good[..50]),
        Err(DecodeError::Truncated {
            needed: 51,
            have: 50,
            ..
        })
    ));
    assert!(matches!(
        TicketClaims::decode(&good[..good.len() - 1]),
        Err(DecodeError::Malformed { .. })
    ));
    let mut b = good.clone();
    b[49..51].copy_from_slice(&65u16.to_be_bytes());
    assert!(matches!(
        TicketClaims::decode(&b),
        Err(DecodeError::TooLarge {
            len: 65,
            max: 64,
            ..
        })
    ));
    let mut b = good.clone();
    *b.last_mut().unwrap() = 0xff;
    assert!(matches!(
        TicketClaims::decode(&b),
        Err(DecodeError::Malformed { .. })
    ));
}

#[test]
fn ticket_text_errors_are_typed() {
    let text = Ticket {
        signed_bytes: claims().encode(),
        claims: claims(),
        signature: vec![0x5a; 64],
    }
    .to_text();
    assert!(Ticket::parse(&text).is_ok());
    assert!(matches!(
        Ticket::parse(&text.replace('.', "")),
        Err(DecodeError::Malformed { .. })
    ));
    assert!(matches!(
        Ticket::parse(&format!("{text}0")),
        Err(DecodeError::Malformed { .. })
    ));
    assert!(matches!(
        Ticket::parse(&format!("{text}zz")),
        Err(DecodeError::Malformed { .. })
    ));
    let long = "0".repeat(MAX_TICKET_CHARS + 1);
    assert_eq!(
        Ticket::parse(&long).unwrap_err(),
        DecodeError::TooLarge {
            what: "join ticket",
            len: MAX_TICKET_CHARS + 1,
            max: MAX_TICKET_CHARS
        }
    );
}

#[test]
fn hex_errors_are_typed() {
    assert!(matches!(
        hex::decode("t", "abc"),
        Err(DecodeError::Malformed { what: "t", .. })
    ));
    assert!(matches!(
        hex::decode("t", "zz"),
        Err(DecodeError::Malformed { .. })
    ));
    assert!(matches!(
        hex::decode("t", "é"),
        Err(DecodeError::Malformed { .. })
    ));
    assert_eq!(hex::decode("t", "").unwrap(), Vec::<u8>::new());
}

#[test]
fn rfc4571_truncated_buffer_is_truncated() {
    assert!(matches!(
        rfc4571::decode_all(&[0]),
        Err(DecodeError::Truncated {
            needed: 2,
            have: 1,
            ..
        })
    ));
    assert!(matches!(
        rfc4571::decode_all(&[0, 3, 1, 2]),
        Err(DecodeError::Truncated {
            needed: 5,
            have: 4,
            ..
        })
    ));
}

#[test]
fn classify_media_examples() {
    assert_eq!(classify_media(&[]), MediaKind::Unknown);
    assert_eq!(classify_media(&request_bytes()), MediaKind::Binding);
    assert_eq!(classify_media(&rtp_bytes()), MediaKind::Rtp);
    assert_eq!(classify_media(&[0x40]), MediaKind::Unknown);
    assert_eq!(classify_media(&[0xc0]), MediaKind::Unknown);
}
