//! The controller core: everything a controller VM decides, as one sans-IO machine (DESIGN §6).
//!
//! It owns admission and placement ([`Zc`]), ownership claims and their numbering, the hold on
//! `joined` until an MMR VM confirms the grant, MMR health (load reports and lost links), the HA
//! lease and peer silence with fencing, the cloud link's registration and heartbeats, and the
//! pacing of an operator's drain. Every timed decision is here, against `now_ms` from the caller.
//!
//! # Contract
//!
//! The shell owns one [`Controller`] per controller process and, like quinn's `Connection`:
//!
//! 1. numbers every connection it accepts or dials with a fresh [`ConnId`] (never reused), and
//!    feeds each input in the order it happened with [`Controller::handle`];
//! 2. after each call, takes [`Controller::poll_output`] until it returns `None` and carries each
//!    output out in order: a [`Output::Send`] is written after everything sent earlier on that
//!    connection, and an [`Output::Close`] closes it after those writes. Once closed by the core a
//!    connection is forgotten: its later inputs, if any, are ignored;
//! 3. then reads [`Controller::poll_timeout`] and calls [`Controller::handle_timeout`] once that
//!    time has come (any call may move it, so it is read afresh each time).
//!
//! `now_ms` is Unix milliseconds from the shell's clock (the simulated clock under madsim); it
//! must not go backwards between calls. Every call first runs whatever fell due by `now_ms`, so
//! a controller that was frozen (a paused VM) fences before it admits anyone on a stale lease.
//! A connection the peer ends is reported with [`Input::Closed`]; the core answers it with
//! `Close` too, so the shell can always release a connection on `Close`.

mod cloud;
mod drain;
mod event;
mod mmr_links;
mod peer;
mod sessions;
#[cfg(test)]
mod tests;

pub use event::{DrainScope, Event};

use crate::zc::ha::Ha;
use crate::zc::{MmrCommand, Zc, ZcLimits, ZcOutput, ZoneSnapshot};
use crate::Rng;
use mc_wire::link::{ControllerToMmr, MmrToController};
use mc_wire::monitor::LinkPath;
use mc_wire::notify::MeetingEvent;
use mc_wire::peer::PeerMsg;
use mc_wire::signal::{ClientToZc, MediaEndpoints, ZcToClient};
use mc_wire::status::{CloudToController, ControllerToCloud, Load, SignallingEndpoints};
use mc_wire::MediaToken;
use mc_wire::{ControllerId, MeetingId, MmrId};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A connection of any kind (signalling session, MMR link, cloud link, peer link), numbered by
/// the shell. Signalling sessions use it as their [`crate::zc::SessionId`].
pub type ConnId = u64;

/// What a controller is, fixed for its lifetime.
#[derive(Debug, Clone)]
pub struct Params {
    pub id: ControllerId,
    pub zone: String,
    /// Where clients reach this controller's signalling, as registered with the cloud.
    pub signalling: SignallingEndpoints,
    pub limits: ZcLimits,
    /// The MMR in this controller's own process: its id, capacity and media addresses.
    pub local_mmr: (MmrId, u32, MediaEndpoints),
    /// Where other MMRs link to the local one for a cascaded meeting (`None`: it takes no part).
    pub local_mmr_cascade_port: Option<u16>,
    /// How often MMR VMs report load; three missed reports and the MMR is down.
    pub mmr_report_interval_ms: u64,
    /// How long a new connection may take to say who it is (a join, a hello, a registration).
    pub handshake_timeout_ms: u64,
    /// Set for one controller of an HA pair.
    pub peer: Option<PeerParams>,
}

#[derive(Debug, Clone, Copy)]
pub struct PeerParams {
    /// How often this controller pings its peer.
    pub interval_ms: u64,
    /// Silence after which the peer is reported down (its meetings move once its lease is out).
    pub down_after_ms: u64,
}

