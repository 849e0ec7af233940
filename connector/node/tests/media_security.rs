//! What someone on the network gets from the media port: a capture (tshark on loopback) shows no
//! payload, token or key in clear; a captured binding replayed from another host is refused and
//! moves nothing; packets forged with a participant's SSRC, from outside the meeting or from
//! inside it, are accepted by no receiver. Real sockets, real TLS, one controller with its MMR.
// Real sockets, a real runtime and a real packet capture: simulations live in sim/.
#![cfg(not(madsim))]

mod common;

use common::Deployment;
use mc_core::client::MediaCrypto;
use mc_core::client::OpenFailures;
use mc_node::client::{self, ClientProbe, ClientReport, MediaPath};
use mc_node::framed::{write_frame, FrameReader};
use mc_node::EventLog;
use mc_rt::net::UdpSocket;
use mc_wire::binding::{code, Binding, BindingId};
use mc_wire::rtp::{RtpHeader, RtpPacket};
use mc_wire::signal::{ClientToZc, ZcToClient};
use mc_wire::srtp::{MediaKey, Sealed};
use mc_wire::{classify_media, MediaKind, MediaToken, MeetingId};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// What the bridged tool and the test's own participant put in every payload: if the MMR or the
/// wire carried media in clear, it would show in the capture.
const MARKER: &[u8] = b"MC-CLEAR-MARKER:the quarterly numbers are";

// ---------------------------------------------------------------------------------------------
// The capture: tshark on loopback, filtered on the MMR's UDP port.

/// One UDP datagram the capture saw.
#[derive(Debug)]
struct Datagram {
    src_port: u16,
    payload: Vec<u8>,
}

/// A running `tshark -i lo -f "udp port N"` writing a pcap file.
struct Capture {
    tshark: Child,
    file: PathBuf,
    /// tshark's output, line by line: a payload per captured datagram, and its messages.
    lines: mpsc::Receiver<String>,
    canary: std::net::UdpSocket,
    udp_port: u16,
}

impl Capture {
    /// Starts capturing and returns once a datagram sent after the start shows in the capture
    /// (tshark says "Capture started" a little before it really captures).
    fn start(udp_port: u16, name: &str) -> Capture {
        let file = std::env::temp_dir().join(format!(
            "mc-media-security-{}-{name}.pcap",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&file);
        let filter = format!("udp port {udp_port}");
        // -P -l: also print each payload as it is captured, to see the canary arrive.
        let mut tshark = Command::new("tshark")
            .args(["-i", "lo", "-f", &filter, "-F", "pcap", "-P", "-l"])
            .args(["-T", "fields", "-e", "udp.payload", "-w"])
            .arg(&file)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tshark runs (Debian package tshark; .ci/run installs it)");
        let (tx, rx) = mpsc::channel();
        for out in [
            Box::new(tshark.stdout.take().expect("piped")) as Box<dyn std::io::Read + Send>,
            Box::new(tshark.stderr.take().expect("piped")),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        let mut capture = Capture {
            tshark,
            file,
            lines: rx,
            canary: std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
            udp_port,
        };
        capture.sync("start");
        capture
    }

    /// Returns once a datagram sent now shows in the capture: everything sent before it is in.
    /// The canary goes to the port on another loopback address, where nothing listens: the
    /// capture sees it, the MMR does not count it.
    fn sync(&mut self, what: &str) {
        let canary = format!("mc capture canary {what}");
        let canary_hex = mc_wire::hex::encode(canary.as_bytes());
        let until = std::time::Instant::now() + Duration::from_secs(30);
        let mut said = Vec::new();
        loop {
            let _ = self
                .canary
                .send_to(canary.as_bytes(), ("127.0.0.2", self.udp_port));
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) if line.trim() == canary_hex => return,
                Ok(line) => said.push(line),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => panic!("tshark ended: {said:#?}"),
            }
            if std::time::Instant::now() > until {
                let _ = self.tshark.kill();
                panic!("tshark did not capture the {what} canary on lo: {said:#?}");
            }
        }
    }

