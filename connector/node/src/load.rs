//! The load generator: many real participants — meetings × participants, started at a paced
//! arrival rate, each staying for a set time and sending RTP at a set rate — and one report of
//! what happened: join latency percentiles, admissions and rejections by reason, media paths and
//! signalling ports in use, and per-stream media counts (every receiver × source pair).
//!
//! Each participant is an ordinary [`client::run`], so the load exercises exactly what a real
//! client does. Everything goes through the runtime seam (`mc_rt` spawning, sleeping and
//! `Instant`), so the same code drives a real deployment from `connector load` and a simulated one
//! under madsim, where one seed fixes every participant's choices.
//!
//! Contract of [`run`]: the spec is validated and the meetings are created first (either failing
//! is an error: the load did not run). From then on nothing is an error — a rejection or a failed
//! participant is data in the [`LoadReport`]. `progress` is called about once per second and once
//! more at the end; `stop` resolving asks every participant to leave and starts no new ones, and the
//! report then covers the participants that had started.

use crate::client::{self, ClientError, ClientReport, ManagementApi};
use crate::config::{ClientConfig, ConfigError};
use crate::events::LoadEvent;
use crate::EventLog;
use hdrhistogram::Histogram;
use mc_core::load::{Due, Pacer};
use mc_core::Rng;
use mc_wire::signal::RejectReason;
use mc_wire::MeetingId;
use rustls::pki_types::CertificateDer;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use thiserror::Error;

/// At most this many participants in one load run (each holds sockets and a task).
pub const MAX_PARTICIPANTS: u64 = 10_000;
/// Arrivals faster than this are not paced meaningfully by a millisecond timer.
pub const MAX_ARRIVALS_PER_S: f64 = 1_000.0;
/// The longest a participant may be asked to stay (a day).
pub const MAX_DURATION_MS: u64 = 24 * 60 * 60 * 1000;
/// How often `progress` is called.
pub const PROGRESS_INTERVAL_MS: u64 = 1_000;

/// What load to generate. Participants arrive round-robin over the meetings (the first of each
/// meeting, then the second of each, …), `1 / arrivals_per_s` apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoadSpec {
    /// Meetings created for the run.
    pub meetings: u32,
    pub participants_per_meeting: u32,
    /// Participants of each meeting that send media; the others listen (muted), as most of a
    /// large meeting does. Speakers are spread evenly over each meeting's arrival order (the
    /// first to arrive always speaks). `None`: everyone speaks.
    pub speakers_per_meeting: Option<u32>,
    /// Joins started per second, paced evenly.
    pub arrivals_per_s: f64,
    /// How long each admitted participant stays in its meeting.
    pub duration_ms: u64,
    /// RTP packets each participant sends per second (real audio is 50).
    pub media_packets_per_s: u32,
    pub payload_bytes: usize,
    /// Derives every participant's seed, so a run's random choices repeat from it.
    pub seed: u64,
    /// Meeting topics and display names start with this (`load-m7-p2`: the second participant of
    /// meeting m7).
    pub name_prefix: String,
}

impl Default for LoadSpec {
    fn default() -> Self {
        LoadSpec {
            meetings: 2,
            participants_per_meeting: 3,
            speakers_per_meeting: None,
            arrivals_per_s: 10.0,
            duration_ms: 10_000,
            media_packets_per_s: 50,
            payload_bytes: 160,
            seed: 1,
            name_prefix: "load".into(),
        }
    }
}

fn invalid(field: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError {
        field,
        reason: reason.into(),
    }
}

