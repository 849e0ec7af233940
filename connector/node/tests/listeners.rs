//! Every TCP listener's deadlines and caps, each shown by what a peer sees (its connection closed,
//! or refused) and by the counter an operator reads; each test fails if its limit is removed.
#![cfg(not(madsim))]

mod common;

use common::attack::{closed_count, closed_within, connect_from, half_open_tls, scrape_when};
use common::Deployment;
use mc_node::client;
use mc_node::framed::{FrameReader, Read};
use mc_node::EventLog;
use mc_wire::ports::alpn;
use mc_wire::signal::ZcToClient;
use std::io::Write;
use std::time::{Duration, Instant};

/// Short deadlines, so each test takes a second or so.
const DEADLINE_MS: u64 = 300;

#[test]
fn a_stalled_tls_handshake_is_closed_at_the_handshake_deadline_and_counted() {
    mc_rt::block_on(async {
        let d = Deployment::start(|c, _| c.handshake_timeout_ms = DEADLINE_MS).await;
        // Stamped before connecting: the server's deadline cannot start any earlier.
        let opened = Instant::now();
        let mut s = half_open_tls("127.0.0.1", d.controller.signal_addr).unwrap();
        assert!(
            !closed_within(&mut s, Duration::from_millis(100)),
            "closed before its deadline"
        );
        assert!(
            closed_within(&mut s, Duration::from_secs(3)),
            "a stalled handshake stayed open"
        );
        assert!(opened.elapsed() >= Duration::from_millis(DEADLINE_MS));
        let timed_out = |s: &str| closed_count(s, "signalling", "handshake_timeout");
        let scrape = scrape_when(|| d.controller.metrics.render(), |s| timed_out(s) >= 1).await;
        assert_eq!(timed_out(&scrape), 1, "{scrape}");
    });
}

#[test]
fn a_signalling_session_that_never_joins_is_closed_at_the_first_message_deadline() {
    mc_rt::block_on(async {
        // The handshake deadline stays long: the session is closed for saying nothing after it.
        let d = Deployment::start(|c, _| c.first_message_timeout_ms = DEADLINE_MS).await;
        let opened = Instant::now();
        let stream = d.dial_signal().await;
        let (rd, _wr) = mc_rt::split(stream);
        let mut rd = FrameReader::new(rd);
        loop {
            match rd.next_within::<ZcToClient>(Duration::from_secs(3)).await {
                Read::Message(_) => continue,
                Read::Timeout => panic!("a session that never joined stayed open for 3 s"),
                Read::Closed | Read::Io(_) | Read::Malformed(_) => break,
            }
        }
        let took = opened.elapsed();
        assert!(
            took >= Duration::from_millis(DEADLINE_MS) && took < Duration::from_secs(2),
            "closed after {took:?}"
        );
    });
}

#[test]
fn a_tcp_8801_connection_that_never_binds_is_closed_at_the_first_message_deadline() {
    mc_rt::block_on(async {
        let d = Deployment::start(|c, _| c.first_message_timeout_ms = DEADLINE_MS).await;
        let to = d.controller.media_tcp_addr;
        let opened = Instant::now();
        let mut silent = connect_from("127.0.0.1", to).unwrap();
        // Sending is not binding: framed garbage every 100 ms does not keep a connection open.
        let mut chatty = connect_from("127.0.0.1", to).unwrap();
        let garbage = mc_wire::rfc4571::encode(&[0xde, 0xad, 0xbe, 0xef]);
        let mut chatty_closed = false;
        while opened.elapsed() < Duration::from_secs(3) && !chatty_closed {
            chatty_closed = chatty.write_all(&garbage).is_err()
                || closed_within(&mut chatty, Duration::from_millis(100));
        }
        assert!(chatty_closed, "a connection sending garbage stayed open");
        assert!(
            closed_within(&mut silent, Duration::from_secs(1)),
            "a silent connection stayed open"
        );
        assert!(opened.elapsed() >= Duration::from_millis(DEADLINE_MS));
        let timed_out = |s: &str| closed_count(s, "media_tcp", "first_message_timeout");
        let scrape = scrape_when(|| d.controller.metrics.render(), |s| timed_out(s) >= 2).await;
        assert_eq!(timed_out(&scrape), 2, "{scrape}");
    });
}

#[test]
fn a_tls_media_stream_that_never_binds_is_closed_at_the_first_message_deadline() {
    mc_rt::block_on(async {
        let d = Deployment::start(|c, _| c.first_message_timeout_ms = DEADLINE_MS).await;
        let stream = d.dial(d.controller.tls_addr, None, alpn::MEDIA).await;
        let (mut rd, _wr) = mc_rt::split(stream);
        let mut buf = [0u8; 64];
        let read = mc_rt::timeout(
            Duration::from_secs(3),
            mc_rt::AsyncReadExt::read(&mut rd, &mut buf),
        )
        .await;
        assert!(
            matches!(read, Ok(Ok(0)) | Ok(Err(_))),
            "a TLS media stream that never bound stayed open: {read:?}"
        );
        let timed_out = |s: &str| closed_count(s, "tls", "first_message_timeout");
        let scrape = scrape_when(|| d.controller.metrics.render(), |s| timed_out(s) >= 1).await;
        assert_eq!(timed_out(&scrape), 1, "{scrape}");
    });
}

