//! A participant's session as one sans-IO machine: joining with retries and redirects, keeping
//! the media path and the signalling alive, falling back from UDP to a stream and climbing back, and rejoining
//! when the zone moves the meeting. Every timed decision of a client is here (DESIGN §6).
//!
//! # Contract
//!
//! The shell (one task per participant) owns one [`Session`]:
//!
//! 1. feeds what happened, in order, with [`Session::handle`];
//! 2. after each call takes [`Session::poll_output`] until `None` and carries each output out in
//!    order (a join attempt, a fallback and a UDP probe run in the background and come back as
//!    inputs; at most one of each is asked for at a time);
//! 3. calls [`Session::handle_timeout`] once [`Session::poll_timeout`] has come (read it afresh
//!    after every call).
//!
//! `now_ms` is the shell's clock in milliseconds (simulated under madsim) and never goes back.
//! Every call first runs what fell due by `now_ms`. After [`Output::Finished`] the session takes
//! no more inputs and asks for nothing.

use super::media::MediaPath;
use crate::fallback::{Backoff, Ladder};
use mc_wire::signal::{RejectReason, ZcToClient};
use std::collections::VecDeque;
use std::fmt;

/// How a client retries a join and a rejoin: soon, and a little later each time, but never more
/// than 3 s apart. A failover settles within seconds (the survivor takes over once the lease
/// runs out), so waits that double would land the participant back long after it could have.
pub const RETRY: Backoff = Backoff::linear(500, 3_000);
/// Most automatic rejoins one run makes (after an MMR or controller failure).
pub const MAX_REJOINS: u32 = 20;
/// How long one rejoin keeps trying (the cloud may be briefly unreachable, too).
pub const REJOIN_DEADLINE_MS: u64 = 60_000;
/// How long a first join keeps trying through passing failures — the zone in flux (a failover,
/// a drain) or the cloud unreachable — before it fails: about as long as a person waits on
/// "connecting…" before giving up.
pub const JOIN_DEADLINE_MS: u64 = 120_000;
/// Redirects one join attempt follows (to the other controller of a pair, which hosts the
/// meeting); one more and the attempt counts as failed, to be retried with backoff.
pub const MAX_REDIRECTS: u32 = 2;
/// The longest wait a controller's `retry_after_ms` can impose on one attempt.
pub const MAX_RETRY_AFTER_MS: u64 = 10_000;
/// Unanswered signalling pings before the controller counts as gone.
const SIGNAL_MISSES: u64 = 3;

/// The timing a participant runs with (from its configuration).
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Between generated RTP packets; `None` sends none (muted, or media comes from a bridge).
    pub packet_interval_ms: Option<u64>,
    /// How long to stay after the first join; 0 stays until stopped.
    pub duration_ms: u64,
    /// On UDP, how often to check the MMR still answers ...
    pub media_keepalive_ms: u64,
    /// ... and after how many unanswered checks the path counts as lost.
    pub media_keepalive_misses: u32,
    /// While media runs on a stream, how often to try UDP again.
    pub media_reprobe_ms: u64,
    /// How often to ping the controller.
    pub signal_keepalive_ms: u64,
}

/// Why a join attempt failed, by who is at fault; whether to try again follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinFailure {
    /// Our own configuration or machine is wrong: trying again changes nothing.
    Ours,
    /// The cloud could not be reached for a ticket; it may be back shortly.
    CloudUnreachable,
    /// The cloud refused a ticket (no such meeting, a bad key): for good.
    CloudRefused,
    /// No controller or MMR could be reached, or one said it is not ready or draining: the zone
    /// is failing over or draining, which settles within seconds.
    ZoneInFlux,
    /// A controller refused the join for good (capacity, a bad ticket).
    Refused(RejectReason),
    /// A controller broke the protocol.
    ZcMisbehaved,
}