impl LoadSpec {
    pub fn participants(&self) -> u64 {
        self.meetings as u64 * self.participants_per_meeting as u64
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.meetings == 0 {
            return Err(invalid("meetings", "must be at least 1"));
        }
        if self.participants_per_meeting == 0 {
            return Err(invalid("participants_per_meeting", "must be at least 1"));
        }
        if self.participants() > MAX_PARTICIPANTS {
            return Err(invalid(
                "participants_per_meeting",
                format!(
                    "meetings × participants_per_meeting is {}; at most {MAX_PARTICIPANTS}",
                    self.participants()
                ),
            ));
        }
        if let Some(n) = self.speakers_per_meeting {
            if !(1..=self.participants_per_meeting).contains(&n) {
                return Err(invalid(
                    "speakers_per_meeting",
                    format!(
                        "must be 1 to participants_per_meeting ({})",
                        self.participants_per_meeting
                    ),
                ));
            }
        }
        if !(self.arrivals_per_s > 0.0 && self.arrivals_per_s <= MAX_ARRIVALS_PER_S) {
            return Err(invalid(
                "arrivals_per_s",
                format!("must be more than 0 and at most {MAX_ARRIVALS_PER_S}"),
            ));
        }
        if !(1..=MAX_DURATION_MS).contains(&self.duration_ms) {
            return Err(invalid(
                "duration_ms",
                format!("must be 1 to {MAX_DURATION_MS} (a load participant always leaves)"),
            ));
        }
        if !(1..=1000).contains(&self.media_packets_per_s) {
            return Err(invalid("media_packets_per_s", "must be 1 to 1000"));
        }
        if !(1..=1200).contains(&self.payload_bytes) {
            return Err(invalid(
                "payload_bytes",
                "must be 1 to 1200 (one MTU-sized RTP packet)",
            ));
        }
        let p = &self.name_prefix;
        if p.is_empty()
            || p.len() > 40
            || !p
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(invalid(
                "name_prefix",
                format!("{p:?} must be 1 to 40 letters, digits, '-' or '_'"),
            ));
        }
        Ok(())
    }

    /// The participant started `index`-th: which meeting (0-based, in creation order) and its
    /// number within that meeting (1-based).
    fn slot(&self, index: u64) -> (usize, u64) {
        (
            (index % self.meetings as u64) as usize,
            index / self.meetings as u64 + 1,
        )
    }

    /// Whether the `nth` participant (1-based) of a meeting sends media: the speakers are the
    /// participants `1 + ⌊k·P/S⌋` for k in 0..S (P participants, S speakers).
    fn speaks(&self, nth: u64) -> bool {
        let Some(speakers) = self.speakers_per_meeting else {
            return true;
        };
        let (p, s, i) = (
            self.participants_per_meeting as u64,
            speakers as u64,
            nth - 1,
        );
        // The smallest k whose speaker index is at least i; i speaks if that index is i.
        let k = (i * s).div_ceil(p);
        k < s && k * p / s == i
    }
}

#[derive(Debug, Error)]
pub enum LoadError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("creating meeting {n} of {of} through cloud management: {detail}")]
    CreateMeeting { n: u32, of: u32, detail: String },
}

/// Where the run is; `progress` receives one about once per second.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LoadProgress {
    pub elapsed_ms: u64,
    /// Participants the spec asks for.
    pub planned: u64,
    /// Joins started so far.
    pub started: u64,
    /// Started and not yet finished: joining, or in the meeting.
    pub active: u64,
    /// Admitted participants in their meeting now.
    pub joined: u64,
    /// Admitted participants that have left their meeting.
    pub left: u64,
    pub rejected: u64,
    pub failed: u64,
    /// RTP packets sent and received so far by every participant.
    pub packets_sent: u64,
    pub packets_received: u64,
}

impl LoadProgress {
    fn observe(&mut self, probes: &[std::sync::Arc<client::ClientProbe>]) {
        use std::sync::atomic::Ordering::Relaxed;
        self.joined = (probes.iter().filter(|p| p.joined.load(Relaxed)).count() as u64)
            .saturating_sub(self.left);
        self.packets_sent = probes.iter().map(|p| p.sent.load(Relaxed)).sum();
        self.packets_received = probes.iter().map(|p| p.received.load(Relaxed)).sum();
    }
}