/// Everything that happens to a controller, besides time passing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A client opened a signalling session.
    SessionOpened {
        conn: ConnId,
    },
    Session {
        conn: ConnId,
        msg: ClientToZc,
    },
    /// An MMR VM connected (mutual TLS); `from` is its address, for the log.
    MmrLinkOpened {
        conn: ConnId,
        from: String,
    },
    Mmr {
        conn: ConnId,
        msg: MmrToController,
    },
    /// The shell connected to cloud status sync on `port`.
    CloudLinkOpened {
        conn: ConnId,
        port: u16,
        path: LinkPath,
    },
    Cloud {
        conn: ConnId,
        msg: CloudToController,
    },
    /// A peer link: dialled by this controller to `host:port` (it pings), or accepted from the
    /// peer (`dialled: None`; it answers pings).
    PeerLinkOpened {
        conn: ConnId,
        dialled: Option<(String, u16)>,
    },
    Peer {
        conn: ConnId,
        msg: PeerMsg,
    },
    /// The connection ended on the other side, or the shell is leaving it.
    Closed {
        conn: ConnId,
        why: Closed,
    },
    /// An event from cloud notification (meeting ended, participant removed, an operator's drain).
    Notification(MeetingEvent),
}

impl Input {
    /// The connection the input is about, if any.
    pub fn conn(&self) -> Option<ConnId> {
        match self {
            Input::SessionOpened { conn }
            | Input::Session { conn, .. }
            | Input::MmrLinkOpened { conn, .. }
            | Input::Mmr { conn, .. }
            | Input::CloudLinkOpened { conn, .. }
            | Input::Cloud { conn, .. }
            | Input::PeerLinkOpened { conn, .. }
            | Input::Peer { conn, .. }
            | Input::Closed { conn, .. } => Some(*conn),
            Input::Notification(_) => None,
        }
    }
}

/// Why a connection ended, as the shell saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    /// The other side closed cleanly between messages.
    Clean,
    /// The other side sent something that does not decode.
    Malformed(String),
    /// The connection failed.
    Io(String),
    /// The shell refused what the other side sent: its certificate is not of the role the link
    /// expects, or names another node than the one it claims to be.
    Refused(String),
    /// The shell found the link's better port open again and moves the link there.
    Moving { port: u16 },
}