    /// Stops the capture (SIGINT, so the file is complete) and reads every UDP payload in it.
    fn stop(mut self) -> Vec<Datagram> {
        // libpcap hands packets over in blocks: what is still in one when tshark stops is lost.
        self.sync("stop");
        let pid = self.tshark.id().to_string();
        let status = Command::new("kill").args(["-INT", &pid]).status().unwrap();
        assert!(status.success(), "kill -INT {pid}");
        let exit = self.tshark.wait().unwrap();
        assert!(exit.success(), "tshark ended with {exit}");
        let out = Command::new("tshark")
            .arg("-r")
            .arg(&self.file)
            .args(["-T", "fields", "-e", "udp.srcport", "-e", "udp.payload"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tshark -r: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_file(&self.file);
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| {
                let (port, hex) = l.split_once('\t').unwrap_or((l, ""));
                Datagram {
                    src_port: port.parse().expect("a UDP source port"),
                    payload: mc_wire::hex::decode("udp.payload", hex.trim()).unwrap(),
                }
            })
            .collect()
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn secret_of(key: &MediaKey) -> Vec<u8> {
    let json = serde_json::to_value(key).unwrap();
    mc_wire::hex::decode("media key", json["secret"].as_str().unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The test's own participant: joins with the raw protocol, so the test knows its media token and
// the meeting's key, and sends exactly the packets the test makes.

struct Insider {
    token: MediaToken,
    /// The key from `joined`, then each `rekey`.
    keys: Arc<Mutex<Vec<MediaKey>>>,
    sock: Arc<UdpSocket>,
    mmr: SocketAddr,
    signalling: Vec<mc_rt::JoinHandle<()>>,
    received: Arc<Mutex<Received>>,
    receiver: Option<mc_rt::JoinHandle<()>>,
}

/// What the insider's socket got from the MMR.
#[derive(Default)]
struct Received {
    /// Sealed packets as they arrived, by sender SSRC.
    sealed: Vec<(u32, Vec<u8>)>,
    opened: u64,
    opened_with_marker: u64,
}

impl Insider {
    async fn join(d: &Deployment, meeting: MeetingId, name: &str, seed: u64) -> Insider {
        let grant = client::fetch_ticket(&d.client(name, meeting, seed), &d.ca)
            .await
            .unwrap();
        let stream = d.dial_signal().await;
        let (rd, mut wr) = mc_rt::split(stream);
        let join = ClientToZc::Join {
            ticket: grant.ticket,
        };
        write_frame(&mut wr, &join).await.unwrap();
        let mut reader = FrameReader::new(rd);
        let (token, key) = match reader.next::<ZcToClient>().await.unwrap() {
            Some(ZcToClient::Joined {
                media_token,
                media_key,
                ..
            }) => (media_token, media_key),
            other => panic!("{name} did not join: {other:?}"),
        };
        let keys = Arc::new(Mutex::new(vec![key]));
        // The session stays up while the insider pings, and every re-key is kept.
        let pinger = mc_rt::spawn(async move {
            loop {
                if write_frame(&mut wr, &ClientToZc::Ping).await.is_err() {
                    return;
                }
                mc_rt::sleep(Duration::from_millis(500)).await;
            }
        });
        let rekeys = keys.clone();
        let listener = mc_rt::spawn(async move {
            while let Ok(Some(msg)) = reader.next::<ZcToClient>().await {
                if let ZcToClient::Rekey { media_key } = msg {
                    rekeys.lock().unwrap().push(media_key);
                }
            }
        });
        let sock = Arc::new(
            UdpSocket::bind("127.0.0.1:0".parse().unwrap())
                .await
                .unwrap(),
        );
        let mut insider = Insider {
            token,
            keys,
            sock,
            mmr: d.controller.media_udp_addr,
            signalling: vec![pinger, listener],
            received: Default::default(),
            receiver: None,
        };
        let reply = insider.bind(1).await;
        assert!(
            matches!(reply, Binding::Success { .. }),
            "{name} bound: {reply:?}"
        );
        insider.receiver = Some(insider.receive());
        insider
    }

    /// One signed binding request with this counter; the MMR's verified answer.
    async fn bind(&self, counter: u64) -> Binding {
        let txn = [counter as u8; 12];
        let request = Binding::Request {
            txn,
            username: BindingId::of(&self.token),
            counter,
        };
        self.sock
            .send_to(&request.encode_signed(&self.token), self.mmr)
            .await
            .unwrap();
        let mut buf = vec![0u8; 2048];
        let (n, _) = mc_rt::timeout(Duration::from_secs(2), self.sock.recv_from(&mut buf))
            .await
            .expect("the MMR answers a binding")
            .unwrap();
        let answer = Binding::decode(&buf[..n]).unwrap();
        assert!(answer.verify(&self.token), "the MMR signs its answer");
        answer.msg
    }

    fn key(&self) -> MediaKey {
        self.keys.lock().unwrap().last().unwrap().clone()
    }

    /// Opens what arrives with the keys the ZC handed out, and keeps the sealed bytes.
    fn receive(&self) -> mc_rt::JoinHandle<()> {
        let (sock, keys, received) = (self.sock.clone(), self.keys.clone(), self.received.clone());
        mc_rt::spawn(async move {
            let mut crypto = MediaCrypto::new(keys.lock().unwrap()[0].clone());
            let mut buf = vec![0u8; 2048];
            while let Ok((n, _)) = sock.recv_from(&mut buf).await {
                let packet = &buf[..n];
                if classify_media(packet) != MediaKind::Rtp {
                    continue;
                }
                for k in keys.lock().unwrap().iter() {
                    crypto.install(k.clone());
                }
                let mut r = received.lock().unwrap();
                r.sealed
                    .push((RtpHeader::parse(packet).unwrap().ssrc, packet.to_vec()));
                if let Ok(plain) = crypto.open(packet) {
                    r.opened += 1;
                    if contains(&plain, MARKER) {
                        r.opened_with_marker += 1;
                    }
                }
            }
        })
    }

    /// The first sender other than `except` heard from, with one of its sealed packets.
    async fn heard_from(&self, except: &[u32]) -> (u32, Vec<u8>) {
        for _ in 0..100 {
            if let Some(found) = self
                .received
                .lock()
                .unwrap()
                .sealed
                .iter()
                .find(|(ssrc, _)| !except.contains(ssrc))
            {
                return found.clone();
            }
            mc_rt::sleep(Duration::from_millis(50)).await;
        }
        panic!("the insider heard nobody");
    }

    async fn send(&self, packet: &[u8]) {
        self.sock.send_to(packet, self.mmr).await.unwrap();
    }
}

impl Drop for Insider {
    fn drop(&mut self) {
        for t in &self.signalling {
            t.abort();
        }
        if let Some(r) = &self.receiver {
            r.abort();
        }
    }
}

fn rtp(ssrc: u32, sequence: u16, payload: &[u8]) -> Vec<u8> {
    RtpPacket {
        marker: false,
        payload_type: 111,
        sequence,
        timestamp: sequence as u32 * 960,
        ssrc,
        csrc: vec![],
        payload: payload.to_vec(),
    }
    .encode()
}

/// A client run in the background, with its live counters.
struct Running {
    probe: Arc<ClientProbe>,
    done: mc_rt::JoinHandle<ClientReport>,
}

fn run_client(d: &Deployment, config: mc_node::config::ClientConfig) -> Running {
    let probe = Arc::new(ClientProbe::default());
    let (ca, ev, p) = (
        d.ca.clone(),
        EventLog::collecting(&config.display_name, d.events.clone()),
        probe.clone(),
    );
    let done = mc_rt::spawn(async move {
        client::run_observed(config, ca, ev, std::future::pending(), &p)
            .await
            .expect("client joined")
    });
    Running { probe, done }
}

/// Waits until `probe` has received at least `n` packets that opened.
async fn received_at_least(probe: &ClientProbe, n: u64, who: &str) {
    for _ in 0..200 {
        if probe.received.load(Ordering::Relaxed) >= n {
            return;
        }
        mc_rt::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "{who} received only {} packets",
        probe.received.load(Ordering::Relaxed)
    );
}

/// `mc_mmr_dropped_packets_total{reason}` in a scrape (0 when absent).
fn dropped(scrape: &str, reason: &str) -> u64 {
    let label = format!("reason=\"{reason}\"");
    scrape
        .lines()
        .filter(|l| l.starts_with("mc_mmr_dropped_packets_total{") && l.contains(&label))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum()
}

// ---------------------------------------------------------------------------------------------

#[test]
fn a_capture_of_the_media_port_shows_no_payload_token_or_key() {
    mc_rt::block_on(async {
        let d = Deployment::start(|_, _| {}).await;
        let mmr_port = d.controller.media_udp_addr.port();
        let capture = Capture::start(mmr_port, "capture");
        let m = d.api().create_meeting("capture").await.unwrap();
        let insider = Insider::join(&d, m, "insider", 81).await;

        // A standard RTP tool behind a bridged client sends 200 packets whose payload is the
        // marker; a generated client listens and talks.
        let tool = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let bridge_port = std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut bridged = d.client("tool", m, 82);
        bridged.bridge_listen = Some(bridge_port);
        bridged.bridge_send = Some(tool.local_addr().unwrap());
        bridged.duration_ms = 4_000;
        let bridged = run_client(&d, bridged);
        let mut listener = d.client("listener", m, 83);
        listener.duration_ms = 4_000;
        let listener = run_client(&d, listener);
        d.wait_for("tool joined").await;
        d.wait_for("listener joined").await;
        // The listener's media reaching the insider says both are bound.
        insider.heard_from(&[]).await;
        let tool_rtp = std::thread::spawn(move || {
            for seq in 0..200u16 {
                tool.send_to(&rtp(0xfeed, seq, MARKER), bridge_port)
                    .unwrap();
                std::thread::sleep(Duration::from_millis(8));
            }
        });
        // The insider says it too, sealed by the test itself.
        let key = insider.key();
        let own_ssrc = 0x1a51_de00;
        for seq in 0..50u16 {
            let plain = rtp(own_ssrc, seq, MARKER);
            insider
                .send(&key.stream(own_ssrc).seal(0, &plain).unwrap())
                .await;
            mc_rt::sleep(Duration::from_millis(10)).await;
        }
        tool_rtp.join().unwrap();
        let (bridged, listener) = (bridged.done.await.unwrap(), listener.done.await.unwrap());
        let captured = capture.stop();

        // The marker did cross the captured port, sealed: the members open it.
        assert_eq!(bridged.sent, 200, "{bridged:?}");
        assert_eq!(
            listener.by_source.get(&0xfeed).map(|s| s.received),
            Some(200),
            "{listener:?}"
        );
        assert_eq!(
            listener.by_source.get(&own_ssrc).map(|s| s.received),
            Some(50),
            "the insider's sealing is the real one: {listener:?}"
        );
        let heard = insider.received.lock().unwrap().opened_with_marker;
        assert_eq!(heard, 200, "the insider opened the tool's packets");
        assert_eq!(listener.unopened, OpenFailures::default());

        // The capture holds the meeting: every RTP copy, and the insider's binding by its name.
        let rtp_seen = captured
            .iter()
            .filter(|p| classify_media(&p.payload) == MediaKind::Rtp)
            .count();
        assert!(
            rtp_seen >= 2 * 250,
            "the capture saw {rtp_seen} RTP datagrams of {}",
            captured.len()
        );
        let name = BindingId::of(&insider.token).0;
        assert!(
            captured
                .iter()
                .any(|p| p.src_port != mmr_port && contains(&p.payload, &name)),
            "the insider's binding request is in the capture"
        );

        // ...and nothing a listener on the wire could use.
        let mut secrets: Vec<(String, Vec<u8>)> = vec![
            ("the marker payload".into(), MARKER.to_vec()),
            ("the marker's first 12 bytes".into(), MARKER[..12].to_vec()),
            (
                "the insider's media token".into(),
                insider.token.as_bytes().to_vec(),
            ),
        ];
        let keys = insider.keys.lock().unwrap().clone();
        let ssrcs: std::collections::BTreeSet<u32> = captured
            .iter()
            .filter_map(|p| Sealed::peek(&p.payload).ok().map(|s| s.ssrc))
            .collect();
        assert!(ssrcs.contains(&0xfeed) && ssrcs.contains(&own_ssrc));
        for k in &keys {
            secrets.push((format!("media key {}", k.id), secret_of(k)));
            for ssrc in &ssrcs {
                let (aes, salt) = k.derive(*ssrc);
                secrets.push((
                    format!("key {} stream {ssrc:#x} AES key", k.id),
                    aes.to_vec(),
                ));
                secrets.push((format!("key {} stream {ssrc:#x} salt", k.id), salt.to_vec()));
            }
        }
        for (what, bytes) in &secrets {
            let found = captured
                .iter()
                .filter(|p| contains(&p.payload, bytes))
                .count();
            assert_eq!(found, 0, "{what} is in clear in {found} captured datagrams");
        }
    });
}

#[test]
fn a_captured_binding_replayed_from_another_host_is_refused_and_moves_nothing() {
    mc_rt::block_on(async {
        let d = Deployment::start(|_, _| {}).await;
        let mmr_port = d.controller.media_udp_addr.port();
        let m = d.api().create_meeting("replay").await.unwrap();
        let capture = Capture::start(mmr_port, "replay");
        let mut ada = d.client("ada", m, 91);
        ada.duration_ms = 5_000;
        let mut bob = d.client("bob", m, 92);
        bob.duration_ms = 5_000;
        let (ada, bob) = (run_client(&d, ada), run_client(&d, bob));
        received_at_least(&ada.probe, 10, "ada").await;
        received_at_least(&bob.probe, 10, "bob").await;
        let captured = capture.stop();
        let kinds: Vec<(u16, MediaKind, usize)> = captured
            .iter()
            .map(|p| (p.src_port, classify_media(&p.payload), p.payload.len()))
            .collect();
        let requests: Vec<Vec<u8>> = captured
            .into_iter()
            .filter(|p| p.src_port != mmr_port)
            .filter(|p| {
                matches!(
                    Binding::decode(&p.payload).map(|d| d.msg),
                    Ok(Binding::Request { .. })
                )
            })
            .map(|p| p.payload)
            .collect();
        assert!(
            requests.len() >= 2,
            "both clients' bindings were captured: {kinds:?}"
        );

        // The attacker, on another host, sends every captured request as it was.
        let before = d.controller.mmr.counters();
        let attacker = UdpSocket::bind("127.0.0.2:0".parse().unwrap())
            .await
            .unwrap();
        for r in &requests {
            attacker
                .send_to(r, d.controller.media_udp_addr)
                .await
                .unwrap();
        }
        let (ada_before, bob_before) = (
            ada.probe.received.load(Ordering::Relaxed),
            bob.probe.received.load(Ordering::Relaxed),
        );
        // For two seconds the attacker gets stale-binding errors, one per request, and no media.
        let mut answers = Vec::new();
        let mut buf = vec![0u8; 2048];
        while let Ok(got) =
            mc_rt::timeout(Duration::from_secs(2), attacker.recv_from(&mut buf)).await
        {
            answers.push(buf[..got.unwrap().0].to_vec());
        }
        assert_eq!(answers.len(), requests.len(), "one answer per replay");
        for a in &answers {
            match Binding::decode(a).map(|d| d.msg) {
                Ok(Binding::Error { code: c, .. }) => assert_eq!(c, code::STALE),
                other => panic!("the attacker got {other:?}"),
            }
        }
        let after = d.controller.mmr.counters();
        assert_eq!(
            after.refused_replayed - before.refused_replayed,
            requests.len() as u64,
            "each replay is counted as one"
        );
        assert_eq!(
            after.refused_bad_token, before.refused_bad_token,
            "the replays were genuine requests, refused as replays"
        );
        let scrape = d.controller.metrics.render();
        assert!(
            dropped(&scrape, "replayed") >= requests.len() as u64,
            "{scrape}"
        );

        // The victims' media goes on where it was.
        received_at_least(&ada.probe, ada_before + 40, "ada after the replay").await;
        received_at_least(&bob.probe, bob_before + 40, "bob after the replay").await;
        let (ada, bob) = (ada.done.await.unwrap(), bob.done.await.unwrap());
        for (r, other) in [(&ada, &bob), (&bob, &ada)] {
            assert_eq!(r.media_path, MediaPath::Udp, "{r:?}");
            assert_eq!(r.rejoins, 0, "{r:?}");
            assert_eq!(r.unopened, OpenFailures::default(), "{r:?}");
            let heard = r.by_source.get(&other.ssrc).map_or(0, |s| s.received);
            assert!(
                heard + 25 >= other.sent,
                "{} heard {heard} of {} packets {} sent",
                r.display_name,
                other.sent,
                other.display_name
            );
        }
    });
}

#[test]
fn packets_forged_with_a_participants_ssrc_open_nowhere() {
    mc_rt::block_on(async {
        let d = Deployment::start(|_, _| {}).await;
        let m = d.api().create_meeting("forge").await.unwrap();
        let insider = Insider::join(&d, m, "insider", 101).await;
        let mut ada = d.client("ada", m, 102);
        ada.duration_ms = 4_000;
        let mut bob = d.client("bob", m, 103);
        bob.duration_ms = 4_000;
        let (ada, bob) = (run_client(&d, ada), run_client(&d, bob));
        received_at_least(&ada.probe, 10, "ada").await;
        received_at_least(&bob.probe, 10, "bob").await;

        // The victim: the first real participant the insider hears, its SSRC read in clear, and
        // one of its packets as the wire carries it.
        let (victim, genuine) = insider.heard_from(&[]).await;
        let seq = Sealed::peek(&genuine).unwrap().sequence;
        let key = insider.key();
        let wrong = MediaKey::new(key.id, [0x55; 32]);
        let tampered_payload = |mut p: Vec<u8>| {
            let at = RtpHeader::parse(&p).unwrap().payload_offset;
            p[at] ^= 0x01;
            p
        };
        let tampered_tag = |mut p: Vec<u8>| {
            let at = p.len() - mc_wire::srtp::TRAILER_BYTES - 1;
            p[at] ^= 0x80;
            p
        };
        // Sequence numbers just ahead of the victim's, as a forger wanting to be heard picks.
        let ahead = |i: u16| seq.wrapping_add(5 + i);

        // The victim's own sealed packet, moved ahead in its stream: the header is authenticated.
        let moved = |i: u16| {
            let mut p = genuine.clone();
            p[2..4].copy_from_slice(&ahead(i).to_be_bytes());
            p
        };
        // From outside: a host that never bound sends the altered genuine packet and packets
        // sealed under a wrong key. The MMR forwards none of them.
        let before = d.controller.mmr.counters();
        let outsider = UdpSocket::bind("127.0.0.3:0".parse().unwrap())
            .await
            .unwrap();
        for i in 0..10u16 {
            let forged = [
                tampered_payload(moved(i)),
                wrong
                    .stream(victim)
                    .seal(0, &rtp(victim, ahead(i), b"listen to me"))
                    .unwrap(),
            ];
            for f in forged {
                outsider
                    .send_to(&f, d.controller.media_udp_addr)
                    .await
                    .unwrap();
            }
        }
        // From inside: the insider's bound endpoint claims the victim's SSRC with a tampered
        // tag, a wrong key, and the victim's own packet altered.
        for i in 10..20u16 {
            let sealed_as_victim = key
                .stream(victim)
                .seal(0, &rtp(victim, ahead(i), b"listen to me"))
                .unwrap();
            insider.send(&tampered_tag(sealed_as_victim)).await;
            insider
                .send(
                    &wrong
                        .stream(victim)
                        .seal(0, &rtp(victim, ahead(i), b"me"))
                        .unwrap(),
                )
                .await;
            insider.send(&moved(i)).await;
        }
        const INSIDE: u64 = 30;
        let mut unbound = 0;
        for _ in 0..100 {
            unbound = d.controller.mmr.counters().dropped_unbound - before.dropped_unbound;
            if unbound >= 20 {
                break;
            }
            mc_rt::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(unbound, 20, "the outsider's packets are dropped as unbound");
        let mut buf = vec![0u8; 2048];
        assert!(
            mc_rt::timeout(Duration::from_millis(500), outsider.recv_from(&mut buf))
                .await
                .is_err(),
            "the MMR sends nothing to a host that never bound"
        );

        let (ada, bob) = (ada.done.await.unwrap(), bob.done.await.unwrap());
        let (victim_report, other) = if ada.ssrc == victim {
            (&ada, &bob)
        } else {
            (&bob, &ada)
        };
        assert_eq!(victim_report.ssrc, victim, "the victim is ada or bob");
        // Both real participants got the insider's 30 forgeries (the MMR forwards a bound
        // endpoint's RTP without the key) and opened none; the outsider's 20 never reached them.
        for r in [&ada, &bob] {
            assert_eq!(
                r.unopened,
                OpenFailures {
                    forged: INSIDE,
                    ..Default::default()
                },
                "{}: {r:?}",
                r.display_name
            );
        }
        let heard = other.by_source[&victim].received;
        assert!(
            heard <= victim_report.sent,
            "{} counted {heard} packets from the victim, who sent {}",
            other.display_name,
            victim_report.sent
        );
        assert!(
            heard + 25 >= victim_report.sent,
            "the victim's media went on"
        );
    });
}
