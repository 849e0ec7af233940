//! The HA pair: peer links, the lease, and fencing (DESIGN §5).
//!
//! Each controller dials the other and pings it every `interval_ms` with what it hosts; the other
//! answers each ping with a pong. A pong renews the pinger's lease; a ping tells the receiver its
//! peer is alive and what it would take over (see [`crate::zc::ha`]). The moment the lease runs
//! out while anything is hosted, the controller fences; the peer is reported down once per outage.

use super::{Closed, ConnId, Controller, Event, Message};
use mc_wire::peer::PeerMsg;

#[derive(Debug)]
pub(super) struct PeerLink {
    /// Dialled by this controller (host, for the log): it pings. Otherwise accepted: it answers.
    dialled: Option<String>,
    /// When the other side was last heard: a pong on a dialled link, a ping on an accepted one.
    heard_ms: u64,
    /// Dialled links only: the next ping.
    ping_due_ms: Option<u64>,
}

impl PeerLink {
    /// The next ping on a dialled link; on an accepted one, when its silence ends it.
    pub(super) fn next_due_ms(&self, down_after_ms: u64) -> u64 {
        self.ping_due_ms
            .unwrap_or(self.heard_ms + down_after_ms + 1)
    }
}

impl Controller {
    pub(super) fn peer_opened(
        &mut self,
        now_ms: u64,
        conn: ConnId,
        dialled: Option<(String, u16)>,
    ) {
        let ping_due_ms = dialled.as_ref().map(|_| now_ms);
        if let Some((host, port)) = &dialled {
            self.event(Event::PeerLinkUp {
                host: host.clone(),
                port: *port,
            });
        }
        self.peers.insert(
            conn,
            PeerLink {
                dialled: dialled.map(|(host, _)| host),
                heard_ms: now_ms,
                ping_due_ms,
            },
        );
    }

    pub(super) fn peer_message(&mut self, now_ms: u64, conn: ConnId, msg: PeerMsg) {
        let Some(link) = self.peers.get_mut(&conn) else {
            return;
        };
        let dialled = link.dialled.is_some();
        match msg {
            PeerMsg::Pong {
                controller,
                echo_ms,
            } if dialled => {
                link.heard_ms = now_ms;
                if let Some(ha) = self.ha.as_mut() {
                    ha.renew(echo_ms);
                    ha.heard_peer(now_ms, controller);
                }
            }
            PeerMsg::Ping { .. } if dialled => {
                self.peer_lost(conn, "the peer pinged on our own link".into())
            }
            PeerMsg::Pong { .. } => self.refuse_peer(conn, "it sent a pong unasked"),
            PeerMsg::Ping {
                controller,
                sent_ms,
                meetings,
                load,
                capacity,
                rejoin_key,
            } => {
                link.heard_ms = now_ms;
                let Some(ha) = self.ha.as_mut() else {
                    self.event(Event::PeerRefusedUnconfigured { controller });
                    self.peers.remove(&conn);
                    return self.close(conn);
                };
                if controller == self.p.id {
                    return self.refuse_peer(conn, "it came from a controller with this one's id");
                }
                let view = ha.heard_peer(now_ms, controller.clone());
                view.meetings = meetings;
                view.load = load;
                view.capacity = capacity;
                // Over mutual TLS from the peer: its passes are honoured here from now on. A
                // key that does not decode is ignored (its passes will not be).
                let secret = rejoin_key
                    .and_then(|k| mc_wire::hex::decode("rejoin key", &k).ok())
                    .and_then(|k| <[u8; 32]>::try_from(k).ok());
                if let Some(secret) = secret {
                    self.zc.set_peer_rejoin_secret(controller, secret);
                }
                let pong = PeerMsg::Pong {
                    controller: self.p.id.clone(),
                    echo_ms: sent_ms,
                };
                self.send(conn, Message::Peer(pong));
            }
        }
    }

    fn refuse_peer(&mut self, conn: ConnId, why: &'static str) {
        self.event(Event::PeerLinkRefused { conn, why });
        self.peers.remove(&conn);
        self.close(conn);
        if let Some(ha) = self.ha.as_mut() {
            ha.peer_link_lost();
        }
    }