impl Closed {
    fn reason(&self, clean: &str) -> String {
        match self {
            Closed::Clean => clean.to_string(),
            Closed::Malformed(e) | Closed::Io(e) | Closed::Refused(e) => e.clone(),
            Closed::Moving { port } => format!("moving to port {port}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Client(ZcToClient),
    Mmr(ControllerToMmr),
    Cloud(ControllerToCloud),
    Peer(PeerMsg),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    Send {
        conn: ConnId,
        msg: Message,
    },
    /// Close the connection once what was sent on it is written.
    Close {
        conn: ConnId,
    },
    /// A command for the MMR in this process.
    LocalMmr(MmrCommand),
    Event(Event),
}

/// What the controller shows its operator and health probes, published by the shell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub zone: ZoneSnapshot,
    pub load: Load,
    pub capacity: Load,
    /// Registered with the cloud (it can verify tickets) and not drained.
    pub ready: bool,
    /// In an HA pair: when the lease runs out.
    pub lease_until_ms: Option<u64>,
    /// Drained by the operator: no new meetings here.
    pub draining: bool,
    /// In an HA pair: what this controller owns and how it got it.
    pub ha: Option<HaStatus>,
}

/// The HA side of a controller's status, for its operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaStatus {
    /// The meetings the ownership registry granted this controller, with their epochs.
    pub owned: Vec<mc_wire::status::OwnedMeeting>,
    /// The peer answers (it has not been silent past the detection bound).
    pub peer_up: bool,
    /// Meetings granted here that the peer hosted when last heard: taken over from it.
    pub takeovers: u64,
}

pub struct Controller {
    p: Params,
    zc: Zc,
    ha: Option<Ha>,
    /// Sessions that have not joined yet, by the time they must have.
    join_due: BTreeSet<(u64, ConnId)>,
    /// Open signalling sessions.
    sessions: BTreeSet<ConnId>,
    mmr_links: BTreeMap<ConnId, mmr_links::MmrLink>,
    /// Each linked MMR VM's current link.
    mmr_by_id: BTreeMap<MmrId, ConnId>,
    /// MMRs whose link closed: down at the time given unless they link again first.
    mmr_down_due: BTreeMap<MmrId, (u64, String)>,
    /// Grants to MMR VMs not yet confirmed, by hex token: the client hears `joined` only once
    /// the MMR holds the grant, so its first binding never races it.
    held: BTreeMap<MediaToken, Held>,
    cloud: Option<cloud::CloudLink>,
    next_claim: u64,
    /// Claims in flight, by meeting: when each was sent and which peers it said were alive.
    claims: BTreeMap<MeetingId, (u64, Vec<ControllerId>)>,
    peers: BTreeMap<ConnId, peer::PeerLink>,
    drains: BTreeMap<Option<MmrId>, drain::Drain>,
    /// Meetings taken over from the peer so far (for the operator's metrics).
    takeovers: u64,
    outputs: VecDeque<Output>,
}

#[derive(Debug)]
struct Held {
    mmr: MmrId,
    joined: Option<(ConnId, ZcToClient)>,
}

impl Controller {
    pub fn new(p: Params, rng: Rng) -> Controller {
        let mut zc = Zc::new(p.limits, rng);
        let (mmr, capacity, media) = p.local_mmr.clone();
        zc.mmr_up(mmr, capacity, media, p.local_mmr_cascade_port);
        let ha = p.peer.map(|peer| {
            zc.enable_ownership();
            Ha::new(peer.down_after_ms)
        });
        Controller {
            p,
            zc,
            ha,
            join_due: BTreeSet::new(),
            sessions: BTreeSet::new(),
            mmr_links: BTreeMap::new(),
            mmr_by_id: BTreeMap::new(),
            mmr_down_due: BTreeMap::new(),
            held: BTreeMap::new(),
            cloud: None,
            next_claim: 0,
            claims: BTreeMap::new(),
            peers: BTreeMap::new(),
            drains: BTreeMap::new(),
            takeovers: 0,
            outputs: VecDeque::new(),
        }
    }

    pub fn handle(&mut self, now_ms: u64, input: Input) {
        self.run_due(now_ms);
        match input {
            Input::SessionOpened { conn } => self.session_opened(now_ms, conn),
            Input::Session { conn, msg } => self.session_message(now_ms, conn, msg),
            Input::MmrLinkOpened { conn, from } => self.mmr_link_opened(now_ms, conn, from),
            Input::Mmr { conn, msg } => self.mmr_message(now_ms, conn, msg),
            Input::CloudLinkOpened { conn, port, path } => {
                self.cloud_opened(now_ms, conn, port, path)
            }
            Input::Cloud { conn, msg } => self.cloud_message(now_ms, conn, msg),
            Input::PeerLinkOpened { conn, dialled } => self.peer_opened(now_ms, conn, dialled),
            Input::Peer { conn, msg } => self.peer_message(now_ms, conn, msg),
            Input::Closed { conn, why } => self.closed(now_ms, conn, why),
            Input::Notification(event) => self.notification(now_ms, event),
        }
        self.pump(now_ms);
    }

    /// Time has passed: run whatever fell due by `now_ms`.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        self.run_due(now_ms);
        self.pump(now_ms);
    }