#[test]
fn an_unbound_media_stream_that_carries_nothing_is_closed_at_the_idle_timeout() {
    mc_rt::block_on(async {
        // The first-message deadline stays long: the connection is closed for being idle.
        let d = Deployment::start(|c, _| c.media_idle_timeout_ms = DEADLINE_MS).await;
        let opened = Instant::now();
        let mut silent = connect_from("127.0.0.1", d.controller.media_tcp_addr).unwrap();
        assert!(
            closed_within(&mut silent, Duration::from_secs(3)),
            "an idle unbound connection stayed open"
        );
        assert!(opened.elapsed() >= Duration::from_millis(DEADLINE_MS));
        let idle = |s: &str| closed_count(s, "media_tcp", "idle_timeout");
        let scrape = scrape_when(|| d.controller.metrics.render(), |s| idle(s) >= 1).await;
        assert_eq!(idle(&scrape), 1, "{scrape}");
    });
}

#[test]
fn a_bound_muted_participant_on_tcp_is_not_closed_for_being_idle() {
    mc_rt::block_on(async {
        // UDP unreachable, so media takes TCP 8801; a muted participant alone in its meeting
        // neither sends nor receives a packet after binding, and clients send no keepalive on
        // streams: its stream lives as long as its grant.
        let black_hole = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let udp_port = black_hole.local_addr().unwrap().port();
        let d = Deployment::start(|c, _| {
            c.advertise_media_udp_port = Some(udp_port);
            c.media_idle_timeout_ms = DEADLINE_MS;
        })
        .await;
        let m = d.api().create_meeting("quiet").await.unwrap();
        let mut c = d.client("mute", m, 41);
        c.muted = true;
        c.duration_ms = 4 * DEADLINE_MS;
        let report = client::run(
            c,
            d.ca.clone(),
            EventLog::tracing_only("mute"),
            std::future::pending(),
        )
        .await
        .unwrap();
        assert_eq!(report.media_path, client::MediaPath::Tcp);
        assert_eq!(report.ended_by_zc, None, "{report:?}");
        let scrape = d.controller.metrics.render();
        assert_eq!(
            closed_count(&scrape, "media_tcp", "idle_timeout"),
            0,
            "{scrape}"
        );
        drop(black_hole);
    });
}

#[test]
fn the_connection_over_max_conns_per_source_is_refused_and_other_sources_are_not() {
    mc_rt::block_on(async {
        let d = Deployment::start(|c, _| c.max_conns_per_source = 3).await;
        let to = d.controller.media_tcp_addr;
        let mut held: Vec<_> = (0..3)
            .map(|_| connect_from("127.0.0.1", to).unwrap())
            .collect();
        let mut over = connect_from("127.0.0.1", to).unwrap();
        assert!(
            closed_within(&mut over, Duration::from_secs(1)),
            "the 4th connection from one source was kept"
        );
        let mut other = connect_from("127.0.0.2", to).unwrap();
        assert!(
            !closed_within(&mut other, Duration::from_millis(300)),
            "another source was refused"
        );
        for s in &mut held {
            assert!(
                !closed_within(s, Duration::from_millis(10)),
                "a connection under the cap was closed"
            );
        }
        // A closed connection gives its place back.
        drop(held.pop());
        mc_rt::sleep(Duration::from_millis(100)).await;
        let mut again = connect_from("127.0.0.1", to).unwrap();
        assert!(
            !closed_within(&mut again, Duration::from_millis(300)),
            "a freed place was not reused"
        );
        let scrape = d.controller.metrics.render();
        assert_eq!(
            closed_count(&scrape, "media_tcp", "source_full"),
            1,
            "{scrape}"
        );
        assert!(
            scrape.contains("mc_listener_connections_open{listener=\"media_tcp\"} 4\n"),
            "{scrape}"
        );
    });
}

#[test]
fn the_connection_over_max_conns_per_listener_is_refused_whatever_its_source() {
    mc_rt::block_on(async {
        let d = Deployment::start(|c, _| {
            c.max_conns_per_listener = 4;
            c.max_conns_per_source = 2;
        })
        .await;
        let to = d.controller.media_tcp_addr;
        let _held: Vec<_> = ["127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.3"]
            .iter()
            .map(|src| connect_from(src, to).unwrap())
            .collect();
        let mut over = connect_from("127.0.0.4", to).unwrap();
        assert!(
            closed_within(&mut over, Duration::from_secs(1)),
            "the 5th connection was kept"
        );
        let scrape = d.controller.metrics.render();
        assert_eq!(
            closed_count(&scrape, "media_tcp", "listener_full"),
            1,
            "{scrape}"
        );
    });
}