/// How one participant's run ended.
#[derive(Debug)]
enum Outcome {
    Admitted(Box<ClientReport>),
    Rejected {
        reason: RejectReason,
        message: String,
    },
    Failed {
        kind: &'static str,
        message: String,
    },
}

impl Outcome {
    fn of(result: Result<ClientReport, ClientError>) -> Outcome {
        match result {
            Ok(report) => Outcome::Admitted(Box::new(report)),
            Err(
                ClientError::Rejected {
                    reason, message, ..
                }
                | ClientError::PassRefused { reason, message },
            ) => Outcome::Rejected { reason, message },
            Err(e) => {
                let kind = match &e {
                    ClientError::Config(_) | ClientError::Bridge { .. } => "config",
                    ClientError::Ticket(_) => "ticket",
                    ClientError::TicketRefused(_) => "ticket_refused",
                    ClientError::Signalling(_) => "signalling",
                    ClientError::ZcMisbehaved(_) => "zc_protocol",
                    ClientError::Media(_) => "media",
                    ClientError::Rejected { .. } | ClientError::PassRefused { .. } => {
                        unreachable!("matched above")
                    }
                };
                Outcome::Failed {
                    kind,
                    message: e.to_string(),
                }
            }
        }
    }
}

/// One participant of the run, as planned, and how it ended.
#[derive(Debug)]
struct Participant {
    meeting: usize,
    name: String,
    outcome: Outcome,
}

