//! The cloud status-sync link's protocol: register (and learn the ticket key, the lease and what
//! was taken over meanwhile), heartbeat load, claim and release meetings. The cloud acks every
//! heartbeat; each ack renews the lease. The shell dials, falls back and re-probes; the core
//! decides when the link is dead.

use super::{Closed, ConnId, Controller, Event, Message};
use mc_wire::monitor::LinkPath;
use mc_wire::status::{ClaimOutcome, CloudToController, ControllerToCloud};
use mc_wire::{hex, MeetingId};

/// Heartbeats arrive at least this often, whatever the cloud asks.
const HEARTBEAT_INTERVAL_MS_MIN: u64 = 100;
/// Heartbeat intervals without a word from the cloud before the link is dead.
const SILENT_INTERVALS_LOST: u64 = 4;

#[derive(Debug)]
pub(super) struct CloudLink {
    pub(super) conn: ConnId,
    port: u16,
    path: LinkPath,
    state: State,
}

#[derive(Debug)]
enum State {
    Registering {
        due_ms: u64,
    },
    Registered {
        interval_ms: u64,
        heard_ms: u64,
        beat_due_ms: u64,
    },
}

impl CloudLink {
    pub(super) fn is_registered(&self) -> bool {
        matches!(self.state, State::Registered { .. })
    }

    pub(super) fn next_due_ms(&self) -> u64 {
        match self.state {
            State::Registering { due_ms } => due_ms,
            State::Registered { beat_due_ms, .. } => beat_due_ms,
        }
    }
}

impl Controller {
    pub(super) fn cloud_opened(&mut self, now_ms: u64, conn: ConnId, port: u16, path: LinkPath) {
        if let Some(old) = self.cloud.take() {
            self.cloud_lost(old.conn, "replaced by a new link".into());
        }
        self.cloud = Some(CloudLink {
            conn,
            port,
            path,
            state: State::Registering {
                due_ms: now_ms + self.p.handshake_timeout_ms,
            },
        });
        let register = ControllerToCloud::Register {
            controller: self.p.id.clone(),
            zone: self.p.zone.clone(),
            signalling: self.p.signalling.clone(),
            capacity: self.zc.capacity(),
            meetings: self.zc.owned(),
        };
        self.send(conn, Message::Cloud(register));
    }

    pub(super) fn cloud_message(&mut self, now_ms: u64, conn: ConnId, msg: CloudToController) {
        let Some(link) = self.cloud.as_mut().filter(|c| c.conn == conn) else {
            return;
        };
        match (&mut link.state, msg) {
            (
                State::Registering { .. },
                CloudToController::Registered {
                    ticket_key,
                    heartbeat_interval_ms,
                    lease_ms,
                    revoked,
                },
            ) => {
                let key = match hex::decode("ticket key", &ticket_key) {
                    Ok(key) => key,
                    Err(e) => {
                        let reason = format!("the cloud sent an unusable ticket key: {e}");
                        return self.cloud_lost(conn, reason);
                    }
                };
                link.state = State::Registered {
                    interval_ms: heartbeat_interval_ms.max(HEARTBEAT_INTERVAL_MS_MIN),
                    heard_ms: now_ms,
                    beat_due_ms: now_ms,
                };
                let (port, path) = (link.port, link.path);
                self.zc.set_ticket_key(key);
                if let Some(ha) = self.ha.as_mut() {
                    ha.set_lease_ms(lease_ms);
                }
                if !revoked.is_empty() {
                    self.event(Event::TakenOverMeanwhile {
                        meetings: revoked.len(),
                    });
                    self.zc.revoked(&revoked);
                }
                self.pump(now_ms);
                self.event(Event::Registered { port, path });
            }
            (State::Registering { .. }, CloudToController::Rejected { message }) => {
                let reason = format!("the cloud refused the registration: {message}");
                self.cloud_lost(conn, reason);
            }
            (State::Registering { .. }, other) => {
                let reason = format!("the cloud answered the registration with {other:?}");
                self.cloud_lost(conn, reason);
            }
            (State::Registered { heard_ms, .. }, msg) => {
                *heard_ms = now_ms;
                match msg {
                    CloudToController::Rejected { message } => {
                        self.cloud_lost(conn, format!("the cloud ended the link: {message}"))
                    }
                    CloudToController::Registered { .. } => {}
                    CloudToController::Ack { echo_ms } => {
                        if let Some(ha) = self.ha.as_mut() {
                            ha.renew(echo_ms);
                        }
                    }
                    CloudToController::Claimed {
                        meeting, outcome, ..
                    } => self.claim_answered(now_ms, meeting, outcome),
                }
            }
        }
    }

