//! The MMR forwarding table.
//!
//! Contract: the ZC grants tokens ([`Forwarding::admit`]); a client proves it holds one with a
//! binding request from the endpoint it will use (signed with the token, never carrying it, with
//! a counter that only moves forward, so a captured request cannot be replayed from elsewhere or
//! later); from then on every well-formed RTP packet from that endpoint goes to every other bound
//! endpoint of the same meeting and to no one else. The packets are sealed by their senders: the
//! table reads only their clear RTP header. Packets from unbound endpoints, malformed packets and
//! refused bindings are dropped and counted, never forwarded. An endpoint is a UDP source address
//! or a stream connection numbered by the shell.

use mc_wire::binding::{code, Binding, BindingId};
use mc_wire::rtp::RtpHeader;
use mc_wire::srtp::ReplayWindow;
use mc_wire::MediaToken;
use mc_wire::{classify_media, MediaKind, MeetingId, ParticipantId};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    Udp(SocketAddr),
    /// A TCP 8801 or TLS 443 connection carrying RFC 4571 frames.
    Stream(u64),
    /// A link to another MMR of cascaded meetings (numbered by the shell): a packet goes there
    /// once per meeting it carries, with the meeting's id.
    Cascade(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// Not RTP, not a binding message, or a malformed one.
    Malformed,
    /// RTP from an endpoint that never bound with a valid token.
    Unbound,
    /// A binding request for an unknown or revoked grant, or whose integrity does not check.
    BadToken,
    /// A binding request whose counter was seen already or is out of date: a replay.
    Replayed,
    /// A binding response sent to the MMR: only clients receive those.
    Unexpected,
}

#[derive(Debug)]
pub enum Outcome {
    /// Send the packet, unchanged, to each of these endpoints.
    Forward(Vec<Endpoint>),
    /// Send this reply back to the sender.
    Reply(Vec<u8>),
    /// Send this reply back to the sender and count the drop.
    Refuse(Vec<u8>, DropReason),
    Drop(DropReason),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MmrCounters {
    pub rtp_in: u64,
    pub rtp_out: u64,
    /// RTP bytes received from bound participants, and sent to them (once per copy).
    pub rtp_bytes_in: u64,
    pub rtp_bytes_out: u64,
    pub bindings: u64,
    pub dropped_malformed: u64,
    pub dropped_unbound: u64,
    pub refused_bad_token: u64,
    pub refused_replayed: u64,
    pub dropped_unexpected: u64,
}

#[derive(Debug, Clone)]
struct Grant {
    /// The key of the binding's integrity.
    token: MediaToken,
    meeting: MeetingId,
    participant: ParticipantId,
    endpoint: Option<Endpoint>,
    /// The binding counters accepted: each once, none far behind the newest.
    counters: ReplayWindow,
    newest_counter: Option<u64>,
}

#[derive(Debug, Default)]
pub struct Forwarding {
    grants: BTreeMap<BindingId, Grant>,
    bound: BTreeMap<Endpoint, BindingId>,
    meetings: BTreeMap<MeetingId, BTreeSet<Endpoint>>,
    counters: MmrCounters,
    /// The last binding that moved a participant from one endpoint to another, until the shell
    /// takes it (to count moves between transports, which only the shell can tell apart).
    moved: Option<(Endpoint, Endpoint)>,
}

impl Forwarding {
    pub fn new() -> Forwarding {
        Forwarding::default()
    }

    /// Grants a token. Granting the same token again for the same participant is a no-op (a ZC
    /// may repeat its grants after a link drops); for anyone else it replaces the old grant.
    pub fn admit(&mut self, token: MediaToken, meeting: MeetingId, participant: ParticipantId) {
        let id = BindingId::of(&token);
        if let Some(g) = self.grants.get(&id) {
            if g.meeting == meeting && g.participant == participant {
                return;
            }
            self.revoke(&token);
        }
        self.grants.insert(
            id,
            Grant {
                token,
                meeting,
                participant,
                endpoint: None,
                counters: ReplayWindow::default(),
                newest_counter: None,
            },
        );
    }

