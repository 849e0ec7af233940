//! A whole HA zone at the core level, in virtual time: two controller cores, cloud status sync
//! (its core plus the few lines of glue its shell adds), and scripted clients, wired by
//! connections that deliver in order after a latency. The knobs are plain fields: latency, paths
//! cut (messages wait), connections broken, a controller frozen (a paused VM). Safety is checked
//! after every step.

use mc_core::cloud::status_sync::StatusSync;
use mc_core::controller::{
    Closed, ConnId, Controller, Event, Input, Message, Output, Params, PeerParams, Status,
};
use mc_core::ticket::TicketSigner;
use mc_core::zc::{MmrCommand, ZcLimits};
use mc_core::Rng;
use mc_wire::monitor::LinkPath;
use mc_wire::peer::PeerMsg;
use mc_wire::signal::{ClientToZc, MediaEndpoints, ZcToClient};
use mc_wire::status::{CloudToController, ControllerToCloud, SignallingEndpoints};
use mc_wire::ticket::TicketClaims;
use mc_wire::{hex, ControllerId, MeetingId, MmrId, ParticipantId};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// The product's defaults: the cloud calls a controller down after 6 s (its lease is 3.6 s), the
/// peer after 2 s; pings every 500 ms, heartbeats every second.
pub const CLOUD_DOWN_AFTER_MS: u64 = 6_000;
const HEARTBEAT_INTERVAL_MS: u64 = 1_000;
/// How soon the shells dial a lost link again.
const REDIAL_MS: u64 = 500;
pub const MAX_MEETINGS: u32 = 2;
pub const MMR_CAPACITY: u32 = 3;
const START_MS: u64 = 1_000_000;

/// Where a connection runs, for cutting and breaking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Path {
    CloudA,
    CloudB,
    Peer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Ctl(usize),
    Cloud,
    Client(usize),
}

#[derive(Debug, Clone)]
enum Msg {
    ToZc(ClientToZc),
    ToClient(ZcToClient),
    ToCloud(ControllerToCloud),
    ToCtl(CloudToController),
    Peer(PeerMsg),
    /// The sender closed the connection after what it sent before.
    Fin,
}

struct Conn {
    /// The dialling end, then the accepting end.
    ends: [End; 2],
    path: Option<Path>,
    /// In flight towards `ends[i]`: when it arrives, and what.
    queues: [VecDeque<(u64, Msg)>; 2],
    /// Which ends have let go of the connection.
    gone: [bool; 2],
}

#[derive(Debug, Default)]
struct Client {
    meeting: u64,
    ticket: Option<String>,
    /// The open session, if any.
    conn: Option<ConnId>,
    /// The newest media key the session heard: a key only after `joined`, and only forward.
    key_id: Option<u32>,
}

struct CloudSide {
    status: StatusSync,
    signer: TicketSigner,
    /// Registered controller on each status connection, and when it was last heard.
    links: BTreeMap<ConnId, Option<(ControllerId, u64, u64)>>,
}

pub struct World {
    pub now_ms: u64,
    pub latency_ms: u64,
    ctls: Vec<Controller>,
    pub frozen: [bool; 2],
    pub cut: BTreeSet<Path>,
    cloud: CloudSide,
    clients: Vec<Client>,
    conns: BTreeMap<ConnId, Conn>,
    next_conn: ConnId,
    /// Each controller's live links it dials: cloud and peer, or when to dial again.
    dialled: [[Result<ConnId, u64>; 2]; 2],
    /// What each controller's own MMR holds grants for: token → meeting.
    grants: [BTreeMap<mc_wire::MediaToken, MeetingId>; 2],
    issued: BTreeSet<(ParticipantId, MeetingId)>,
    pub violations: Vec<String>,
    pub log: Vec<String>,
    /// Each controller's status when last checked: the shell publishes only when
    /// `status_is` says the status moved, so it must say so exactly when it did.
    shown: [Option<Status>; 2],
}

