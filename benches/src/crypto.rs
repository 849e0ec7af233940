//! What media protection costs a client per packet, beside `ring`'s raw AES-256-GCM on the same
//! payload, and what a binding's integrity costs, beside `ring`'s raw HMAC-SHA256.
//!
//! The measured path is the client's own: `MediaCrypto::seal` (RTP header parse, rollover
//! counter, stream key lookup, associated data, AES-256-GCM, a new packet) and
//! `MediaCrypto::open` (peek at the clear parts, replay window, key lookup, AES-256-GCM, a new
//! packet), one sender and one receiver sharing a meeting key, every packet a new sequence number
//! so the receiver's replay window takes each once. The baseline seals the same payload in place
//! under a fixed `LessSafeKey` with a counter nonce and no associated data, then opens it in
//! place: the least any AES-256-GCM user pays, with no allocation. The two alternate round by
//! round; each figure is the median over the rounds.
//!
//! Costs are CPU time of the measuring thread (`CLOCK_THREAD_CPUTIME_ID`), so a machine busy
//! with other work slows the figures less than wall time would; "per core" is 1 s of CPU
//! divided by that cost. The benchmark is one thread, so per core is also its rate.

use crate::report::Row;
use mc_core::client::{MediaCrypto, RtpSender};
use mc_wire::binding::{Binding, BindingId};
use mc_wire::srtp::MediaKey;
use mc_wire::MediaToken;
use ring::{aead, hmac};
use std::time::{Duration, Instant};

/// Typical payloads: 20 ms of Opus or G.711 audio, and a video packet kept under a 1,280-byte
/// path MTU.
pub const CASES: [(&str, usize); 2] = [("audio", 160), ("video", 1200)];
/// Packets made (untimed) and then sealed and opened (timed) at a time.
const CHUNK_PACKETS: usize = 2048;
/// Binding requests signed and verified at a time.
const CHUNK_BINDINGS: usize = 1024;
/// Unmeasured work before the first round, so caches and the CPU's clock are warm.
const WARMUP: Duration = Duration::from_millis(200);

/// CPU time of the calling thread in nanoseconds. `CLOCK_THREAD_CPUTIME_ID` brings the count
/// up to date when read; `/proc/thread-self/schedstat` does not (it moves at scheduler ticks,
/// coarser than a batch here).
fn cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// CPU nanoseconds one batch takes on this thread.
fn timed(f: impl FnOnce()) -> u64 {
    let start = cpu_ns();
    f();
    cpu_ns() - start
}

#[derive(Debug, Default, Clone, Copy)]
struct Cost {
    seal_ns: u64,
    open_ns: u64,
    packets: u64,
}

impl Cost {
    fn per_packet(&self) -> (f64, f64) {
        let n = self.packets.max(1) as f64;
        (self.seal_ns as f64 / n, self.open_ns as f64 / n)
    }
}

/// The client's path for `budget` of wall time: fresh sender and receiver, as after a join.
fn media_crypto(payload_bytes: usize, budget: Duration) -> Cost {
    let key = MediaKey::new(1, [0x42; 32]);
    let (mut alice, mut bob) = (MediaCrypto::new(key.clone()), MediaCrypto::new(key));
    let mut tx = RtpSender::new(0x1122_3344, 65_000, 0);
    let payload = vec![0xa5; payload_bytes];
    let mut cost = Cost::default();
    let start = Instant::now();
    while cost.packets == 0 || start.elapsed() < budget {
        let plain: Vec<Vec<u8>> = (0..CHUNK_PACKETS)
            .map(|_| tx.next_packet(payload.clone()))
            .collect();
        let mut sealed = Vec::with_capacity(CHUNK_PACKETS);
        cost.seal_ns += timed(|| {
            for p in &plain {
                sealed.push(alice.seal(p).expect("a key is held").expect("well formed"));
            }
        });
        let mut opened = 0usize;
        cost.open_ns += timed(|| {
            for s in &sealed {
                opened += bob.open(s).map(|p| p.len()).expect("opens once");
            }
        });
        assert_eq!(opened, plain.iter().map(Vec::len).sum::<usize>());
        cost.packets += CHUNK_PACKETS as u64;
    }
    cost
}