    /// When [`Controller::handle_timeout`] should next be called, if anything is pending.
    pub fn poll_timeout(&self) -> Option<u64> {
        [
            self.join_due.first().map(|(t, _)| *t),
            self.mmr_links.values().map(|l| l.next_due_ms()).min(),
            self.mmr_down_due.values().map(|(t, _)| *t).min(),
            self.cloud.as_ref().map(|c| c.next_due_ms()),
            self.p.peer.and_then(|peer| {
                let down_after_ms = peer.down_after_ms;
                self.peers
                    .values()
                    .map(|l| l.next_due_ms(down_after_ms))
                    .min()
            }),
            self.drains.values().map(|d| d.next_ms).min(),
            self.lease_due_ms(),
            self.ha.as_ref().and_then(|ha| ha.peer_down_due_ms()),
            self.ha.as_ref().and_then(|ha| ha.takeover_due_ms()),
            self.zc.adoption_due_ms(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    pub fn status(&self) -> Status {
        Status {
            zone: self.zc.snapshot(),
            load: self.zc.load(),
            capacity: self.zc.capacity(),
            ready: self.zc.is_ready() && !self.zc.is_draining(),
            lease_until_ms: self.ha.as_ref().map(|ha| ha.lease_until_ms()),
            draining: self.zc.is_draining(),
            ha: self.ha.as_ref().map(|ha| HaStatus {
                owned: self.zc.owned(),
                peer_up: ha.peer_up(),
                takeovers: self.takeovers,
            }),
        }
    }

    /// Whether [`status`](Self::status) would give `s` now, found without building one (which
    /// copies every meeting): the shell asks after every batch of inputs before publishing.
    pub fn status_is(&self, s: &Status) -> bool {
        // Every field named, so that a new one cannot be left out of the comparison.
        let Status {
            zone,
            load,
            capacity,
            ready,
            lease_until_ms,
            draining,
            ha,
        } = s;
        let ha_is = match (&self.ha, ha) {
            (None, None) => true,
            (
                Some(mine),
                Some(HaStatus {
                    owned,
                    peer_up,
                    takeovers,
                }),
            ) => {
                mine.peer_up() == *peer_up
                    && self.takeovers == *takeovers
                    && self.zc.owned_is(owned)
            }
            _ => false,
        };
        ha_is
            && self.zc.load() == *load
            && self.zc.capacity() == *capacity
            && (self.zc.is_ready() && !self.zc.is_draining()) == *ready
            && self.ha.as_ref().map(|ha| ha.lease_until_ms()) == *lease_until_ms
            && self.zc.is_draining() == *draining
            && self.zc.snapshot_is(zone)
    }

    /// Runs every timer due by `now_ms`, oldest concern first: the lease before anything that
    /// could admit.
    fn run_due(&mut self, now_ms: u64) {
        self.fence_if_expired(now_ms);
        self.report_peer_down(now_ms);
        self.take_over_due(now_ms);
        self.sessions_due(now_ms);
        self.mmr_links_due(now_ms);
        self.cloud_due(now_ms);
        self.peers_due(now_ms);
        self.drains_due(now_ms);
        self.pump(now_ms);
    }

    fn closed(&mut self, now_ms: u64, conn: ConnId, why: Closed) {
        if self.sessions.contains(&conn) {
            self.session_closed(conn, why);
        } else if self.mmr_links.contains_key(&conn) {
            self.mmr_link_ended(now_ms, conn, why.reason("closed the link"));
        } else if self.cloud.as_ref().is_some_and(|c| c.conn == conn) {
            self.cloud_ended(conn, why);
        } else if self.peers.contains_key(&conn) {
            self.peer_ended(conn, why);
        }
    }

    fn send(&mut self, conn: ConnId, msg: Message) {
        self.outputs.push_back(Output::Send { conn, msg });
    }

    fn close(&mut self, conn: ConnId) {
        self.outputs.push_back(Output::Close { conn });
    }

    fn event(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }

    /// Carries out what the ZC decided, until it has nothing more to say.
    fn pump(&mut self, now_ms: u64) {
        while let Some(out) = self.zc.poll_output() {
            match out {
                ZcOutput::Reply { session, msg } => self.reply(session, msg),
                ZcOutput::Close { session } => {
                    if self.sessions.remove(&session) {
                        self.close(session);
                    }
                    // Whatever the ZC still holds for the session goes with it.
                    self.zc.session_closed(session);
                }
                ZcOutput::Mmr { mmr, cmd } => self.command_mmr(mmr, cmd),
                ZcOutput::Claim { meeting } => self.claim(now_ms, meeting),
                ZcOutput::Release { meeting, epoch } => {
                    // Lost with the link, a release is made good at the next registration,
                    // which lists what this controller still owns.
                    self.send_to_cloud(ControllerToCloud::Release { meeting, epoch });
                }
            }
        }
    }

    fn reply(&mut self, session: ConnId, msg: ZcToClient) {
        match &msg {
            ZcToClient::Joined { media_token, .. } => {
                if let Some(held) = self.held.get_mut(media_token) {
                    held.joined = Some((session, msg));
                    return;
                }
            }
            ZcToClient::Rejected {
                reason, message, ..
            } => self.event(Event::Rejected {
                session,
                reason: *reason,
                message: message.clone(),
            }),
            ZcToClient::Ended { reason, .. } => self.event(Event::Ended {
                session,
                reason: reason.clone(),
            }),
            ZcToClient::Redirect { controller, .. } => self.event(Event::Redirected {
                session,
                controller: controller.clone(),
            }),
            ZcToClient::Rekey { media_key } => {
                // A `joined` still held carries the key: it goes out with the newest one, so
                // the client never hears of a key before it has joined.
                let held = self.held.values_mut().find_map(|h| match &mut h.joined {
                    Some((s, ZcToClient::Joined { media_key: k, .. })) if *s == session => Some(k),
                    _ => None,
                });
                if let Some(k) = held {
                    *k = media_key.clone();
                    return;
                }
            }
            // A joined still held already carries a pass; the next ping brings a fresh one.
            ZcToClient::RejoinPass { .. } if self.held_for(session) => return,
            ZcToClient::RejoinPass { .. } | ZcToClient::Pong => {}
        }
        if self.sessions.contains(&session) {
            self.send(session, Message::Client(msg));
        }
    }

    /// Whether a `joined` for `session` is held back until its MMR VM confirms the grant.
    fn held_for(&self, session: ConnId) -> bool {
        self.held
            .values()
            .any(|h| matches!(&h.joined, Some((s, _)) if *s == session))
    }

    fn command_mmr(&mut self, mmr: MmrId, cmd: MmrCommand) {
        let local = mmr == self.p.local_mmr.0;
        let link = self.mmr_by_id.get(&mmr).copied();
        if !local && link.is_none() {
            // The link just closed; the MMR is declared down soon unless it links again, and
            // then every grant it should hold is repeated to it.
            self.event(Event::CommandForUnlinkedMmr { mmr });
            return;
        }
        if let MmrCommand::Admit {
            meeting,
            participant,
            ..
        } = &cmd
        {
            self.event(Event::Admitted {
                participant: *participant,
                meeting: *meeting,
                mmr: mmr.clone(),
            });
        }
        let Some(conn) = link.filter(|_| !local) else {
            self.outputs.push_back(Output::LocalMmr(cmd));
            return;
        };
        match &cmd {
            MmrCommand::Admit { token, .. } => {
                self.held.insert(token.clone(), Held { mmr, joined: None });
            }
            MmrCommand::Revoke { token } => {
                self.held.remove(token);
            }
            MmrCommand::Cascade { .. } => {}
        }
        self.send(conn, Message::Mmr(mmr_links::to_wire(cmd)));
    }

    fn send_to_cloud(&mut self, msg: ControllerToCloud) -> bool {
        match self.cloud.as_ref().filter(|c| c.is_registered()) {
            Some(c) => {
                let conn = c.conn;
                self.send(conn, Message::Cloud(msg));
                true
            }
            None => false,
        }
    }
}