    pub(super) fn cloud_due(&mut self, now_ms: u64) {
        let Some(link) = self.cloud.as_mut().filter(|c| c.next_due_ms() <= now_ms) else {
            return;
        };
        let conn = link.conn;
        match &mut link.state {
            State::Registering { .. } => {
                self.cloud_lost(conn, "the cloud did not answer the registration".into())
            }
            State::Registered {
                interval_ms,
                heard_ms,
                beat_due_ms,
            } => {
                let silent_ms = now_ms.saturating_sub(*heard_ms);
                if silent_ms > SILENT_INTERVALS_LOST * *interval_ms {
                    let reason = format!("the cloud acknowledged nothing for {silent_ms} ms");
                    return self.cloud_lost(conn, reason);
                }
                *beat_due_ms = now_ms + *interval_ms;
                let beat = ControllerToCloud::Heartbeat {
                    load: self.zc.load(),
                    capacity: self.zc.capacity(),
                    ready: !self.zc.is_draining(),
                    sent_ms: now_ms,
                };
                self.send(conn, Message::Cloud(beat));
            }
        }
    }

    pub(super) fn cloud_ended(&mut self, conn: ConnId, why: Closed) {
        match why {
            Closed::Moving { port } => {
                self.cloud_gone(conn);
                self.event(Event::CloudLinkMoving { port });
            }
            Closed::Clean if self.cloud.as_ref().is_some_and(|c| !c.is_registered()) => self
                .cloud_lost(
                    conn,
                    "the cloud closed the connection during registration".into(),
                ),
            why => self.cloud_lost(conn, why.reason("the cloud closed the connection")),
        }
    }

    fn cloud_lost(&mut self, conn: ConnId, reason: String) {
        self.cloud_gone(conn);
        self.event(Event::CloudLinkLost { reason });
    }

    /// Claims can be neither asked nor answered without the link.
    fn cloud_gone(&mut self, conn: ConnId) {
        self.cloud = None;
        self.close(conn);
        self.claims.clear();
        self.zc.claims_failed("the cloud status link was lost");
    }

    /// The ZC wants a meeting: ask the cloud, listing the peers whose meetings are still theirs.
    pub(super) fn claim(&mut self, now_ms: u64, meeting: MeetingId) {
        let alive_peers = self
            .ha
            .as_ref()
            .map(|ha| ha.alive_peers(now_ms))
            .unwrap_or_default();
        let request = self.next_claim + 1;
        let asked = self.send_to_cloud(ControllerToCloud::Claim {
            request,
            meeting,
            alive_peers: alive_peers.clone(),
        });
        if asked {
            self.next_claim = request;
            self.claims.insert(meeting, (now_ms, alive_peers));
        } else {
            self.zc
                .claim_failed(meeting, "the cloud status link is down");
        }
    }

    fn claim_answered(&mut self, now_ms: u64, meeting: MeetingId, outcome: ClaimOutcome) {
        let asked = self.claims.remove(&meeting);
        let outcome = match self.ha.as_ref() {
            Some(ha) => ha.judge_claim(now_ms, meeting, outcome),
            None => outcome,
        };
        let outcome = match (outcome, asked, self.ha.as_ref().and_then(|ha| ha.peer())) {
            // The peer was heard while the claim was in flight, though the claim told the cloud
            // it was gone. Every pong since then extended its lease, and with it its hold on the
            // meetings it hosts, which may include this one: the cloud judged on a view that is
            // no longer true, so the grant is given back and the joins retry.
            (ClaimOutcome::Granted { epoch }, Some((sent_ms, alive)), Some(peer))
                if peer.last_heard_ms >= sent_ms && !alive.contains(&peer.id) =>
            {
                let message = format!(
                    "controller {} answers again and may host meeting {meeting}; retry shortly",
                    peer.id
                );
                self.send_to_cloud(ControllerToCloud::Release { meeting, epoch });
                ClaimOutcome::Retry {
                    message,
                    retry_after_ms: None,
                }
            }
            (outcome, _, _) => outcome,
        };
        if let (ClaimOutcome::Granted { .. }, Some(ha)) = (&outcome, self.ha.as_mut()) {
            // Not a meeting the peer handed over alive (a drain): only one its silence left.
            if ha.took_over(meeting) {
                self.takeovers += 1;
            }
        }
        self.zc.claim_answered(now_ms, meeting, outcome);
    }
}