/// `ring`'s AES-256-GCM alone on the same payload, in place, fixed key, counter nonce.
fn raw_aead(payload_bytes: usize, budget: Duration) -> Cost {
    let key = aead::LessSafeKey::new(
        aead::UnboundKey::new(&aead::AES_256_GCM, &[0x42; 32]).expect("32 bytes"),
    );
    let nonce = |i: u64| {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&i.to_be_bytes());
        aead::Nonce::assume_unique_for_key(n)
    };
    let payload = vec![0xa5; payload_bytes];
    let mut bufs: Vec<Vec<u8>> = (0..CHUNK_PACKETS)
        .map(|_| Vec::with_capacity(payload_bytes + aead::AES_256_GCM.tag_len()))
        .collect();
    let (mut cost, mut counter) = (Cost::default(), 0u64);
    let start = Instant::now();
    while cost.packets == 0 || start.elapsed() < budget {
        let first = counter;
        cost.seal_ns += timed(|| {
            for buf in bufs.iter_mut() {
                buf.clear();
                buf.extend_from_slice(&payload);
                let tag = key
                    .seal_in_place_separate_tag(nonce(counter), aead::Aad::empty(), buf)
                    .expect("small");
                buf.extend_from_slice(tag.as_ref());
                counter += 1;
            }
        });
        let mut opened = 0usize;
        cost.open_ns += timed(|| {
            for (i, buf) in bufs.iter_mut().enumerate() {
                let plain = key
                    .open_in_place(nonce(first + i as u64), aead::Aad::empty(), buf)
                    .expect("opens");
                opened += plain.len();
            }
        });
        assert_eq!(opened, payload_bytes * CHUNK_PACKETS);
        cost.packets += CHUNK_PACKETS as u64;
    }
    cost
}

/// The binding's integrity on its real path: the client names its grant and signs a request
/// (`BindingId::of`, `encode_signed`), the MMR decodes it and checks the HMAC (`decode`,
/// `verify`). "seal" is the client's sign, "open" the MMR's verify.
fn binding(budget: Duration) -> Cost {
    let token = MediaToken::from_bytes(vec![0x6d; 16]);
    let (mut cost, mut counter) = (Cost::default(), 0u64);
    let start = Instant::now();
    while cost.packets == 0 || start.elapsed() < budget {
        let mut requests = Vec::with_capacity(CHUNK_BINDINGS);
        cost.seal_ns += timed(|| {
            for _ in 0..CHUNK_BINDINGS {
                counter += 1;
                let txn: [u8; 12] = std::array::from_fn(|i| (counter >> (i % 8)) as u8);
                requests.push(
                    Binding::Request {
                        txn,
                        username: BindingId::of(&token),
                        counter,
                    }
                    .encode_signed(&token),
                );
            }
        });
        let mut verified = 0;
        cost.open_ns += timed(|| {
            for r in &requests {
                let d = Binding::decode(r).expect("well formed");
                verified += usize::from(d.verify(&token));
            }
        });
        assert_eq!(verified, CHUNK_BINDINGS);
        cost.packets += CHUNK_BINDINGS as u64;
    }
    cost
}