impl JoinFailure {
    /// A rejection: in flux when the controller is only not ready or draining.
    pub fn rejected(reason: RejectReason) -> JoinFailure {
        match reason {
            RejectReason::NotReady | RejectReason::ControllerDraining => JoinFailure::ZoneInFlux,
            other => JoinFailure::Refused(other),
        }
    }

    /// Whether the failure passes by itself, so a join should try again.
    pub fn passing(self) -> bool {
        matches!(
            self,
            JoinFailure::CloudUnreachable | JoinFailure::ZoneInFlux
        )
    }
}

/// Why a session (not the run) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndReason {
    /// The controller ended it, in its words.
    ByZc(String),
    /// UDP went silent and no stream path to the MMR worked either.
    MmrUnreachable,
    /// Sending or receiving media failed on our side.
    MediaFailed,
    /// The controller answered no ping for three intervals.
    ControllerSilent,
    /// The signalling connection closed or broke without an `ended`.
    SignallingLost,
    /// The controller sent something it must not.
    ZcMisbehaved,
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndReason::ByZc(r) => f.write_str(r),
            EndReason::MmrUnreachable => f.write_str("the MMR stopped answering on every path"),
            EndReason::MediaFailed => f.write_str("the media path failed"),
            EndReason::ControllerSilent => f.write_str("the controller stopped answering"),
            EndReason::SignallingLost => f.write_str("the signalling connection was lost"),
            EndReason::ZcMisbehaved => f.write_str("the controller sent an unexpected message"),
        }
    }
}

/// Everything that happens to a session, besides time passing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A controller admitted the participant: its media is to be bound next.
    Admitted,
    /// The join attempt failed before admission.
    JoinFailed(JoinFailure),
    /// The join attempt failed, and the controller said when trying again will work (a meeting
    /// that moves to it once its dead host's lease has run out): the next attempt is then, not
    /// on the client's own backoff (at most [`MAX_RETRY_AFTER_MS`] away).
    JoinDeferred {
        failure: JoinFailure,
        retry_after_ms: u64,
    },
    /// The controller tried says another hosts the meeting (the ticket was not used).
    Redirected,
    /// Any packet from the MMR on the current path (media, or the answer to a keepalive).
    MediaHeard,
    /// Sending or receiving on the current media path failed.
    MediaBroken,
    /// The binding asked for ([`Output::Bind`]) worked: media runs on `path` from now on.
    Bound { path: MediaPath },
    /// The binding asked for on `path` failed.
    BindFailed { path: MediaPath },
    /// The background UDP probe bound (the shell moved media to it) or failed.
    Reprobed { bound: bool },
    /// A message from the controller.
    Signal(ZcToClient),
    /// The signalling connection closed or failed.
    SignalLost,
    /// The caller wants the participant to leave.
    Stop,
}

/// What the session asks its shell to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Make one join attempt (ticket, signalling, admission) in the background; answer with
    /// [`Input::Admitted`], [`Input::Redirected`] or [`Input::JoinFailed`].
    Join,
    /// Present the same ticket to the controller the last redirect named; answer as for
    /// [`Output::Join`].
    FollowRedirect,
    /// Send one generated RTP packet.
    SendMedia,
    /// Send a UDP consent check (a binding request the MMR answers).
    SendKeepalive,
    /// Ping the controller.
    Ping,
    /// Bind the admitted participant's media on `path` in the background (the best path first,
    /// DESIGN §3); answer with [`Input::Bound`] or [`Input::BindFailed`].
    Bind {
        path: MediaPath,
    },
    /// Probe UDP in the background; answer with [`Input::Reprobed`].
    ProbeUdp,
    /// Say `leave` on the signalling connection and drop the session's connections.
    Leave,
    Event(Event),
    /// The run is over; nothing more will be asked.
    Finished(Finish),
}