fn ctl_id(i: usize) -> ControllerId {
    ControllerId(format!("ctl-{}", ["a", "b"][i]))
}

impl World {
    pub fn new(seed: u64, clients: usize) -> World {
        let ctls = (0..2)
            .map(|i| {
                let params = Params {
                    id: ctl_id(i),
                    zone: "z".into(),
                    signalling: SignallingEndpoints {
                        host: ctl_id(i).0,
                        port: 8802,
                        fallback_port: 443,
                    },
                    limits: ZcLimits {
                        max_meetings: MAX_MEETINGS,
                    },
                    local_mmr: (
                        MmrId(format!("{}-mmr", ctl_id(i))),
                        MMR_CAPACITY,
                        MediaEndpoints {
                            host: ctl_id(i).0,
                            udp_port: 8801,
                            tcp_port: 8801,
                            tls_port: 443,
                        },
                    ),
                    local_mmr_cascade_port: None,
                    mmr_report_interval_ms: 1_000,
                    handshake_timeout_ms: 5_000,
                    peer: Some(PeerParams {
                        interval_ms: 500,
                        down_after_ms: 2_000,
                    }),
                };
                Controller::new(params, Rng::seed_from_u64(seed + i as u64))
            })
            .collect();
        World {
            now_ms: START_MS,
            latency_ms: 5,
            ctls,
            frozen: [false; 2],
            cut: BTreeSet::new(),
            cloud: CloudSide {
                status: StatusSync::new(CLOUD_DOWN_AFTER_MS, START_MS, false),
                signer: TicketSigner::from_seed(&[7; 32]),
                links: BTreeMap::new(),
            },
            clients: (0..clients).map(|_| Client::default()).collect(),
            conns: BTreeMap::new(),
            next_conn: 0,
            dialled: [[Err(START_MS); 2]; 2],
            grants: [BTreeMap::new(), BTreeMap::new()],
            issued: BTreeSet::new(),
            violations: Vec::new(),
            shown: [None, None],
            log: Vec::new(),
        }
    }

    /// Client `c` asks the cloud for a ticket to `meeting` and joins through controller `ctl`.
    pub fn join(&mut self, c: usize, meeting: u64, ctl: usize) {
        if self.clients[c].conn.is_some() {
            return;
        }
        let participant = ParticipantId(c as u64 + 1);
        let claims = TicketClaims {
            meeting: MeetingId(meeting),
            participant,
            display_name: format!("client {c}"),
            issued_at_ms: self.now_ms,
            expires_at_ms: self.now_ms + 60_000,
            nonce: Rng::seed_from_u64(self.now_ms ^ c as u64).bytes::<16>(),
            expected_participants: None,
        };
        self.issued.insert((participant, MeetingId(meeting)));
        let ticket = self.cloud.signer.sign(claims).to_text();
        self.clients[c].meeting = meeting;
        self.clients[c].ticket = Some(ticket);
        self.open_session(c, ctl);
    }

    pub fn leave(&mut self, c: usize) {
        if let Some(conn) = self.clients[c].conn.take() {
            self.push(conn, 1, Msg::ToZc(ClientToZc::Leave));
            self.let_go(conn, 0);
        }
    }