/// `ring`'s HMAC-SHA256 alone over the bytes a request's integrity covers (52), key made once.
fn raw_hmac(budget: Duration) -> Cost {
    let key = hmac::Key::new(hmac::HMAC_SHA256, &[0x6d; 16]);
    let covered = [0x17u8; 52];
    let mut tags = vec![hmac::sign(&key, &covered); CHUNK_BINDINGS];
    let mut cost = Cost::default();
    let start = Instant::now();
    while cost.packets == 0 || start.elapsed() < budget {
        cost.seal_ns += timed(|| {
            for t in tags.iter_mut() {
                *t = hmac::sign(&key, &covered);
            }
        });
        let mut verified = 0;
        cost.open_ns += timed(|| {
            for t in &tags {
                verified += usize::from(hmac::verify(&key, &covered, t.as_ref()).is_ok());
            }
        });
        assert_eq!(verified, CHUNK_BINDINGS);
        cost.packets += CHUNK_BINDINGS as u64;
    }
    cost
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Per-round (seal, open) nanoseconds per operation of the system and its baseline.
struct Rounds {
    system: Vec<(f64, f64)>,
    baseline: Vec<(f64, f64)>,
}

impl Rounds {
    fn rows(
        &self,
        case: String,
        verbs: (&'static str, &'static str),
        unit: (&'static str, &'static str),
        baseline_name: &'static str,
    ) -> Vec<Row> {
        let med = |v: &[(f64, f64)], open: bool| {
            median(v.iter().map(|c| if open { c.1 } else { c.0 }).collect())
        };
        let mut rows = Vec::new();
        for (open, verb) in [(false, verbs.0), (true, verbs.1)] {
            let (m, b) = (med(&self.system, open), med(&self.baseline, open));
            rows.push(Row {
                bench: "crypto",
                case: case.clone(),
                figure: verb,
                unit: unit.0,
                measured: Some(m),
                baseline: Some(b),
                baseline_name,
                second: None,
            });
            rows.push(Row {
                bench: "crypto",
                case: case.clone(),
                figure: if open {
                    "open rate per core"
                } else {
                    "seal rate per core"
                },
                unit: unit.1,
                measured: Some(1e9 / m),
                baseline: Some(1e9 / b),
                baseline_name,
                second: None,
            });
        }
        rows
    }
}

/// `seconds` of wall time per case, split over the rounds and between the system and its
/// baseline, which alternate (baseline first in even rounds, second in odd ones).
pub fn run(seconds: f64, rounds: usize) -> Vec<Row> {
    let each = Duration::from_secs_f64(seconds / rounds as f64 / 2.0);
    media_crypto(CASES[0].1, WARMUP);
    raw_aead(CASES[0].1, WARMUP);
    let mut rows = Vec::new();
    for (name, bytes) in CASES {
        eprintln!("crypto: {name}, {bytes}-byte payload, {rounds} rounds");
        let mut r = Rounds {
            system: vec![],
            baseline: vec![],
        };
        for i in 0..rounds {
            let (s, b) = if i % 2 == 0 {
                let b = raw_aead(bytes, each);
                (media_crypto(bytes, each), b)
            } else {
                let s = media_crypto(bytes, each);
                (s, raw_aead(bytes, each))
            };
            r.system.push(s.per_packet());
            r.baseline.push(b.per_packet());
        }
        rows.extend(r.rows(
            format!("{name}, {bytes}-byte RTP payload: MediaCrypto seal/open"),
            ("seal cost", "open cost"),
            ("CPU ns/packet", "packets/CPU-s"),
            "ring AES-256-GCM in place, same payload, fixed key",
        ));
    }
    eprintln!("crypto: binding request sign and verify, {rounds} rounds");
    let mut r = Rounds {
        system: vec![],
        baseline: vec![],
    };
    for i in 0..rounds {
        let (s, b) = if i % 2 == 0 {
            let b = raw_hmac(each);
            (binding(each), b)
        } else {
            let s = binding(each);
            (s, raw_hmac(each))
        };
        r.system.push(s.per_packet());
        r.baseline.push(b.per_packet());
    }
    let mut binding_rows = r.rows(
        "binding request: client signs (binding id, encode, HMAC), MMR verifies (decode, HMAC)"
            .into(),
        ("sign cost", "verify cost"),
        ("CPU ns/request", "requests/CPU-s"),
        "ring HMAC-SHA256 over 52 bytes, key made once",
    );
    for row in &mut binding_rows {
        row.figure = match row.figure {
            "seal rate per core" => "sign rate per core",
            "open rate per core" => "verify rate per core",
            f => f,
        };
    }
    rows.extend(binding_rows);
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_runs_and_costs_something() {
        for c in [
            media_crypto(160, Duration::ZERO),
            raw_aead(160, Duration::ZERO),
            binding(Duration::ZERO),
            raw_hmac(Duration::ZERO),
        ] {
            assert!(c.packets > 0 && c.seal_ns > 0 && c.open_ns > 0, "{c:?}");
        }
        let rows = run(0.01, 2);
        assert_eq!(rows.len(), 12);
        assert!(rows.iter().all(|r| r.ratio().is_some_and(f64::is_finite)));
    }

    #[test]
    fn the_median_is_the_middle() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
