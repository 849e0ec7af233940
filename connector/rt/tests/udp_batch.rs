//! Many datagrams per call: what `send_many` sends arrives whole, in order, from the right
//! sender, through `recv_many`; one datagram the system refuses loses only itself; datagrams to
//! one address sent as a train (UDP GSO) arrive one by one, each whole, in their order.
#![cfg(not(madsim))]

use mc_rt::net::{Inbox, UdpSocket, MAX_DATAGRAM};
use std::net::SocketAddr;
use std::time::Duration;

/// Receives until `count` datagrams came; returns them and how many receives it took.
async fn receive(rx: &UdpSocket, from: SocketAddr, count: usize) -> (Vec<Vec<u8>>, usize) {
    let mut inbox = Inbox::new(32);
    let (mut got, mut receives) = (Vec::new(), 0);
    while got.len() < count {
        mc_rt::timeout(Duration::from_secs(5), rx.recv_many(&mut inbox))
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} datagrams arrived", got.len()))
            .unwrap();
        assert!(
            (1..=32).contains(&inbox.len()),
            "{} in one receive",
            inbox.len()
        );
        receives += 1;
        for (bytes, sender) in inbox.iter() {
            assert_eq!(sender, from);
            got.push(bytes.to_vec());
        }
    }
    (got, receives)
}

#[test]
fn datagrams_sent_many_at_a_time_arrive_whole_and_in_order() {
    mc_rt::block_on(async {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let (tx, rx) = (
            UdpSocket::bind(any).await.unwrap(),
            UdpSocket::bind(any).await.unwrap(),
        );
        // Rounds small enough for the receiver's socket buffer. Each datagram is filled with its
        // own number, so a mix-up shows; sizes from empty to a video packet.
        for round in 0..3u8 {
            let payloads: Vec<Vec<u8>> = (0..40u8)
                .map(|i| vec![round * 40 + i; [0, 1, 172, 1_224][usize::from(i) % 4]])
                .collect();
            let mut msgs: Vec<(&[u8], SocketAddr)> =
                payloads.iter().map(|p| (&p[..], rx.local_addr())).collect();
            // The kernel refuses a datagram to port 0: it alone is lost.
            msgs.insert(17, (b"refused", "127.0.0.1:0".parse().unwrap()));
            tx.send_many(&msgs).await;
            let (got, receives) = receive(&rx, tx.local_addr(), payloads.len()).await;
            assert_eq!(got, payloads, "round {round}");
            // On Linux a receive takes whatever is waiting, many at once.
            if cfg!(target_os = "linux") {
                assert!(receives < 10, "{receives} receives for 40 datagrams");
            }
        }
        // The largest UDP payload over IPv4 arrives whole: a slot never truncates.
        let big = vec![0xAB; MAX_DATAGRAM - 28];
        tx.send_many(&[(&big, rx.local_addr())]).await;
        let (got, _) = receive(&rx, tx.local_addr(), 1).await;
        assert!(got[0] == big, "{} bytes of {}", got[0].len(), big.len());
    });
}

#[test]
fn datagrams_to_one_address_go_in_trains_and_arrive_one_by_one_in_order() {
    mc_rt::block_on(async {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let tx = UdpSocket::bind(any).await.unwrap();
        let (a, b) = (
            UdpSocket::bind(any).await.unwrap(),
            UdpSocket::bind(any).await.unwrap(),
        );
        if cfg!(target_os = "linux") {
            assert!(tx.sends_trains(), "this Linux kernel cuts no UDP trains");
        }
        // As a fan-out sends them: the two receivers' copies interleaved, mostly audio-sized
        // (trains), a shorter one now and then (it ends a train), a longer one (it starts
        // one), and more than a train may hold (64) to `a`.
        let payloads: Vec<Vec<u8>> = (0..150u8)
            .map(|i| vec![i; [172, 172, 172, 172, 172, 90, 172, 1_200][usize::from(i) % 8]])
            .collect();
        let to = |i: usize| {
            if i % 3 == 2 {
                b.local_addr()
            } else {
                a.local_addr()
            }
        };
        let msgs: Vec<(&[u8], SocketAddr)> = payloads
            .iter()
            .enumerate()
            .map(|(i, p)| (&p[..], to(i)))
            .collect();
        tx.send_many(&msgs).await;
        for rx in [&a, &b] {
            let expected: Vec<Vec<u8>> = (0..payloads.len())
                .filter(|&i| to(i) == rx.local_addr())
                .map(|i| payloads[i].clone())
                .collect();
            let (got, _) = receive(rx, tx.local_addr(), expected.len()).await;
            assert_eq!(got, expected);
        }
    });
}

#[test]
fn a_socket_given_larger_buffers_holds_a_burst_its_reader_has_not_reached() {
    mc_rt::block_on(async {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let (tx, rx) = (
            UdpSocket::bind(any).await.unwrap(),
            UdpSocket::bind(any).await.unwrap(),
        );
        let asked = 1 << 20;
        let (recv, send) = rx.set_buffer_bytes(asked).unwrap();
        // What the kernel grants is capped by its limits, and is exactly the request below them.
        let cap = |name: &str| -> usize {
            std::fs::read_to_string(format!("/proc/sys/net/core/{name}"))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        assert_eq!(recv, asked.min(cap("rmem_max")));
        assert_eq!(send, asked.min(cap("wmem_max")));
        if recv < asked {
            return; // this machine's cap leaves too little room for the burst below
        }
        // A thousand audio packets, about six times what Linux's default buffer holds, sent
        // before the reader reads any: every one waits for it.
        let payloads: Vec<Vec<u8>> = (0..1_000u16).map(|i| vec![i as u8; 172]).collect();
        let msgs: Vec<(&[u8], SocketAddr)> =
            payloads.iter().map(|p| (&p[..], rx.local_addr())).collect();
        for chunk in msgs.chunks(50) {
            tx.send_many(chunk).await;
        }
        let (got, _) = receive(&rx, tx.local_addr(), payloads.len()).await;
        assert_eq!(got, payloads);
    });
}