    pub(super) fn peer_ended(&mut self, conn: ConnId, why: Closed) {
        match (&why, self.peers.get(&conn).and_then(|l| l.dialled.clone())) {
            (Closed::Moving { port }, Some(host)) => {
                self.peers.remove(&conn);
                self.close(conn);
                self.event(Event::PeerLinkMoving { host, port: *port });
            }
            _ => self.peer_lost(conn, why.reason("the peer closed the link")),
        }
    }

    fn peer_lost(&mut self, conn: ConnId, reason: String) {
        let Some(link) = self.peers.remove(&conn) else {
            return;
        };
        self.close(conn);
        if let Some(ha) = self.ha.as_mut() {
            ha.peer_link_lost();
        }
        if let Some(host) = link.dialled {
            self.event(Event::PeerLinkLost { host, reason });
        }
    }

    pub(super) fn peers_due(&mut self, now_ms: u64) {
        let Some(peer) = self.p.peer else { return };
        let conns: Vec<ConnId> = self.peers.keys().copied().collect();
        for conn in conns {
            let link = &self.peers[&conn];
            let silent_ms = now_ms.saturating_sub(link.heard_ms);
            match link.ping_due_ms {
                // An accepted link the peer stopped pinging.
                None if silent_ms > peer.down_after_ms => {
                    self.refuse_peer(conn, "the peer went silent")
                }
                Some(due) if due <= now_ms => {
                    if silent_ms > peer.down_after_ms {
                        let reason = format!("no pong for {} ms", peer.down_after_ms);
                        self.peer_lost(conn, reason);
                        continue;
                    }
                    let ping = PeerMsg::Ping {
                        controller: self.p.id.clone(),
                        sent_ms: now_ms,
                        meetings: self.zc.hosted(),
                        load: self.zc.load(),
                        capacity: self.zc.capacity(),
                        rejoin_key: Some(mc_wire::hex::encode(&self.zc.rejoin_secret())),
                    };
                    self.peers.get_mut(&conn).expect("listed").ping_due_ms =
                        Some(now_ms + peer.interval_ms);
                    self.send(conn, Message::Peer(ping));
                }
                _ => {}
            }
        }
    }

    /// While anything is hosted in an HA pair: when the lease runs out.
    pub(super) fn lease_due_ms(&self) -> Option<u64> {
        let ha = self.ha.as_ref()?;
        let hosting = self.zc.load().meetings > 0 || self.zc.owns_any();
        (hosting && ha.lease_ms() > 0).then(|| ha.lease_until_ms())
    }

    /// Fences when the lease has run out and anything is still hosted: the peer may take the
    /// meetings over from then on, so nothing here may go on hosting them.
    pub(super) fn fence_if_expired(&mut self, now_ms: u64) {
        if self.lease_due_ms().is_none_or(|due| due > now_ms) {
            return;
        }
        let lease_ms = self.ha.as_ref().map_or(0, |ha| ha.lease_ms());
        let meetings = self.zc.fence(&format!(
            "neither the cloud nor the peer acknowledged it for {lease_ms} ms"
        ));
        self.event(Event::Fenced { lease_ms, meetings });
        self.pump(now_ms);
    }

    /// The moment the silent peer's lease has run out, claims the meetings it hosted, so they
    /// are owned here (and their participants admitted without waiting for a claim) by the
    /// time they come back; and gives back those still empty when their hold runs out.
    pub(super) fn take_over_due(&mut self, now_ms: u64) {
        self.zc.adoptions_due(now_ms);
        let Some(ha) = self.ha.as_mut() else { return };
        let meetings = ha.start_takeover(now_ms);
        if meetings.is_empty() {
            return;
        }
        let peer = ha
            .peer()
            .map(|p| p.id.clone())
            .expect("taking over from a peer");
        let claimed = meetings
            .iter()
            .filter(|m| self.zc.adopt(now_ms, m.meeting))
            .count();
        self.event(Event::TakingOver {
            peer,
            meetings: meetings.len(),
            claimed,
        });
        self.pump(now_ms);
    }

    /// Reports the peer down once per outage, with what it hosted.
    pub(super) fn report_peer_down(&mut self, now_ms: u64) {
        let Some(ha) = self.ha.as_mut() else { return };
        if let Some(p) = ha.peer_newly_down(now_ms) {
            let event = Event::PeerDown {
                peer: p.id.clone(),
                silent_ms: now_ms - p.last_heard_ms,
                meetings: p.meetings.len(),
                participants: p.meetings.iter().map(|m| m.participants).sum(),
            };
            self.event(event);
        }
    }
}