/// What a session did, for its event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// In again after `attempt` tries (`rejoin`: after the zone moved the meeting).
    Joined {
        rejoin: bool,
    },
    /// A join attempt failed and another follows in `retry_in_ms`.
    Retrying {
        attempt: u32,
        failure: JoinFailure,
        retry_in_ms: u64,
    },
    Rejoining {
        attempt: u32,
        reason: EndReason,
    },
    UdpLost,
    MediaMoved {
        from: MediaPath,
        to: MediaPath,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Joined { rejoin: false } => f.write_str("is in the meeting"),
            Event::Joined { rejoin: true } => f.write_str("is back in the meeting"),
            Event::Retrying {
                attempt,
                failure,
                retry_in_ms,
            } => write!(
                f,
                "join attempt {attempt} failed ({failure:?}); retrying in {retry_in_ms} ms"
            ),
            Event::Rejoining { attempt, reason } => {
                write!(f, "rejoining (attempt {attempt}): {reason}")
            }
            Event::UdpLost => f.write_str("lost its UDP media path; falling back"),
            Event::MediaMoved {
                from,
                to: MediaPath::Udp,
            } => write!(f, "moved media from {from} back to udp"),
            Event::MediaMoved { from, to } => write!(f, "moved media from {from} to {to}"),
        }
    }
}

/// How the run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finish {
    /// The first join failed for good, ran out of time, or was stopped: the last failure is the
    /// outcome.
    JoinFailed(JoinFailure),
    /// In the meeting until the end. `ended` says why the last session ended if the run did not
    /// end it; `rejoin_failed` why getting back in after that failed.
    Left {
        ended: Option<EndReason>,
        rejoin_failed: Option<JoinFailure>,
    },
}

#[derive(Debug)]
enum Phase {
    /// Before the first admission.
    Joining(Attempts),
    /// Admitted; media and signalling run.
    Connected(Live),
    /// Out of a session the zone ended, trying to get back in.
    Rejoining {
        attempts: Attempts,
        why: EndReason,
    },
    Finished,
}

#[derive(Debug)]
struct Attempts {
    made: u32,
    /// Redirects the attempt under way has followed.
    redirects: u32,
    /// Give up on passing failures after this.
    deadline_ms: u64,
    /// When the next attempt is due; `None` while one runs.
    next_at_ms: Option<u64>,
    /// Admitted, binding media down these paths.
    binding: Option<Ladder<MediaPath>>,
    last: Option<JoinFailure>,
}

impl Attempts {
    fn new(now_ms: u64, deadline_ms: u64) -> Attempts {
        Attempts {
            made: 0,
            redirects: 0,
            binding: None,
            deadline_ms,
            next_at_ms: Some(now_ms),
            last: None,
        }
    }
}

#[derive(Debug)]
struct Live {
    path: MediaPath,
    /// When the MMR, and the controller, were last heard.
    media_heard_ms: u64,
    signal_heard_ms: u64,
    next_send_ms: Option<u64>,
    next_keepalive_ms: u64,
    next_ping_ms: u64,
    next_reprobe_ms: u64,
    /// UDP went silent: binding down the stream paths.
    falling_back: Option<Ladder<MediaPath>>,
    probing: bool,
}

#[derive(Debug)]
pub struct Session {
    timing: Timing,
    phase: Phase,
    started_ms: u64,
    joined_after_ms: Option<u64>,
    /// When the run ends by itself (the configured duration after the first join).
    end_at_ms: Option<u64>,
    stop_requested: bool,
    rejoins: u32,
    out: VecDeque<Output>,
}

impl Session {
    /// A session that asks for its first join at once.
    pub fn new(now_ms: u64, timing: Timing) -> Session {
        let mut s = Session {
            timing,
            phase: Phase::Joining(Attempts::new(now_ms, now_ms + JOIN_DEADLINE_MS)),
            started_ms: now_ms,
            joined_after_ms: None,
            end_at_ms: None,
            stop_requested: false,
            rejoins: 0,
            out: VecDeque::new(),
        };
        s.handle_timeout(now_ms);
        s
    }