    /// Forgets a token. Returns the endpoint that was bound with it, so the shell can close a
    /// stream connection.
    pub fn revoke(&mut self, token: &MediaToken) -> Option<Endpoint> {
        let grant = self.grants.remove(&BindingId::of(token))?;
        let endpoint = grant.endpoint?;
        self.unbind(endpoint, grant.meeting);
        Some(endpoint)
    }

    /// A stream connection closed: its binding (not its grant) goes, so the client may bind again.
    pub fn disconnected(&mut self, endpoint: Endpoint) {
        if let Some(id) = self.bound.get(&endpoint).copied() {
            let grant = self.grants.get_mut(&id).expect("bound tokens are granted");
            grant.endpoint = None;
            let meeting = grant.meeting;
            self.unbind(endpoint, meeting);
        }
    }

    fn unbind(&mut self, endpoint: Endpoint, meeting: MeetingId) {
        self.bound.remove(&endpoint);
        if let Some(members) = self.meetings.get_mut(&meeting) {
            members.remove(&endpoint);
            if members.is_empty() {
                self.meetings.remove(&meeting);
            }
        }
    }

    /// One packet arrived on the media port from `from`.
    pub fn handle_packet(&mut self, from: Endpoint, packet: &[u8]) -> Outcome {
        match classify_media(packet) {
            MediaKind::Rtp => self.handle_rtp(from, packet),
            MediaKind::Binding => self.handle_binding(from, packet),
            MediaKind::Unknown => self.drop(DropReason::Malformed),
        }
    }

    fn handle_rtp(&mut self, from: Endpoint, packet: &[u8]) -> Outcome {
        if RtpHeader::parse(packet).is_err() {
            return self.drop(DropReason::Malformed);
        }
        let Some(id) = self.bound.get(&from) else {
            return self.drop(DropReason::Unbound);
        };
        let meeting = self.grants[id].meeting;
        let to: Vec<Endpoint> = self.meetings[&meeting]
            .iter()
            .filter(|e| **e != from)
            .copied()
            .collect();
        self.count_forward(packet, to.len());
        Outcome::Forward(to)
    }

    /// Counts one RTP packet in and its `copies` out, whether it came from a participant or
    /// from a linked MMR.
    fn count_forward(&mut self, packet: &[u8], copies: usize) {
        self.counters.rtp_in += 1;
        self.counters.rtp_out += copies as u64;
        self.counters.rtp_bytes_in += packet.len() as u64;
        self.counters.rtp_bytes_out += (packet.len() * copies) as u64;
    }

