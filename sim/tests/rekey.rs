//! The re-key on removal, under madsim: a participant removed from a meeting who keeps listening
//! (it holds every key it was given, and sees every sealed packet on the MMR's path) opens
//! nothing sealed after it was removed. `MC_SIM_SEED=N ci/test-sim <test>` replays one seed.
#![cfg(madsim)]

use mc_core::client::{MediaCrypto, OpenFailures};
use mc_node::client::{self, ClientReport};
use mc_node::config::ClientConfig;
use mc_node::framed::{write_frame, FrameReader};
use mc_rt::net::UdpSocket;
use mc_sim::{run, seeds, SimDeployment};
use mc_wire::binding::{Binding, BindingId};
use mc_wire::ports::alpn;
use mc_wire::signal::{ClientToZc, ZcToClient};
use mc_wire::srtp::{MediaKey, Sealed};
use mc_wire::{classify_media, MediaKind, ParticipantId};
use rustls::pki_types::CertificateDer;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SEEDS: &[u64] = &[1, 2, 3, 4, 5];

/// Sealed packets the tap must see before the removal, and after it under the new key: enough
/// that a removed participant opening any of them would show.
const MIN_BEFORE: usize = 150;
const MIN_AFTER: usize = 150;
/// `unknown_key` a real client may count while the senders switch keys: packets sealed under the
/// new key that arrive before its own `rekey` does.
const MAX_UNKNOWN_KEY_PER_CLIENT: u64 = 10;

/// A participant the test drives with the raw protocol, so the test holds its key ring: it joins
/// over TLS signalling, keeps the key from `joined` and every `rekey`, binds on UDP with a signed
/// binding request, and keeps every sealed RTP packet the MMR forwards to it.
struct Insider {
    participant: ParticipantId,
    keys: Arc<Mutex<Vec<MediaKey>>>,
    /// Why the ZC ended the session, once it did.
    ended: Arc<Mutex<Option<String>>>,
    sealed: Arc<Mutex<Vec<Vec<u8>>>>,
    tasks: Vec<mc_rt::JoinHandle<()>>,
}

impl Insider {
    async fn join(config: &ClientConfig, ca: &CertificateDer<'static>) -> Insider {
        let name = &config.display_name;
        let grant = client::fetch_ticket(config, ca).await.unwrap();
        let c = &grant.controllers[0];
        let tls_config = mc_rt::tls::client_config(ca, None, alpn::SIGNAL).unwrap();
        let addr = mc_rt::net::resolve(&c.host, c.port).await.unwrap();
        let stream = mc_rt::tls::connect(addr, &c.host, tls_config, Duration::from_secs(2))
            .await
            .unwrap();
        let (rd, mut wr) = mc_rt::split(stream);
        let join = ClientToZc::Join {
            ticket: grant.ticket,
        };
        write_frame(&mut wr, &join).await.unwrap();
        let mut reader = FrameReader::new(rd);
        let (participant, token, key, media) = match reader.next::<ZcToClient>().await.unwrap() {
            Some(ZcToClient::Joined {
                participant,
                media_token,
                media_key,
                media,
                ..
            }) => (participant, media_token, media_key, media),
            other => panic!("{name} did not join: {other:?}"),
        };
        let keys = Arc::new(Mutex::new(vec![key]));
        let ended: Arc<Mutex<Option<String>>> = Arc::default();
        let pinger = mc_rt::spawn(async move {
            while write_frame(&mut wr, &ClientToZc::Ping).await.is_ok() {
                mc_rt::sleep(Duration::from_millis(500)).await;
            }
        });
        let (rekeys, end) = (keys.clone(), ended.clone());
        let listener = mc_rt::spawn(async move {
            while let Ok(Some(msg)) = reader.next::<ZcToClient>().await {
                match msg {
                    ZcToClient::Rekey { media_key } => rekeys.lock().unwrap().push(media_key),
                    ZcToClient::Ended { reason, .. } => *end.lock().unwrap() = Some(reason),
                    _ => {}
                }
            }
        });

        let mmr = mc_rt::net::resolve(&media.host, media.udp_port)
            .await
            .unwrap();
        let sock = UdpSocket::bind("0.0.0.0:0".parse().unwrap()).await.unwrap();
        let request = Binding::Request {
            txn: [7; 12],
            username: BindingId::of(&token),
            counter: 1,
        };
        sock.send_to(&request.encode_signed(&token), mmr)
            .await
            .unwrap();
        // Media may come as soon as the MMR has the binding, before its answer does: kept too.
        let sealed: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
        let mut buf = vec![0u8; 2048];
        let answer = loop {
            let (n, _) = mc_rt::timeout(Duration::from_secs(2), sock.recv_from(&mut buf))
                .await
                .expect("the MMR answers a binding")
                .unwrap();
            match classify_media(&buf[..n]) {
                MediaKind::Binding => break Binding::decode(&buf[..n]).unwrap(),
                MediaKind::Rtp => sealed.lock().unwrap().push(buf[..n].to_vec()),
                MediaKind::Unknown => panic!("{name} got {:?} from the MMR", &buf[..n]),
            }
        };
        assert!(answer.verify(&token), "the MMR signs its answer");
        assert!(
            matches!(answer.msg, Binding::Success { .. }),
            "{name} bound: {:?}",
            answer.msg
        );

        let kept = sealed.clone();
        let receiver = mc_rt::spawn(async move {
            while let Ok((n, _)) = sock.recv_from(&mut buf).await {
                if classify_media(&buf[..n]) == MediaKind::Rtp {
                    kept.lock().unwrap().push(buf[..n].to_vec());
                }
            }
        });
        Insider {
            participant,
            keys,
            ended,
            sealed,
            tasks: vec![pinger, listener, receiver],
        }
    }