    /// Milliseconds from the start to the first admission.
    pub fn joined_after_ms(&self) -> Option<u64> {
        self.joined_after_ms
    }

    /// Rejoins begun, each after the zone ended a session (whether or not it got back in).
    pub fn rejoins(&self) -> u32 {
        self.rejoins
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    pub fn poll_timeout(&self) -> Option<u64> {
        let attempt_at = |a: &Attempts| a.next_at_ms;
        match &self.phase {
            Phase::Joining(a) => attempt_at(a),
            Phase::Rejoining { attempts, .. } => [attempt_at(attempts), self.end_at_ms]
                .into_iter()
                .flatten()
                .min(),
            Phase::Connected(l) => {
                let keepalive = (l.path == MediaPath::Udp && l.falling_back.is_none())
                    .then_some(l.next_keepalive_ms);
                let reprobe = (l.path != MediaPath::Udp && !l.probing).then_some(l.next_reprobe_ms);
                let send = l.next_send_ms.filter(|_| l.falling_back.is_none());
                [
                    send,
                    keepalive,
                    reprobe,
                    Some(l.next_ping_ms),
                    self.end_at_ms,
                ]
                .into_iter()
                .flatten()
                .min()
            }
            Phase::Finished => None,
        }
    }

    pub fn handle_timeout(&mut self, now_ms: u64) {
        if self.end_at_ms.is_some_and(|t| t <= now_ms) {
            self.end_at_ms = None;
            self.end_run(now_ms);
        }
        let timing = self.timing;
        let mut silent = false;
        match &mut self.phase {
            Phase::Joining(a) | Phase::Rejoining { attempts: a, .. } => {
                if a.next_at_ms.is_some_and(|t| t <= now_ms) {
                    a.next_at_ms = None;
                    a.made += 1;
                    a.redirects = 0;
                    self.out.push_back(Output::Join);
                }
            }
            Phase::Connected(l) => {
                // The controller first: if it is gone, the session is rejoined elsewhere, and
                // nothing else about it matters.
                if l.next_ping_ms <= now_ms {
                    l.next_ping_ms =
                        next_on_grid(l.next_ping_ms, now_ms, timing.signal_keepalive_ms);
                    let limit_ms = timing.signal_keepalive_ms * SIGNAL_MISSES;
                    if now_ms.saturating_sub(l.signal_heard_ms) > limit_ms {
                        silent = true;
                    } else {
                        self.out.push_back(Output::Ping);
                    }
                }
                if !silent {
                    Self::media_timers(&mut self.out, l, timing, now_ms);
                }
            }
            Phase::Finished => {}
        }
        if silent {
            self.session_ended(now_ms, EndReason::ControllerSilent, true);
        }
    }

    fn media_timers(out: &mut VecDeque<Output>, l: &mut Live, timing: Timing, now_ms: u64) {
        if let Some(t) = l
            .next_send_ms
            .filter(|t| *t <= now_ms && l.falling_back.is_none())
        {
            // Media missed while busy is not sent late in a burst: it is gone, as in a real call.
            let every = timing.packet_interval_ms.unwrap_or(1);
            l.next_send_ms = Some(next_on_grid(t, now_ms, every));
            out.push_back(Output::SendMedia);
        }
        if l.path == MediaPath::Udp && l.falling_back.is_none() && l.next_keepalive_ms <= now_ms {
            l.next_keepalive_ms =
                next_on_grid(l.next_keepalive_ms, now_ms, timing.media_keepalive_ms);
            let limit_ms = timing.media_keepalive_ms * timing.media_keepalive_misses as u64;
            if now_ms.saturating_sub(l.media_heard_ms) > limit_ms {
                // UDP stopped answering (a firewall change, a NAT timeout): move to a stream
                // now; the re-probe brings media back to UDP when it works again.
                l.falling_back = Some(Ladder::new(vec![MediaPath::Tcp, MediaPath::Tls], u64::MAX));
                out.push_back(Output::Event(Event::UdpLost));
                out.push_back(Output::Bind {
                    path: MediaPath::Tcp,
                });
            } else {
                out.push_back(Output::SendKeepalive);
            }
        }
        if l.path != MediaPath::Udp && !l.probing && l.next_reprobe_ms <= now_ms {
            l.next_reprobe_ms = now_ms + timing.media_reprobe_ms;
            l.probing = true;
            out.push_back(Output::ProbeUdp);
        }
    }

    pub fn handle(&mut self, now_ms: u64, input: Input) {
        self.handle_timeout(now_ms);
        match input {
            Input::Admitted => self.admitted(),
            Input::Bound { path } if self.binding() => self.joined(now_ms, path),
            Input::BindFailed { path } if self.binding() => self.bind_failed(now_ms, path),
            Input::JoinFailed(failure) => self.join_failed(now_ms, failure, None),
            Input::JoinDeferred {
                failure,
                retry_after_ms,
            } => self.join_failed(now_ms, failure, Some(retry_after_ms)),
            Input::Redirected => self.redirected(now_ms),
            // Admitted, but the controller went away or spoke out of turn before the media was
            // bound: this attempt is over (its connections must be dropped, or the shell would
            // keep reading a closed one).
            Input::SignalLost | Input::Signal(_) if self.binding() => {
                let failure = match input {
                    // The shell installs a new key itself; the session only hears it.
                    Input::Signal(
                        ZcToClient::Pong | ZcToClient::Rekey { .. } | ZcToClient::RejoinPass { .. },
                    ) => return,
                    Input::Signal(ZcToClient::Ended { .. }) | Input::SignalLost => {
                        JoinFailure::ZoneInFlux
                    }
                    _ => JoinFailure::ZcMisbehaved,
                };
                if let Phase::Joining(a) | Phase::Rejoining { attempts: a, .. } = &mut self.phase {
                    a.binding = None;
                }
                self.out.push_back(Output::Leave);
                self.join_failed(now_ms, failure, None);
            }
            Input::Stop => {
                self.stop_requested = true;
                match &self.phase {
                    // An attempt is under way: its answer decides (a first join that succeeds
                    // still leaves cleanly).
                    Phase::Joining(a) if a.next_at_ms.is_none() => {}
                    _ => self.end_run(now_ms),
                }
            }
            input => {
                if let Some((why, rejoin)) = self.connected_input(now_ms, input) {
                    self.session_ended(now_ms, why, rejoin);
                }
            }
        }
    }

    /// An input about the live session; `Some` when it ends the session (and whether to rejoin).
    fn connected_input(&mut self, now_ms: u64, input: Input) -> Option<(EndReason, bool)> {
        let Phase::Connected(l) = &mut self.phase else {
            return None; // from a session already left
        };
        match input {
            Input::MediaHeard => l.media_heard_ms = now_ms,
            Input::MediaBroken => return Some((EndReason::MediaFailed, false)),
            Input::Bound { path: to } if l.falling_back.is_some() => {
                let from = std::mem::replace(&mut l.path, to);
                l.falling_back = None;
                l.media_heard_ms = now_ms;
                l.next_reprobe_ms = now_ms + self.timing.media_reprobe_ms;
                self.out
                    .push_back(Output::Event(Event::MediaMoved { from, to }));
            }
            Input::BindFailed { path } if l.falling_back.is_some() => {
                let ladder = l.falling_back.as_mut().expect("guarded");
                ladder.attempt_failed(&path);
                match ladder.next_to_try() {
                    Some(&path) => self.out.push_back(Output::Bind { path }),
                    // The MMR itself is unreachable: join again, and the ZC places the meeting
                    // on an MMR that works once it notices this one is gone.
                    None => return Some((EndReason::MmrUnreachable, true)),
                }
            }
            // Not asked for (a stale answer): nothing to do.
            Input::Bound { .. } | Input::BindFailed { .. } => {}
            Input::Reprobed { bound } => {
                l.probing = false;
                if bound {
                    // The MMR moves a participant to the newest endpoint it binds from, so media
                    // is on UDP from now on.
                    let from = std::mem::replace(&mut l.path, MediaPath::Udp);
                    l.media_heard_ms = now_ms;
                    l.next_keepalive_ms = now_ms + self.timing.media_keepalive_ms;
                    self.out.push_back(Output::Event(Event::MediaMoved {
                        from,
                        to: MediaPath::Udp,
                    }));
                }
            }
            Input::Signal(msg) => {
                l.signal_heard_ms = now_ms;
                match msg {
                    ZcToClient::Pong | ZcToClient::Rekey { .. } | ZcToClient::RejoinPass { .. } => {
                    }
                    ZcToClient::Ended { reason, rejoin } => {
                        return Some((EndReason::ByZc(reason), rejoin))
                    }
                    _ => return Some((EndReason::ZcMisbehaved, false)),
                }
            }
            // The controller went away without a word (its process died): the meeting goes on
            // at the other controller of the pair, or here once it is back.
            Input::SignalLost => return Some((EndReason::SignallingLost, true)),
            Input::Admitted
            | Input::JoinFailed(_)
            | Input::JoinDeferred { .. }
            | Input::Redirected
            | Input::Stop => {
                unreachable!("handled by the caller")
            }
        }
        None
    }

    fn joined(&mut self, now_ms: u64, path: MediaPath) {
        let rejoin = match &self.phase {
            Phase::Joining(_) => false,
            Phase::Rejoining { .. } => true,
            Phase::Connected(_) | Phase::Finished => return,
        };
        if !rejoin {
            self.joined_after_ms = Some(now_ms - self.started_ms);
            if self.timing.duration_ms > 0 {
                self.end_at_ms = Some(now_ms + self.timing.duration_ms);
            }
        }
        self.phase = Phase::Connected(Live {
            path,
            media_heard_ms: now_ms,
            signal_heard_ms: now_ms,
            next_send_ms: self.timing.packet_interval_ms.map(|_| now_ms),
            next_keepalive_ms: now_ms,
            next_ping_ms: now_ms,
            next_reprobe_ms: now_ms + self.timing.media_reprobe_ms,
            falling_back: None,
            probing: false,
        });
        self.out.push_back(Output::Event(Event::Joined { rejoin }));
        if self.stop_requested {
            self.end_run(now_ms);
        } else {
            self.handle_timeout(now_ms);
        }
    }

    /// Whether an admitted attempt is binding its media.
    fn binding(&self) -> bool {
        matches!(&self.phase, Phase::Joining(a) | Phase::Rejoining { attempts: a, .. } if a.binding.is_some())
    }

    /// Admitted: bind media, the best path first.
    fn admitted(&mut self) {
        let (Phase::Joining(a) | Phase::Rejoining { attempts: a, .. }) = &mut self.phase else {
            return;
        };
        let all = vec![MediaPath::Udp, MediaPath::Tcp, MediaPath::Tls];
        a.binding = Some(Ladder::new(all, u64::MAX));
        self.out.push_back(Output::Bind {
            path: MediaPath::Udp,
        });
    }

    /// A path failed while binding after admission: the next, or the attempt failed.
    fn bind_failed(&mut self, now_ms: u64, path: MediaPath) {
        let (Phase::Joining(a) | Phase::Rejoining { attempts: a, .. }) = &mut self.phase else {
            return;
        };
        let Some(ladder) = a.binding.as_mut() else {
            return;
        };
        ladder.attempt_failed(&path);
        if let Some(&path) = ladder.next_to_try() {
            self.out.push_back(Output::Bind { path });
            return;
        }
        a.binding = None;
        // The MMR is unreachable on every path: give the seat back, and try again once the ZC
        // has noticed (it places the meeting on an MMR that works).
        self.out.push_back(Output::Leave);
        self.join_failed(now_ms, JoinFailure::ZoneInFlux, None);
    }

    fn redirected(&mut self, now_ms: u64) {
        let (Phase::Joining(a) | Phase::Rejoining { attempts: a, .. }) = &mut self.phase else {
            return;
        };
        if a.next_at_ms.is_some() {
            return; // no attempt under way
        }
        if a.redirects < MAX_REDIRECTS && !self.stop_requested {
            a.redirects += 1;
            self.out.push_back(Output::FollowRedirect);
        } else {
            // The pair disagrees about who hosts the meeting: it is failing over.
            self.join_failed(now_ms, JoinFailure::ZoneInFlux, None);
        }
    }

    fn join_failed(&mut self, now_ms: u64, failure: JoinFailure, retry_after_ms: Option<u64>) {
        let (Phase::Joining(a) | Phase::Rejoining { attempts: a, .. }) = &mut self.phase else {
            return;
        };
        a.last = Some(failure);
        if failure.passing() && now_ms < a.deadline_ms && !self.stop_requested {
            let retry_in_ms = match retry_after_ms {
                Some(ms) => ms.min(MAX_RETRY_AFTER_MS),
                None => RETRY.delay_ms(a.made - 1),
            };
            a.next_at_ms = Some(now_ms + retry_in_ms);
            self.out.push_back(Output::Event(Event::Retrying {
                attempt: a.made,
                failure,
                retry_in_ms,
            }));
            return;
        }
        let finish = match std::mem::replace(&mut self.phase, Phase::Finished) {
            Phase::Rejoining { why, .. } => Finish::Left {
                ended: Some(why),
                rejoin_failed: Some(failure),
            },
            _ => Finish::JoinFailed(failure),
        };
        self.out.push_back(Output::Finished(finish));
    }

    /// The session ended; with `rejoin` the meeting goes on elsewhere, so join again.
    fn session_ended(&mut self, now_ms: u64, why: EndReason, rejoin: bool) {
        if rejoin && self.rejoins < MAX_REJOINS {
            self.rejoins += 1;
            // Leave the old session first, so its seat is free. Then keep trying — the cloud may
            // be unreachable for a while, or the ZC may not have noticed the dead MMR yet.
            self.out.push_back(Output::Leave);
            self.out.push_back(Output::Event(Event::Rejoining {
                attempt: self.rejoins,
                reason: why.clone(),
            }));
            self.phase = Phase::Rejoining {
                attempts: Attempts::new(now_ms, now_ms + REJOIN_DEADLINE_MS),
                why,
            };
            self.handle_timeout(now_ms);
        } else {
            self.phase = Phase::Finished;
            self.out.push_back(Output::Finished(Finish::Left {
                ended: Some(why),
                rejoin_failed: None,
            }));
        }
    }

    /// The run's end (its duration, or the caller): leave whatever state it is in.
    fn end_run(&mut self, _now_ms: u64) {
        let finish = match std::mem::replace(&mut self.phase, Phase::Finished) {
            Phase::Connected(_) => {
                self.out.push_back(Output::Leave);
                Finish::Left {
                    ended: None,
                    rejoin_failed: None,
                }
            }
            Phase::Rejoining { why, .. } => Finish::Left {
                ended: Some(why),
                rejoin_failed: None,
            },
            Phase::Joining(a) => {
                Finish::JoinFailed(a.last.expect("stopped between attempts, so one failed"))
            }
            Phase::Finished => return,
        };
        self.out.push_back(Output::Finished(finish));
    }
}

/// The first time after `now_ms` on the grid of period `every_ms` through `due_ms`: a periodic
/// action handled late keeps its cadence, and what was missed is skipped, not made up in a burst.
fn next_on_grid(due_ms: u64, now_ms: u64, every_ms: u64) -> u64 {
    let every_ms = every_ms.max(1);
    due_ms + (now_ms - due_ms) / every_ms * every_ms + every_ms
}

#[cfg(test)]
mod tests;