/// Runs the load described by `spec` against the deployment `base` points at (cloud host, port
/// and API key; timeouts) and reports what happened. See the module doc for the contract.
pub async fn run(
    spec: LoadSpec,
    base: ClientConfig,
    ca: CertificateDer<'static>,
    events: EventLog,
    stop: impl std::future::Future<Output = ()>,
    mut progress: impl FnMut(&LoadProgress),
) -> Result<LoadReport, LoadError> {
    spec.validate()?;
    // The participants' own configuration must be valid too; check it once, before any meeting exists.
    participant_config(&spec, &base, 1, "check".into(), 0, true).validate()?;
    let started_unix_ms = mc_rt::unix_now_ms();
    events.record(LoadEvent::Planned {
        meetings: spec.meetings,
        participants_per_meeting: spec.participants_per_meeting,
        arrivals_per_s: spec.arrivals_per_s.to_string(),
        duration_ms: spec.duration_ms,
        packets_per_s: spec.media_packets_per_s,
        seed: spec.seed,
    });

    let api = ManagementApi {
        host: base.cloud_host.clone(),
        port: base.cloud_https_port,
        api_key: base.api_key.clone(),
        ca: ca.clone(),
        timeout_ms: base.connect_timeout_ms,
    };
    let mut meetings = Vec::with_capacity(spec.meetings as usize);
    for n in 1..=spec.meetings {
        let topic = format!("{}-{n}", spec.name_prefix);
        let id = api
            .create_meeting(&topic)
            .await
            .map_err(|detail| LoadError::CreateMeeting {
                n,
                of: spec.meetings,
                detail,
            })?;
        meetings.push(id);
    }
    events.record(LoadEvent::MeetingsCreated(meetings.clone()));

    // Every participant's task ends by sending its outcome here: at most `planned` messages.
    let (done_tx, mut done_rx) = mc_rt::sync::mpsc::unbounded_channel::<(u64, Outcome)>();
    // Tells participants in their meeting to leave (when `stop` resolves).
    let (leave_tx, leave_rx) = mc_rt::sync::watch::channel(false);
    let mut rng = Rng::seed_from_u64(spec.seed);
    let planned = spec.participants();
    let mut slots: Vec<(usize, String)> = Vec::with_capacity(planned as usize);
    let mut probes: Vec<std::sync::Arc<client::ClientProbe>> = Vec::with_capacity(planned as usize);
    let mut outcomes: BTreeMap<u64, Outcome> = BTreeMap::new();
    let mut live = LoadProgress {
        planned,
        ..LoadProgress::default()
    };
    let mut stopping = false;
    let mut stop = std::pin::pin!(stop);
    let mut pacer = Pacer::new(
        started_unix_ms,
        spec.arrivals_per_s,
        planned,
        PROGRESS_INTERVAL_MS,
    );
    pacer.begin_arrivals(mc_rt::unix_now_ms());

    loop {
        if pacer.arrivals_done() && outcomes.len() as u64 == pacer.started() {
            break;
        }
        mc_rt::select! {
            biased;
            Some((index, outcome)) = done_rx.recv() => {
                match &outcome {
                    Outcome::Admitted(_) => live.left += 1,
                    Outcome::Rejected { .. } => live.rejected += 1,
                    Outcome::Failed { .. } => live.failed += 1,
                }
                outcomes.insert(index, outcome);
            }
            _ = &mut stop, if !stopping => {
                stopping = true;
                pacer.stop();
                let _ = leave_tx.send(true);
                events.record(LoadEvent::Stopping { started: live.started, planned });
            }
            () = crate::dial::sleep_until_ms(Some(pacer.poll_timeout())) => {
                while let Some(due) = pacer.poll(mc_rt::unix_now_ms()) {
                    let index = match due {
                        Due::Progress { elapsed_ms } => {
                            live.elapsed_ms = elapsed_ms;
                            live.active = live.started - outcomes.len() as u64;
                            live.observe(&probes);
                            progress(&live);
                            continue;
                        }
                        Due::Start(index) => index,
                    };
                    let (meeting, nth) = spec.slot(index);
                    let name = format!("{}-{}-p{nth}", spec.name_prefix, meetings[meeting]);
                    let config = participant_config(&spec, &base, meetings[meeting].0, name.clone(), rng.next_u64(), spec.speaks(nth));
                    slots.push((meeting, name.clone()));
                    let probe = std::sync::Arc::new(client::ClientProbe::default());
                    probes.push(probe.clone());
                    live.started = pacer.started();
                    let (ca, log, done, mut leave) = (ca.clone(), events.for_node(&name), done_tx.clone(), leave_rx.clone());
                    mc_rt::spawn(async move {
                        let leave = async move {
                            let _ = leave.wait_for(|stop| *stop).await;
                        };
                        // The inner task turns a panicking participant into a failure instead of a
                        // missing outcome (which would keep the run waiting for it).
                        let outcome = match mc_rt::spawn(async move { client::run_observed(config, ca, log, leave, &probe).await }).await {
                            Ok(result) => Outcome::of(result),
                            Err(e) => Outcome::Failed { kind: "panicked", message: e.to_string() },
                        };
                        let _ = done.send((index, outcome));
                    });
                }
            }
        }
    }
    live.elapsed_ms = pacer.elapsed_ms(mc_rt::unix_now_ms());
    live.active = 0;
    live.observe(&probes);
    progress(&live);

    let participants = slots
        .into_iter()
        .enumerate()
        .map(|(i, (meeting, name))| Participant {
            meeting,
            name,
            outcome: outcomes
                .remove(&(i as u64))
                .expect("every started participant reported"),
        })
        .collect();
    let report = summarize(
        &spec,
        &meetings,
        participants,
        stopping,
        started_unix_ms,
        live.elapsed_ms,
    );
    events.record(LoadEvent::Done {
        wall_ms: report.wall_ms,
        admitted: report.joins.admitted,
        attempted: report.joins.attempted,
        rejected: report.joins.rejected,
        failed: report.joins.failed,
        sent: report.media.sent,
        received: report.media.received,
        lost: report.media.lost,
    });
    Ok(report)
}