    /// Breaks every connection on `path`: both ends hear it failed; what was in flight is lost.
    pub fn break_path(&mut self, path: Path) {
        let broken: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.path == Some(path))
            .map(|(id, _)| *id)
            .collect();
        for id in broken {
            let conn = self.conns.get_mut(&id).expect("listed");
            for q in &mut conn.queues {
                q.clear();
            }
            let due = self.now_ms;
            for side in 0..2 {
                if !conn.gone[side] {
                    conn.queues[side].push_back((due, Msg::Fin));
                }
            }
        }
    }

    fn open_session(&mut self, c: usize, ctl: usize) {
        if self.frozen[ctl] {
            self.clients[c] = Client::default();
            return;
        }
        let conn = self.connect([End::Client(c), End::Ctl(ctl)], None);
        self.clients[c].conn = Some(conn);
        self.feed_ctl(ctl, Input::SessionOpened { conn });
        let ticket = self.clients[c].ticket.clone().expect("set before dialling");
        self.push(conn, 1, Msg::ToZc(ClientToZc::Join { ticket }));
    }

    fn connect(&mut self, ends: [End; 2], path: Option<Path>) -> ConnId {
        self.next_conn += 1;
        self.conns.insert(
            self.next_conn,
            Conn {
                ends,
                path,
                queues: [VecDeque::new(), VecDeque::new()],
                gone: [false; 2],
            },
        );
        self.next_conn
    }

    /// Sends `msg` towards end `to` of the connection, in order after what is in flight.
    fn push(&mut self, conn: ConnId, to: usize, msg: Msg) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.gone[1 - to] {
            return;
        }
        let due = c.queues[to]
            .back()
            .map_or(0, |(t, _)| *t)
            .max(self.now_ms + self.latency_ms);
        c.queues[to].push_back((due, msg));
    }

    /// End `side` closes: the other end hears it after what was sent.
    fn let_go(&mut self, conn: ConnId, side: usize) {
        self.push(conn, 1 - side, Msg::Fin);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.gone[side] = true;
        }
    }

    fn side_of(&self, conn: ConnId, end: End) -> Option<usize> {
        self.conns.get(&conn)?.ends.iter().position(|e| *e == end)
    }

    fn feed_ctl(&mut self, i: usize, input: Input) {
        self.ctls[i].handle(self.now_ms, input);
        self.carry_out(i);
    }

    fn carry_out(&mut self, i: usize) {
        while let Some(out) = self.ctls[i].poll_output() {
            match out {
                Output::Send { conn, msg } => {
                    let Some(side) = self.side_of(conn, End::Ctl(i)) else {
                        continue;
                    };
                    let msg = match msg {
                        Message::Client(m) => Msg::ToClient(m),
                        Message::Cloud(m) => Msg::ToCloud(m),
                        Message::Peer(m) => Msg::Peer(m),
                        Message::Mmr(_) => continue,
                    };
                    self.push(conn, 1 - side, msg);
                }
                Output::Close { conn } => {
                    if let Some(side) = self.side_of(conn, End::Ctl(i)) {
                        self.let_go(conn, side);
                    }
                }
                Output::LocalMmr(MmrCommand::Admit { token, meeting, .. }) => {
                    self.grants[i].insert(token, meeting);
                }
                Output::LocalMmr(MmrCommand::Revoke { token }) => {
                    self.grants[i].remove(&token);
                }
                // Each controller here has one MMR, which takes no part in cascades.
                Output::LocalMmr(MmrCommand::Cascade { .. }) => {}
                Output::Event(e) => {
                    if let Event::Admitted {
                        participant,
                        meeting,
                        ..
                    } = &e
                    {
                        if !self.issued.contains(&(*participant, *meeting)) {
                            self.violations.push(format!(
                                "ticketless: {participant} admitted to {meeting} without a ticket"
                            ));
                        }
                    }
                    if e.logged() {
                        self.log.push(format!("{} {}: {e}", self.now_ms, ctl_id(i)));
                    }
                }
            }
        }
    }

    /// Runs the world for `ms` of virtual time.
    pub fn run_for(&mut self, ms: u64) {
        let until = self.now_ms + ms;
        let mut steps = 0;
        loop {
            steps += 1;
            assert!(
                steps < 200_000,
                "the world makes no progress at {}",
                self.now_ms
            );
            self.dial_links();
            self.cloud_silence();
            let next = self.next_event_ms();
            match next {
                Some(t) if t <= until => {
                    self.now_ms = self.now_ms.max(t);
                    self.step();
                    self.check();
                }
                _ => break,
            }
        }
        self.now_ms = until;
        self.check();
    }

    fn deliverable(&self, c: &Conn, to: usize) -> bool {
        let frozen = matches!(c.ends[to], End::Ctl(i) if self.frozen[i]);
        !frozen && !c.path.is_some_and(|p| self.cut.contains(&p))
    }

    fn next_event_ms(&self) -> Option<u64> {
        let msgs = self.conns.values().flat_map(|c| {
            (0..2).filter_map(move |to| {
                let (t, _) = c.queues[to].front()?;
                self.deliverable(c, to).then_some(*t)
            })
        });
        let timers = (0..2)
            .filter(|i| !self.frozen[*i])
            .filter_map(|i| self.ctls[i].poll_timeout());
        let dials = (0..2)
            .filter(|i| !self.frozen[*i])
            .flat_map(|i| self.dialled[i].iter().filter_map(|d| d.err()));
        let silence = self
            .cloud
            .links
            .values()
            .flatten()
            .map(|(_, _, heard)| heard + CLOUD_DOWN_AFTER_MS + 1);
        msgs.chain(timers).chain(dials).chain(silence).min()
    }

    /// Delivers every message due now, and runs every controller timer due now.
    fn step(&mut self) {
        for i in 0..2 {
            if !self.frozen[i]
                && self.ctls[i]
                    .poll_timeout()
                    .is_some_and(|t| t <= self.now_ms)
            {
                self.ctls[i].handle_timeout(self.now_ms);
                self.carry_out(i);
            }
        }
        let ids: Vec<ConnId> = self.conns.keys().copied().collect();
        for id in ids {
            for to in 0..2 {
                while let Some(msg) = self.due_message(id, to) {
                    let c = self.conns.get_mut(&id).expect("it had a message");
                    let end = c.ends[to];
                    if c.gone[to] {
                        continue;
                    }
                    if matches!(msg, Msg::Fin) {
                        c.gone[to] = true;
                    }
                    self.deliver(id, end, msg);
                }
            }
            if self.conns.get(&id).is_some_and(|c| c.gone == [true, true]) {
                self.conns.remove(&id);
            }
        }
    }

    /// The next message towards end `to` of the connection, if it has arrived and may be read.
    fn due_message(&mut self, id: ConnId, to: usize) -> Option<Msg> {
        let c = self.conns.get(&id)?;
        let due = c.queues[to].front().is_some_and(|(t, _)| *t <= self.now_ms);
        if !due || !self.deliverable(c, to) {
            return None;
        }
        let c = self.conns.get_mut(&id).expect("checked");
        c.queues[to].pop_front().map(|(_, msg)| msg)
    }

    fn deliver(&mut self, conn: ConnId, end: End, msg: Msg) {
        match (end, msg) {
            (End::Ctl(i), Msg::Fin) => {
                self.forget_dialled(i, conn);
                let why = Closed::Io("connection reset".into());
                self.feed_ctl(i, Input::Closed { conn, why });
            }
            (End::Ctl(i), Msg::ToZc(msg)) => self.feed_ctl(i, Input::Session { conn, msg }),
            (End::Ctl(i), Msg::ToCtl(msg)) => self.feed_ctl(i, Input::Cloud { conn, msg }),
            (End::Ctl(i), Msg::Peer(msg)) => self.feed_ctl(i, Input::Peer { conn, msg }),
            (End::Cloud, Msg::ToCloud(msg)) => self.cloud_hears(conn, msg),
            (End::Cloud, Msg::Fin) => self.cloud_lets_go(conn),
            (End::Client(c), msg) => self.client_hears(c, conn, msg),
            (end, msg) => panic!("{msg:?} delivered to {end:?}"),
        }
    }

    fn forget_dialled(&mut self, i: usize, conn: ConnId) {
        for d in &mut self.dialled[i] {
            if *d == Ok(conn) {
                *d = Err(self.now_ms + REDIAL_MS);
            }
        }
    }

    /// The shells' link supervisors: a lost cloud or peer link is dialled again.
    fn dial_links(&mut self) {
        for i in 0..2 {
            // A controller closes a link it gave up on; its supervisor dials again.
            for k in 0..2 {
                if let Ok(conn) = self.dialled[i][k] {
                    if self
                        .side_of(conn, End::Ctl(i))
                        .is_none_or(|s| self.conns[&conn].gone[s])
                    {
                        self.dialled[i][k] = Err(self.now_ms + REDIAL_MS);
                    }
                }
            }
            if self.frozen[i] {
                continue;
            }
            let cloud_path = [Path::CloudA, Path::CloudB][i];
            if matches!(self.dialled[i][0], Err(t) if t <= self.now_ms) {
                if self.cut.contains(&cloud_path) {
                    self.dialled[i][0] = Err(self.now_ms + REDIAL_MS);
                } else {
                    let conn = self.connect([End::Ctl(i), End::Cloud], Some(cloud_path));
                    self.cloud.links.insert(conn, None);
                    self.dialled[i][0] = Ok(conn);
                    let open = Input::CloudLinkOpened {
                        conn,
                        port: 8803,
                        path: LinkPath::Dedicated,
                    };
                    self.feed_ctl(i, open);
                }
            }
            let peer = 1 - i;
            if matches!(self.dialled[i][1], Err(t) if t <= self.now_ms) {
                if self.cut.contains(&Path::Peer) || self.frozen[peer] {
                    self.dialled[i][1] = Err(self.now_ms + REDIAL_MS);
                } else {
                    let conn = self.connect([End::Ctl(i), End::Ctl(peer)], Some(Path::Peer));
                    self.dialled[i][1] = Ok(conn);
                    let dialled = Some((ctl_id(peer).0, 8802));
                    self.feed_ctl(i, Input::PeerLinkOpened { conn, dialled });
                    self.feed_ctl(
                        peer,
                        Input::PeerLinkOpened {
                            conn,
                            dialled: None,
                        },
                    );
                }
            }
        }
    }

    /// Cloud status sync's shell: a controller silent for `down_after` is disconnected.
    fn cloud_silence(&mut self) {
        let silent: Vec<ConnId> = self
            .cloud
            .links
            .iter()
            .filter(|(_, r)| {
                r.as_ref()
                    .is_some_and(|(_, _, heard)| self.now_ms > heard + CLOUD_DOWN_AFTER_MS)
            })
            .map(|(c, _)| *c)
            .collect();
        for conn in silent {
            self.cloud_lets_go(conn);
            self.let_go(conn, 1);
        }
    }

    fn cloud_lets_go(&mut self, conn: ConnId) {
        if let Some(Some((id, registration, _))) = self.cloud.links.remove(&conn) {
            self.cloud.status.disconnected(&id, registration);
        }
    }

    fn cloud_hears(&mut self, conn: ConnId, msg: ControllerToCloud) {
        let now_ms = self.now_ms;
        let Some(link) = self.cloud.links.get_mut(&conn) else {
            return;
        };
        let status = &mut self.cloud.status;
        let answer = match (link.as_mut(), msg) {
            (
                None,
                ControllerToCloud::Register {
                    controller,
                    zone,
                    signalling,
                    capacity,
                    meetings,
                },
            ) => {
                let registration =
                    status.register(now_ms, controller.clone(), zone, signalling, capacity);
                let revoked = status.adopt(&controller, &meetings);
                *link = Some((controller, registration, now_ms));
                Some(CloudToController::Registered {
                    ticket_key: hex::encode(&self.cloud.signer.public_key()),
                    heartbeat_interval_ms: HEARTBEAT_INTERVAL_MS,
                    lease_ms: status.lease_ms(),
                    revoked,
                })
            }
            (None, _) => None,
            (Some((id, _, heard)), msg) => {
                *heard = now_ms;
                match msg {
                    ControllerToCloud::Heartbeat {
                        load,
                        capacity,
                        ready,
                        sent_ms,
                    } => {
                        status.heartbeat(now_ms, id, load, capacity, ready);
                        Some(CloudToController::Ack { echo_ms: sent_ms })
                    }
                    ControllerToCloud::Claim {
                        request,
                        meeting,
                        alive_peers,
                    } => Some(CloudToController::Claimed {
                        request,
                        meeting,
                        outcome: status.claim(now_ms, id, meeting, &alive_peers),
                    }),
                    ControllerToCloud::Release { meeting, epoch } => {
                        status.release(id, meeting, epoch);
                        None
                    }
                    ControllerToCloud::Register { .. } => None,
                }
            }
        };
        if let Some(answer) = answer {
            self.push(conn, 0, Msg::ToCtl(answer));
        }
    }

    fn client_hears(&mut self, c: usize, conn: ConnId, msg: Msg) {
        if self.clients[c].conn != Some(conn) {
            return;
        }
        match msg {
            Msg::ToClient(ZcToClient::Redirect { controller, .. }) => {
                self.let_go(conn, 0);
                self.clients[c].conn = None;
                self.clients[c].key_id = None;
                let to = usize::from(controller == ctl_id(1));
                self.open_session(c, to);
            }
            Msg::ToClient(ZcToClient::Joined { media_key, .. }) => {
                self.clients[c].key_id = Some(media_key.id);
            }
            Msg::ToClient(ZcToClient::Rekey { media_key }) => {
                let held = self.clients[c].key_id.expect("a rekey before joined");
                assert!(media_key.id > held, "keys only move forward");
                self.clients[c].key_id = Some(media_key.id);
            }
            Msg::ToClient(ZcToClient::Pong) => {}
            Msg::ToClient(ZcToClient::Rejected { .. } | ZcToClient::Ended { .. }) | Msg::Fin => {
                self.let_go(conn, 0);
                self.clients[c] = Client::default();
            }
            other => panic!("client {c} got {other:?}"),
        }
    }

    /// The safety properties of the scenarios, at this instant.
    fn check(&mut self) {
        let now_ms = self.now_ms;
        let mut hosts: BTreeMap<MeetingId, Vec<usize>> = BTreeMap::new();
        let mut holders: BTreeMap<MeetingId, BTreeSet<usize>> = BTreeMap::new();
        for i in 0..2 {
            let st = self.ctls[i].status();
            let moved = self.shown[i].as_ref() != Some(&st);
            let seen_moving = self.shown[i]
                .as_ref()
                .is_some_and(|shown| !self.ctls[i].status_is(shown));
            if !self.ctls[i].status_is(&st) || (self.shown[i].is_some() && moved != seen_moving) {
                self.violations.push(format!(
                    "{now_ms}: ctl {i}'s status_is disagrees with its status: {:?} then {st:?}",
                    self.shown[i]
                ));
            }
            self.shown[i] = Some(st.clone());
            // A controller whose lease ran out hosts nothing that counts: it fences the moment
            // it runs, and its peer may own its meetings by then.
            if st.lease_until_ms.is_some_and(|until| now_ms >= until) {
                continue;
            }
            if st.zone.meetings.len() as u32 > MAX_MEETINGS {
                self.violations.push(format!(
                    "{now_ms}: ctl {i} hosts {} meetings",
                    st.zone.meetings.len()
                ));
            }
            for (mmr, (participants, capacity, _)) in &st.zone.mmrs {
                if participants > capacity {
                    self.violations.push(format!(
                        "{now_ms}: {mmr} holds {participants} of {capacity}"
                    ));
                }
            }
            for m in st.zone.meetings.keys() {
                hosts.entry(*m).or_default().push(i);
            }
            for m in self.grants[i].values() {
                holders.entry(*m).or_default().insert(i);
            }
        }
        for (m, by) in hosts {
            if by.len() > 1 {
                self.violations
                    .push(format!("{now_ms}: meeting {m} hosted by both controllers"));
            }
        }
        for (m, by) in holders {
            if by.len() > 1 {
                self.violations
                    .push(format!("{now_ms}: meeting {m} has grants on both MMRs"));
            }
        }
    }
}