    fn keys(&self) -> Vec<MediaKey> {
        self.keys.lock().unwrap().clone()
    }

    fn sealed(&self) -> Vec<Vec<u8>> {
        self.sealed.lock().unwrap().clone()
    }

    fn ended(&self) -> Option<String> {
        self.ended.lock().unwrap().clone()
    }

    async fn until(&self, what: &str, done: impl Fn(&Insider) -> bool) {
        for _ in 0..200 {
            if done(self) {
                return;
            }
            mc_rt::sleep(Duration::from_millis(50)).await;
        }
        panic!("not within 10 s: {what}");
    }
}

impl Drop for Insider {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// What the two insiders held and saw.
struct Tapped {
    /// How many packets the tap had a second after the removal.
    settled_at: usize,
    /// The staying insider's keys, and every sealed packet it received.
    tap_keys: Vec<MediaKey>,
    sealed: Vec<Vec<u8>>,
    /// The removed insider's keys: every one it was ever given.
    removed_keys: Vec<MediaKey>,
    removed_ended: Option<String>,
}

/// Opens `packet` with any key of `ring` (one `MediaCrypto` per key, so none is ever dropped).
fn opens(ring: &mut [MediaCrypto], packet: &[u8]) -> bool {
    ring.iter_mut().any(|c| c.open(packet).is_ok())
}

fn ring(keys: &[MediaKey]) -> Vec<MediaCrypto> {
    keys.iter().cloned().map(MediaCrypto::new).collect()
}

#[derive(Debug, Default)]
struct Tally {
    total: usize,
    tap_opened: usize,
    removed_opened: usize,
}

#[test]
fn a_removed_participant_kept_listening_opens_nothing_sent_after_its_removal() {
    for seed in seeds(SEEDS) {
        let (tapped, reports) = run(
            "a_removed_participant_kept_listening_opens_nothing_sent_after_its_removal",
            seed,
            move || async move {
                let d = SimDeployment::start(seed, |_| {}).await;
                d.start_mmr_vm(10).await;
                let m = d.create_meeting("rekey").await;
                let clients: Vec<_> = ["ada", "bob", "cyd"]
                    .into_iter()
                    .map(|n| d.spawn_client(d.client(n, m, 50, 8_000)))
                    .collect();
                let (ca, api) = (d.ca(), d.api());
                let (tap, removed) = (d.client("tap", m, 0, 0), d.client("removed", m, 0, 0));
                let tapped = d
                    .on_new_host("insiders", move || async move {
                        let tap = Insider::join(&tap, &ca).await;
                        let removed = Insider::join(&removed, &ca).await;
                        tap.until("the tap hears the meeting", |t| {
                            t.sealed().len() >= MIN_BEFORE
                        })
                        .await;
                        let path = format!(
                            "/v1/meetings/{}/participants/{}",
                            m.0, removed.participant.0
                        );
                        api.call("DELETE", &path, None)
                            .await
                            .expect("the removal is accepted");
                        removed
                            .until("the removed one is told", |r| r.ended().is_some())
                            .await;
                        // A second after the removal every sender has the new key (the ZC's
                        // re-key takes one signalling hop): what reaches the tap from then on
                        // was sealed after the removal, whatever key it is under.
                        mc_rt::sleep(Duration::from_secs(1)).await;
                        let settled_at = tap.sealed().len();
                        // The removed one keeps listening (its keys stay in hand) while the
                        // meeting goes on.
                        mc_rt::sleep(Duration::from_secs(2)).await;
                        Tapped {
                            settled_at,
                            tap_keys: tap.keys(),
                            sealed: tap.sealed(),
                            removed_keys: removed.keys(),
                            removed_ended: removed.ended(),
                        }
                    })
                    .await;
                let mut reports: Vec<ClientReport> = Vec::new();
                for c in clients {
                    reports.push(c.await.expect("client task").expect("client joined"));
                }
                (tapped, reports)
            },
        );

        // Whatever the keys: nothing that reached the tap from a second after the removal on
        // opens for the removed one.
        let mut removed_ring = ring(&tapped.removed_keys);
        let late = &tapped.sealed[tapped.settled_at..];
        let late_opened = late.iter().filter(|p| opens(&mut removed_ring, p)).count();
        assert!(
            late.len() >= MIN_AFTER,
            "seed {seed}: {} late packets",
            late.len()
        );
        assert_eq!(
            late_opened,
            0,
            "seed {seed}: the removed one opened {late_opened} of the {} packets that reached the \
             tap from a second after its removal",
            late.len()
        );

        let removed_newest = tapped.removed_keys.iter().map(|k| k.id).max().unwrap();
        let tap_newest = tapped.tap_keys.last().unwrap().id;
        assert!(
            tap_newest > removed_newest,
            "seed {seed}: the tap heard a re-key after the removal (tap's keys {:?}, the \
             removed one's {:?})",
            tapped.tap_keys.iter().map(|k| k.id).collect::<Vec<_>>(),
            tapped.removed_keys.iter().map(|k| k.id).collect::<Vec<_>>(),
        );
        assert!(
            tapped
                .removed_ended
                .as_deref()
                .is_some_and(|r| r.contains("removed")),
            "seed {seed}: the removed one was told why: {:?}",
            tapped.removed_ended
        );

        let (mut tap_ring, mut removed_ring) = (ring(&tapped.tap_keys), ring(&tapped.removed_keys));
        let (mut before, mut after) = (Tally::default(), Tally::default());
        let mut after_by_sender = std::collections::BTreeMap::<u32, usize>::new();
        for p in &tapped.sealed {
            let s = Sealed::peek(p).expect("the MMR forwards sealed RTP");
            let t = if s.key_id > removed_newest {
                *after_by_sender.entry(s.ssrc).or_default() += 1;
                &mut after
            } else {
                &mut before
            };
            t.total += 1;
            t.tap_opened += opens(&mut tap_ring, p) as usize;
            t.removed_opened += opens(&mut removed_ring, p) as usize;
        }
        let unknown: Vec<u64> = reports.iter().map(|r| r.unopened.unknown_key).collect();
        eprintln!(
            "[sim] seed {seed}: keys tap {:?} removed {:?}; before the re-key {before:?}; \
             after {after:?}; {} late packets, {late_opened} opened by the removed one; after by sender {after_by_sender:?}; clients' unknown_key \
             {unknown:?}",
            tapped.tap_keys.iter().map(|k| k.id).collect::<Vec<_>>(),
            tapped.removed_keys.iter().map(|k| k.id).collect::<Vec<_>>(),
            late.len(),
        );

        // Before: the same meeting key for both, so both open everything (the ring works).
        assert!(before.total >= MIN_BEFORE, "seed {seed}: {before:?}");
        assert_eq!(before.tap_opened, before.total, "seed {seed}: {before:?}");
        assert_eq!(
            before.removed_opened, before.total,
            "seed {seed}: {before:?}"
        );
        // After: many packets, each opens for the tap and none for the removed one.
        assert!(after.total >= MIN_AFTER, "seed {seed}: {after:?}");
        assert_eq!(after.tap_opened, after.total, "seed {seed}: {after:?}");
        assert_eq!(after.removed_opened, 0, "seed {seed}: {after:?}");

        // Every real client heard the re-key: it seals under the new key, and opens what the
        // others seal under it with few losses during the switch.
        for r in &reports {
            assert!(
                after_by_sender.get(&r.ssrc).copied().unwrap_or(0) >= 20,
                "seed {seed}: {} moved to the new key: {after_by_sender:?}",
                r.display_name
            );
            assert_eq!(r.rejoins, 0, "seed {seed}: {r:?}");
            assert_eq!(
                r.unopened,
                OpenFailures {
                    unknown_key: r.unopened.unknown_key,
                    ..Default::default()
                },
                "seed {seed}: {} refused only packets under a key it did not have yet",
                r.display_name
            );
            assert!(
                r.unopened.unknown_key <= MAX_UNKNOWN_KEY_PER_CLIENT,
                "seed {seed}: {}: {:?}",
                r.display_name,
                r.unopened
            );
        }
    }
}
