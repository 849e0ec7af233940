//! The one task that owns the controller core: it feeds the core what the connection tasks read,
//! runs its timers, and carries out what it decides. Nothing else touches decision state; the
//! handle and health probes read the [`Status`] it publishes after every step.

use crate::metrics::{ControllerMetrics, Metrics};
use crate::mmr::Mmr;
use crate::monitor::{LinkTable, RecentEvents};
use crate::EventLog;
use mc_core::controller::{ConnId, Controller, Event, Input, Message, Output, Status};
use mc_rt::sync::mpsc;
use mc_wire::frame;
use mc_wire::monitor::RecentKind;
use mc_wire::signal::{ClientToZc, ZcToClient};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What connection tasks queue for the core before it blocks them: enough for a burst of joins.
const INPUT_QUEUE: usize = 1024;
/// Inputs taken in one step before the status is published again.
const BATCH: usize = 64;

pub(crate) enum Cmd {
    /// A new connection: where to write what the core sends on it, and the input that opens it.
    Open {
        writer: mpsc::UnboundedSender<Write>,
        input: Input,
    },
    Input(Input),
}

/// What a connection task is asked to do.
pub(crate) enum Write {
    Frame(Vec<u8>),
    Close,
}

/// The way into the core, for connection tasks: numbers connections and queues inputs.
#[derive(Clone)]
pub(crate) struct CoreTx {
    tx: mpsc::Sender<Cmd>,
    next_conn: Arc<AtomicU64>,
}

impl CoreTx {
    pub fn conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Queues a command; false once the core has stopped.
    pub async fn send(&self, cmd: Cmd) -> bool {
        self.tx.send(cmd).await.is_ok()
    }
}

/// Where the driver tells what happened: the event log, the link table, and the operator events
/// monitoring reports carry.
pub(crate) struct Sinks {
    pub events: EventLog,
    pub links: LinkTable,
    pub recent: RecentEvents,
}

/// Starts the core's task; returns the way in and the published status.
pub(crate) fn start(
    core: Controller,
    mmr: Mmr,
    sinks: Sinks,
    cloud_link: &'static str,
    metrics: &Metrics,
) -> (CoreTx, Arc<Mutex<Status>>) {
    let Sinks {
        events,
        links,
        recent,
    } = sinks;
    let (tx, rx) = mpsc::channel(INPUT_QUEUE);
    let status = Arc::new(Mutex::new(core.status()));
    let metrics = ControllerMetrics::register(metrics, status.clone(), links.clone(), cloud_link);
    let driver = Driver {
        metrics,
        core,
        writers: BTreeMap::new(),
        mmr,
        events,
        links,
        recent,
        cloud_link,
        status: status.clone(),
    };
    mc_rt::spawn(driver.run(rx));
    let tx = CoreTx {
        tx,
        next_conn: Arc::new(AtomicU64::new(0)),
    };
    (tx, status)
}

struct Driver {
    metrics: ControllerMetrics,
    core: Controller,
    writers: BTreeMap<ConnId, mpsc::UnboundedSender<Write>>,
    mmr: Mmr,
    events: EventLog,
    links: LinkTable,
    recent: RecentEvents,
    cloud_link: &'static str,
    status: Arc<Mutex<Status>>,
}

impl Driver {
    async fn run(mut self, mut rx: mpsc::Receiver<Cmd>) {
        loop {
            let now_ms = mc_rt::unix_now_ms();
            let cmd = match self.core.poll_timeout() {
                Some(due_ms) if due_ms <= now_ms => {
                    self.core.handle_timeout(now_ms);
                    self.carry_out();
                    self.publish();
                    continue;
                }
                Some(due_ms) => {
                    let wait = Duration::from_millis(due_ms - now_ms);
                    mc_rt::select! {
                        // Branches are polled in order, never at random: one seed, one run.
                        biased;
                        cmd = rx.recv() => cmd,
                        _ = mc_rt::sleep(wait) => continue,
                    }
                }
                None => rx.recv().await,
            };
            let Some(cmd) = cmd else { return };
            self.feed(cmd);
            for _ in 1..BATCH {
                match rx.try_recv() {
                    Ok(cmd) => self.feed(cmd),
                    Err(_) => break,
                }
            }
            self.publish();
        }
    }

    /// Publishes the core's status; a change wakes the simulation's checkers.
    fn publish(&mut self) {
        let mut published = self.status.lock().unwrap();
        if self.core.status_is(&published) {
            return;
        }
        let status = self.core.status();
        // Takeovers are granted by the cloud one claim at a time; the count says how many.
        let taken = |s: &Status| s.ha.as_ref().map_or(0, |ha| ha.takeovers);
        let new_takeovers = taken(&status).saturating_sub(taken(&published));
        if new_takeovers > 0 {
            let text = format!("took over {new_takeovers} meeting(s) from the peer");
            self.recent.push(RecentKind::Takeover, text);
        }
        if *published != status {
            *published = status;
            drop(published);
            self.events.state_changed();
        }
    }

    fn feed(&mut self, cmd: Cmd) {
        let input = match cmd {
            Cmd::Open { writer, input } => {
                if let Some(conn) = input.conn() {
                    self.writers.insert(conn, writer);
                }
                input
            }
            Cmd::Input(input) => input,
        };
        let now_ms = mc_rt::unix_now_ms();
        if let Input::Session {
            conn,
            msg: ClientToZc::Join { .. },
        } = &input
        {
            // Only while the connection is open: a join queued behind the message that closed
            // it would otherwise be remembered forever.
            if self.writers.contains_key(conn) {
                self.metrics.join_asked(*conn);
            }
        }
        self.core.handle(now_ms, input);
        self.carry_out();
    }

    fn carry_out(&mut self) {
        while let Some(out) = self.core.poll_output() {
            match out {
                Output::Send { conn, msg } => {
                    if let Message::Client(ZcToClient::Joined { .. }) = &msg {
                        self.metrics.joined(conn);
                    }
                    let bytes = match &msg {
                        Message::Client(m) => frame::encode(m),
                        Message::Mmr(m) => frame::encode(m),
                        Message::Cloud(m) => frame::encode(m),
                        Message::Peer(m) => frame::encode(m),
                    };
                    if let Some(w) = self.writers.get(&conn) {
                        let _ = w.send(Write::Frame(bytes));
                    }
                }
                Output::Close { conn } => {
                    self.metrics.closed(conn);
                    if let Some(w) = self.writers.remove(&conn) {
                        let _ = w.send(Write::Close);
                    }
                }
                Output::LocalMmr(cmd) => self.mmr.apply(cmd),
                Output::Event(event) => self.record(event),
            }
        }
    }

    fn record(&mut self, event: Event) {
        self.metrics.observe(&event);
        // Link paths reach the dashboard through the link table; these are the rest of what an
        // operator watches for.
        let kind = match &event {
            Event::Fenced { .. } => Some(RecentKind::Fence),
            Event::TakenOverMeanwhile { .. } | Event::TakingOver { .. } => {
                Some(RecentKind::Takeover)
            }
            Event::PeerDown { .. } => Some(RecentKind::PeerDown),
            Event::MmrDown { .. } => Some(RecentKind::MmrDown),
            Event::Draining { .. } | Event::MovedMeeting { .. } | Event::Drained { .. } => {
                Some(RecentKind::Drain)
            }
            _ => None,
        };
        if let Some(kind) = kind {
            self.recent.push(kind, event.to_string());
        }
        if let Event::Registered { port, path } = event {
            self.links.up(self.cloud_link, path, port);
        }
        if event.logged() {
            self.events.record(event);
        } else {
            self.events.diagnostic(event);
        }
    }
}