    fn handle_binding(&mut self, from: Endpoint, packet: &[u8]) -> Outcome {
        let (decoded, txn, id, counter) = match Binding::decode(packet) {
            Ok(d) => match d.msg {
                Binding::Request {
                    txn,
                    username,
                    counter,
                } => (d, txn, username, counter),
                _ => return self.drop(DropReason::Unexpected),
            },
            Err(_) => return self.drop(DropReason::Malformed),
        };
        let refuse = |reason: &str| Binding::Error {
            txn,
            code: code::UNAUTHORIZED,
            reason: reason.into(),
        };
        let Some(grant) = self.grants.get_mut(&id) else {
            self.counters.refused_bad_token += 1;
            let reply = refuse("unknown or revoked media token").encode_unsigned();
            return Outcome::Refuse(reply, DropReason::BadToken);
        };
        if !decoded.verify(&grant.token) {
            // Someone who does not hold the token: say nothing they could use.
            self.counters.refused_bad_token += 1;
            let reply = refuse("the binding's integrity does not check").encode_unsigned();
            return Outcome::Refuse(reply, DropReason::BadToken);
        }
        let mapped = match from {
            Endpoint::Udp(addr) => addr,
            // On a stream the address is that of the connection; the shell knows it, the table
            // does not, and clients only use the reply as proof of the path.
            Endpoint::Stream(_) | Endpoint::Cascade(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        let success = Binding::Success { txn, mapped };
        let newest = grant.newest_counter.is_none_or(|n| counter > n);
        if !grant.counters.is_fresh(counter) || !(newest || grant.endpoint == Some(from)) {
            // A repeat of the request that bound this very endpoint (its answer was lost) is
            // answered again and changes nothing.
            if grant.newest_counter == Some(counter) && grant.endpoint == Some(from) {
                self.counters.bindings += 1;
                return Outcome::Reply(success.encode_signed(&grant.token));
            }
            // Seen already, or older than the binding that moved the endpoint last: a replay
            // (from another address, or later), or a stale request the client no longer needs.
            self.counters.refused_replayed += 1;
            let reply = Binding::Error {
                txn,
                code: code::STALE,
                reason: "stale binding counter".into(),
            };
            return Outcome::Refuse(reply.encode_signed(&grant.token), DropReason::Replayed);
        }
        grant.counters.accept(counter);
        let reply = success.encode_signed(&grant.token);
        if !newest {
            // A consent refresh that arrived after a newer one, from the same endpoint.
            self.counters.bindings += 1;
            return Outcome::Reply(reply);
        }
        grant.newest_counter = Some(counter);
        // A client may re-bind from a new endpoint (NAT rebinding, or after falling back to a
        // stream) with a newer counter: the newest endpoint replaces the old one.
        let meeting = grant.meeting;
        let old = grant.endpoint.replace(from);
        if let Some(old) = old.filter(|o| *o != from) {
            self.unbind(old, meeting);
            self.moved = Some((old, from));
        }
        if let Some(previous) = self.bound.insert(from, id).filter(|t| *t != id) {
            // The endpoint was bound to another grant: that grant loses its endpoint.
            if let Some(g) = self.grants.get_mut(&previous) {
                g.endpoint = None;
                let m = g.meeting;
                if let Some(members) = self.meetings.get_mut(&m) {
                    members.remove(&from);
                }
            }
        }
        self.meetings.entry(meeting).or_default().insert(from);
        self.counters.bindings += 1;
        Outcome::Reply(reply)
    }

    fn drop(&mut self, reason: DropReason) -> Outcome {
        match reason {
            DropReason::Malformed => self.counters.dropped_malformed += 1,
            DropReason::Unbound => self.counters.dropped_unbound += 1,
            DropReason::BadToken => self.counters.refused_bad_token += 1,
            DropReason::Replayed => self.counters.refused_replayed += 1,
            DropReason::Unexpected => self.counters.dropped_unexpected += 1,
        }
        Outcome::Drop(reason)
    }

    pub fn counters(&self) -> &MmrCounters {
        &self.counters
    }

    /// The endpoints of the last participant that re-bound elsewhere (old, new), once.
    pub fn take_moved(&mut self) -> Option<(Endpoint, Endpoint)> {
        self.moved.take()
    }

    /// Whether a participant is bound at this endpoint.
    pub fn is_bound(&self, endpoint: Endpoint) -> bool {
        self.bound.contains_key(&endpoint)
    }

    /// The participant bound at an endpoint, if any.
    pub fn participant_at(&self, endpoint: Endpoint) -> Option<(MeetingId, ParticipantId)> {
        let g = &self.grants[self.bound.get(&endpoint)?];
        Some((g.meeting, g.participant))
    }

    /// Forgets every grant and binding (counters stay): a re-linked MMR starts from what its
    /// controller grants it now, never from state the controller has already moved elsewhere.
    pub fn clear(&mut self) {
        self.grants.clear();
        self.bound.clear();
        self.meetings.clear();
    }

    /// The meetings this MMR holds grants for.
    pub fn meetings(&self) -> std::collections::BTreeSet<MeetingId> {
        self.grants.values().map(|g| g.meeting).collect()
    }

    /// Every endpoint bound now.
    pub fn bound(&self) -> impl Iterator<Item = Endpoint> + '_ {
        self.bound.keys().copied()
    }

    pub fn participants(&self) -> usize {
        self.grants.len()
    }
}

mod cascade;
#[cfg(test)]
mod tests;