fn participant_config(
    spec: &LoadSpec,
    base: &ClientConfig,
    meeting: u64,
    display_name: String,
    seed: u64,
    speaks: bool,
) -> ClientConfig {
    ClientConfig {
        display_name,
        meeting,
        muted: base.muted || !speaks,
        media_packets_per_s: spec.media_packets_per_s,
        payload_bytes: spec.payload_bytes,
        duration_ms: spec.duration_ms,
        seed: Some(seed),
        ..base.clone()
    }
}

/// What a load run did. Every map is ordered, so two reports of one run print alike.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadReport {
    pub spec: LoadSpec,
    /// The meetings created for the run, in spec order (`m1` is the first).
    pub meetings: Vec<MeetingId>,
    pub started_unix_ms: u64,
    pub wall_ms: u64,
    /// `stop` resolved before the run ended: participants were asked to leave early and the
    /// ones not yet started never were.
    pub stopped_early: bool,
    pub joins: JoinCounts,
    /// Rejections by [`RejectReason::as_str`].
    pub rejections: BTreeMap<String, u64>,
    /// Participants that failed other than by rejection, by kind (`ticket`, `signalling`, `media`, …).
    pub failures: BTreeMap<String, u64>,
    /// The first message seen for each rejection reason and failure kind.
    pub examples: BTreeMap<String, String>,
    /// Join latency of admitted participants (ticket request to media bound); absent when none was.
    pub join_latency_ms: Option<Latency>,
    /// Admitted participants by the media path they used (`udp`, `tcp`, `tls`).
    pub media_paths: BTreeMap<String, u64>,
    /// Admitted participants by the signalling port that worked.
    pub signalling_ports: BTreeMap<u16, u64>,
    /// Admitted participants by the controller that admitted them.
    pub controllers: BTreeMap<String, u64>,
    /// Admitted participants whose session the ZC or the media path ended before their time was up.
    pub ended_early: u64,
    /// Automatic rejoins (after the ZC moved a meeting), summed over admitted participants.
    pub rejoins: u64,
    pub per_meeting: Vec<MeetingCounts>,
    pub media: MediaTotals,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JoinCounts {
    /// Participants the spec asked for.
    pub planned: u64,
    pub attempted: u64,
    pub admitted: u64,
    pub rejected: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Latency {
    pub count: u64,
    pub min: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub max: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeetingCounts {
    pub meeting: MeetingId,
    pub attempted: u64,
    pub admitted: u64,
    pub rejected: u64,
    pub failed: u64,
}

/// Media summed over every stream, plus each stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MediaTotals {
    /// RTP packets sent by admitted participants.
    pub sent: u64,
    /// RTP packets received by admitted participants, from anyone.
    pub received: u64,
    /// Packets the receivers' sequence numbers say went missing, summed over streams.
    pub lost: u64,
    /// `lost` as a percentage of `received + lost` on the streams (0 when nothing was expected).
    pub loss_percent: f64,
    /// Streams (from a participant that sent media to another admitted participant of its
    /// meeting) on which nothing arrived.
    pub silent_streams: u64,
    /// Packets from a source that is not an admitted peer in the receiver's meeting. The MMR must
    /// never forward across meetings, so anything here is a bug.
    pub foreign_packets: u64,
    /// Packets that did not parse as RTP.
    pub malformed: u64,
    /// Each stream's longest silence (time between two of its packets that arrived), over the
    /// streams that delivered at least two packets: how long a failover or a loss burst kept
    /// receivers from hearing a source.
    pub longest_gap_ms: Option<Latency>,
    /// One entry per receiver × source pair of admitted participants in the same meeting.
    pub streams: Vec<StreamCounts>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamCounts {
    pub meeting: MeetingId,
    pub receiver: String,
    pub source: String,
    /// Everything the source sent while it was in the meeting (the receiver may have been there
    /// for only part of that time).
    pub source_sent: u64,
    pub received: u64,
    pub lost: u64,
    pub loss_percent: f64,
    /// The longest time between two packets of the stream that arrived.
    pub longest_gap_ms: u64,
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        // Two decimals are all a report needs, and they keep JSON output short.
        (part as f64 * 10_000.0 / whole as f64).round() / 100.0
    }
}

fn latency(join_ms: impl Iterator<Item = u64>) -> Option<Latency> {
    // Three significant digits up to an hour: enough for any join that finished.
    let mut h = Histogram::<u64>::new_with_bounds(1, 3_600_000, 3).expect("valid histogram bounds");
    for ms in join_ms {
        h.saturating_record(ms);
    }
    (!h.is_empty()).then(|| Latency {
        count: h.len(),
        min: h.min(),
        p50: h.value_at_quantile(0.50),
        p90: h.value_at_quantile(0.90),
        p99: h.value_at_quantile(0.99),
        max: h.max(),
    })
}

fn summarize(
    spec: &LoadSpec,
    meetings: &[MeetingId],
    participants: Vec<Participant>,
    stopped_early: bool,
    started_unix_ms: u64,
    wall_ms: u64,
) -> LoadReport {
    let mut joins = JoinCounts {
        planned: spec.participants(),
        attempted: participants.len() as u64,
        ..JoinCounts::default()
    };
    let mut per_meeting: Vec<MeetingCounts> = meetings
        .iter()
        .map(|&meeting| MeetingCounts {
            meeting,
            attempted: 0,
            admitted: 0,
            rejected: 0,
            failed: 0,
        })
        .collect();
    let (mut rejections, mut failures, mut examples) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let (mut media_paths, mut signalling_ports, mut controllers) =
        (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
    let (mut ended_early, mut rejoins) = (0, 0);
    // Admitted participants by meeting, in arrival order.
    let mut admitted: Vec<Vec<(&str, &ClientReport)>> = vec![Vec::new(); meetings.len()];
    for p in &participants {
        let m = &mut per_meeting[p.meeting];
        m.attempted += 1;
        match &p.outcome {
            Outcome::Admitted(r) => {
                joins.admitted += 1;
                m.admitted += 1;
                *media_paths.entry(r.media_path.to_string()).or_insert(0) += 1;
                *signalling_ports.entry(r.signalling_port).or_insert(0) += 1;
                *controllers.entry(r.controller.clone()).or_insert(0) += 1;
                ended_early += u64::from(r.ended_by_zc.is_some());
                rejoins += u64::from(r.rejoins);
                admitted[p.meeting].push((&p.name, r));
            }
            Outcome::Rejected { reason, message } => {
                joins.rejected += 1;
                m.rejected += 1;
                *rejections.entry(reason.as_str().to_string()).or_insert(0) += 1;
                examples
                    .entry(reason.as_str().to_string())
                    .or_insert_with(|| message.clone());
            }
            Outcome::Failed { kind, message } => {
                joins.failed += 1;
                m.failed += 1;
                *failures.entry(kind.to_string()).or_insert(0) += 1;
                examples
                    .entry(kind.to_string())
                    .or_insert_with(|| message.clone());
            }
        }
    }

    let mut media = MediaTotals::default();
    for (m, members) in admitted.iter().enumerate() {
        for (receiver, rx) in members {
            media.sent += rx.sent;
            media.received += rx.received;
            media.malformed += rx.malformed;
            let mut from_peers = 0;
            // A listener (muted) is no source: there is no stream from it.
            for (source, tx) in members
                .iter()
                .filter(|(_, tx)| tx.ssrc != rx.ssrc && tx.sent > 0)
            {
                let s = rx.by_source.get(&tx.ssrc).cloned().unwrap_or_default();
                from_peers += s.received;
                media.lost += s.lost;
                media.silent_streams += u64::from(s.received == 0);
                media.streams.push(StreamCounts {
                    meeting: meetings[m],
                    receiver: receiver.to_string(),
                    source: source.to_string(),
                    source_sent: tx.sent,
                    received: s.received,
                    lost: s.lost,
                    loss_percent: percent(s.lost, s.received + s.lost),
                    longest_gap_ms: s.longest_gap_ms,
                });
            }
            media.foreign_packets += rx.received - from_peers;
        }
    }
    let on_streams: u64 = media.streams.iter().map(|s| s.received).sum();
    media.loss_percent = percent(media.lost, on_streams + media.lost);
    media.longest_gap_ms = latency(
        media
            .streams
            .iter()
            .filter(|s| s.received > 1)
            .map(|s| s.longest_gap_ms),
    );

    LoadReport {
        spec: spec.clone(),
        meetings: meetings.to_vec(),
        started_unix_ms,
        wall_ms,
        stopped_early,
        joins,
        rejections,
        failures,
        examples,
        join_latency_ms: latency(admitted.iter().flatten().map(|(_, r)| r.join_ms)),
        media_paths,
        signalling_ports,
        controllers,
        ended_early,
        rejoins,
        per_meeting,
        media,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::MediaPath;
    use mc_core::client::SourceStats;
    use mc_wire::ParticipantId;

    fn admitted(
        meeting: u64,
        n: u64,
        ssrc: u32,
        join_ms: u64,
        sent: u64,
        heard: &[(u32, u64, u64)],
    ) -> Outcome {
        let by_source: BTreeMap<u32, SourceStats> = heard
            .iter()
            .map(|&(ssrc, received, lost)| {
                let mut s = SourceStats::default();
                s.received = received;
                s.lost = lost;
                (ssrc, s)
            })
            .collect();
        Outcome::Admitted(Box::new(ClientReport {
            display_name: format!("p{n}"),
            meeting: MeetingId(meeting),
            participant: ParticipantId(n),
            controller: "controller-1".into(),
            signalling_port: 8802,
            media_path: if n == 2 {
                MediaPath::Tcp
            } else {
                MediaPath::Udp
            },
            join_ms,
            rejoins: 0,
            ssrc,
            sent,
            received: by_source.values().map(|s| s.received).sum(),
            by_source,
            malformed: 0,
            unopened: Default::default(),
            ended_by_zc: None,
            rejoin_refused: None,
        }))
    }

    #[test]
    fn the_spec_names_the_field_it_rejects_and_slots_go_round_robin() {
        assert!(LoadSpec::default().validate().is_ok());
        let bad = |s: LoadSpec| s.validate().unwrap_err().field;
        assert_eq!(
            bad(LoadSpec {
                meetings: 0,
                ..LoadSpec::default()
            }),
            "meetings"
        );
        assert_eq!(
            bad(LoadSpec {
                arrivals_per_s: f64::NAN,
                ..LoadSpec::default()
            }),
            "arrivals_per_s"
        );
        assert_eq!(
            bad(LoadSpec {
                duration_ms: 0,
                ..LoadSpec::default()
            }),
            "duration_ms"
        );
        assert_eq!(
            bad(LoadSpec {
                meetings: 200,
                participants_per_meeting: 100,
                ..LoadSpec::default()
            }),
            "participants_per_meeting"
        );
        assert_eq!(
            bad(LoadSpec {
                name_prefix: "a b".into(),
                ..LoadSpec::default()
            }),
            "name_prefix"
        );
        let spec = LoadSpec {
            arrivals_per_s: 4.0,
            ..LoadSpec::default()
        };
        let slots: Vec<_> = (0..5).map(|i| spec.slot(i)).collect();
        let speakers = |participants, speakers| {
            let spec = LoadSpec {
                participants_per_meeting: participants,
                speakers_per_meeting: speakers,
                ..LoadSpec::default()
            };
            (1..=participants as u64)
                .filter(|&n| spec.speaks(n))
                .collect::<Vec<_>>()
        };
        assert_eq!(speakers(500, Some(6)), [1, 84, 167, 251, 334, 417]);
        assert_eq!(speakers(3, Some(3)), [1, 2, 3]);
        assert_eq!(speakers(3, None), [1, 2, 3]);
        assert_eq!(speakers(10, Some(1)), [1]);
        assert_eq!(
            bad(LoadSpec {
                speakers_per_meeting: Some(4),
                ..LoadSpec::default()
            }),
            "speakers_per_meeting"
        );
        assert_eq!(slots, [(0, 1), (1, 1), (0, 2), (1, 2), (0, 3)]);
        let mut pacer = mc_core::load::Pacer::new(0, spec.arrivals_per_s, 5, 1_000);
        pacer.begin_arrivals(0);
        let starts: Vec<_> = std::iter::from_fn(|| pacer.poll(750)).collect();
        assert_eq!(starts.len(), 4, "the 4th starts at 750 ms: {starts:?}");
    }

    #[test]
    fn the_report_counts_streams_rejections_and_foreign_packets() {
        let spec = LoadSpec {
            meetings: 2,
            participants_per_meeting: 3,
            ..LoadSpec::default()
        };
        let meetings = [MeetingId(10), MeetingId(11)];
        let p = |meeting, name: &str, outcome| Participant {
            meeting,
            name: name.into(),
            outcome,
        };
        let participants = vec![
            // Meeting 10: p1 and p2 hear each other; p2 also heard 99, who is in no meeting of ours.
            p(0, "p1", admitted(10, 1, 100, 30, 500, &[(200, 490, 10)])),
            p(1, "p3", admitted(11, 3, 300, 50, 500, &[])),
            p(
                0,
                "p2",
                admitted(10, 2, 200, 40, 495, &[(100, 500, 0), (99, 7, 0)]),
            ),
            p(
                1,
                "p4",
                Outcome::Rejected {
                    reason: RejectReason::MeetingFull,
                    message: "meeting 11 is full".into(),
                },
            ),
            p(
                0,
                "p5",
                Outcome::Rejected {
                    reason: RejectReason::MeetingFull,
                    message: "later".into(),
                },
            ),
            p(
                1,
                "p6",
                Outcome::Failed {
                    kind: "signalling",
                    message: "no controller".into(),
                },
            ),
        ];
        let r = summarize(&spec, &meetings, participants, false, 0, 1234);
        assert_eq!(
            r.joins,
            JoinCounts {
                planned: 6,
                attempted: 6,
                admitted: 3,
                rejected: 2,
                failed: 1
            }
        );
        assert_eq!(
            r.rejections,
            BTreeMap::from([("meeting_full".to_string(), 2)])
        );
        assert_eq!(r.failures, BTreeMap::from([("signalling".to_string(), 1)]));
        assert_eq!(r.examples["meeting_full"], "meeting 11 is full");
        assert_eq!(
            r.join_latency_ms,
            Some(Latency {
                count: 3,
                min: 30,
                p50: 40,
                p90: 50,
                p99: 50,
                max: 50
            })
        );
        assert_eq!(
            r.media_paths,
            BTreeMap::from([("tcp".to_string(), 1), ("udp".to_string(), 2)])
        );
        assert_eq!(
            r.per_meeting[0],
            MeetingCounts {
                meeting: MeetingId(10),
                attempted: 3,
                admitted: 2,
                rejected: 1,
                failed: 0
            }
        );
        let streams: Vec<_> = r
            .media
            .streams
            .iter()
            .map(|s| (s.receiver.as_str(), s.source.as_str(), s.received, s.lost))
            .collect();
        assert_eq!(streams, [("p1", "p2", 490, 10), ("p2", "p1", 500, 0)]);
        assert_eq!(
            (
                r.media.sent,
                r.media.received,
                r.media.lost,
                r.media.foreign_packets
            ),
            (1495, 997, 10, 7)
        );
        assert_eq!(r.media.loss_percent, 1.0);
        assert_eq!(r.media.silent_streams, 0);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["signalling_ports"]["8802"], 3);
    }
}
