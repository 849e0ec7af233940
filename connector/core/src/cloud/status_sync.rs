//! Cloud status sync: controllers register and heartbeat; clients are steered to live ones. It is
//! also the zone's meeting-ownership registry: a meeting has at most one owner, and each grant
//! has a new epoch.
//!
//! Ownership moves from a controller only when the cloud has not heard from it for its lease
//! plus a margin *and* the claimant has not heard from it on the peer link for as long either.
//! The controller's lease is renewed only by cloud acks and peer pongs, each for a message it
//! sent before the cloud or the peer heard it, so by then it has stopped hosting: a meeting is
//! never hosted twice. `down_after_ms` (longer) only decides which controllers clients are sent
//! to.

use crate::zc::ha::LEASE_MARGIN_MS;
use mc_wire::status::{ClaimOutcome, Load, OwnedMeeting, SignallingEndpoints};
use mc_wire::{ControllerId, MeetingId};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ControllerRecord {
    pub id: ControllerId,
    pub zone: String,
    pub signalling: SignallingEndpoints,
    pub capacity: Load,
    pub load: Load,
    pub last_heard_ms: u64,
    pub connected: bool,
    /// Takes new meetings (false while drained). Live and ready are different things: a drained
    /// controller is live, and still serves the meetings it has.
    pub ready: bool,
    /// Which registration (connection) is current, so a stale connection closing late cannot
    /// mark a re-registered controller down.
    #[serde(skip)]
    pub registration: u64,
}

#[derive(Debug)]
pub struct StatusSync {
    /// A controller not heard from for this long is down.
    pub down_after_ms: u64,
    /// How long an ack keeps a controller's ownership valid.
    lease_ms: u64,
    controllers: BTreeMap<ControllerId, ControllerRecord>,
    registrations: u64,
    owners: BTreeMap<MeetingId, (ControllerId, u64)>,
    next_epoch: u64,
    /// Until then, unowned meetings are not granted: after a restart the registry is empty until
    /// the controllers re-register with what they own.
    grace_until_ms: u64,
    /// Meetings granted away from a previous owner, for the shell to report.
    takeovers: VecDeque<Takeover>,
}

/// A meeting granted to a controller while another owned it (its lease had run out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Takeover {
    pub meeting: MeetingId,
    pub from: ControllerId,
    pub to: ControllerId,
    pub epoch: u64,
}

impl StatusSync {
    /// `restarted`: the cloud ran before (its state directory existed), so controllers may own
    /// meetings this fresh registry does not know of yet.
    pub fn new(down_after_ms: u64, now_ms: u64, restarted: bool) -> StatusSync {
        StatusSync {
            down_after_ms,
            lease_ms: down_after_ms * 3 / 5,
            controllers: BTreeMap::new(),
            registrations: 0,
            owners: BTreeMap::new(),
            // Epochs only grow, across restarts too (while the clock does).
            next_epoch: now_ms,
            grace_until_ms: if restarted { now_ms + down_after_ms } else { 0 },
            takeovers: VecDeque::new(),
        }
    }

    /// The lease handed to controllers (3/5 of `down_after_ms` unless set).
    pub fn with_lease_ms(mut self, lease_ms: u64) -> StatusSync {
        self.lease_ms = lease_ms;
        self
    }

    /// How long an ack keeps a controller's ownership valid.
    pub fn lease_ms(&self) -> u64 {
        self.lease_ms
    }

    /// A (re-)registering controller lists what it owns. Its meetings that were granted to
    /// another controller meanwhile are returned (it must stop hosting them); the rest are its
    /// own again, and anything else the registry held for it is released.
    pub fn adopt(&mut self, id: &ControllerId, meetings: &[OwnedMeeting]) -> Vec<MeetingId> {
        let listed: BTreeMap<MeetingId, u64> =
            meetings.iter().map(|m| (m.meeting, m.epoch)).collect();
        self.owners
            .retain(|m, (owner, _)| owner != id || listed.contains_key(m));
        let mut revoked = Vec::new();
        for (meeting, epoch) in listed {
            match self.owners.get(&meeting) {
                Some((owner, e)) if owner != id && *e > epoch => revoked.push(meeting),
                _ => {
                    self.next_epoch = self.next_epoch.max(epoch + 1);
                    self.owners.insert(meeting, (id.clone(), epoch));
                }
            }
        }
        revoked
    }

    /// Decides whether `claimant` may host `meeting`.
    pub fn claim(
        &mut self,
        now_ms: u64,
        claimant: &ControllerId,
        meeting: MeetingId,
        alive_peers: &[ControllerId],
    ) -> ClaimOutcome {
        if let Some((owner, epoch)) = self.owners.get(&meeting) {
            if owner == claimant {
                return ClaimOutcome::Granted { epoch: *epoch };
            }
            let record = self.controllers.get(owner);
            // Whether the connection is open says nothing about whether the owner still hosts:
            // its lease (renewed by each ack) may run for `lease_ms` after the cloud last heard
            // from it, and no longer.
            let holds_for_ms = record.and_then(|c| {
                let silent_ms = now_ms.saturating_sub(c.last_heard_ms);
                (self.lease_ms + LEASE_MARGIN_MS + 1).checked_sub(silent_ms)
            });
            if holds_for_ms.is_some() || alive_peers.contains(owner) {
                return match record {
                    // Silent, and the claimant has not heard it either: it is failing over, and
                    // the meeting can move once the lease is out.
                    Some(c) if !c.connected && !alive_peers.contains(owner) => {
                        ClaimOutcome::Retry {
                            message: format!("controller {owner}, which hosts meeting {meeting}, is gone; the meeting can move once its lease has run out"),
                            retry_after_ms: holds_for_ms,
                        }
                    }
                    Some(c) => ClaimOutcome::HostedBy {
                        controller: owner.clone(),
                        signalling: c.signalling.clone(),
                    },
                    None => ClaimOutcome::Retry {
                        message: format!("meeting {meeting} belongs to {owner}, which has not registered since the cloud restarted"),
                        retry_after_ms: None,
                    },
                };
            }
            // The owner is silent to the cloud and to the claimant: its lease has run out.
        } else if now_ms < self.grace_until_ms {
            return ClaimOutcome::Retry {
                message: format!(
                    "the cloud restarted and is relearning which controller hosts which meeting ({} ms left)",
                    self.grace_until_ms - now_ms
                ),
                retry_after_ms: Some(self.grace_until_ms - now_ms),
            };
        }
        self.next_epoch += 1;
        let before = self
            .owners
            .insert(meeting, (claimant.clone(), self.next_epoch));
        if let Some((from, _)) = before {
            self.takeovers.push_back(Takeover {
                meeting,
                from,
                to: claimant.clone(),
                epoch: self.next_epoch,
            });
        }
        ClaimOutcome::Granted {
            epoch: self.next_epoch,
        }
    }

    /// The next takeover decided by [`StatusSync::claim`], to report.
    pub fn poll_takeover(&mut self) -> Option<Takeover> {
        self.takeovers.pop_front()
    }

    /// The owner gave the meeting up. A stale release (an older epoch) changes nothing.
    pub fn release(&mut self, id: &ControllerId, meeting: MeetingId, epoch: u64) -> bool {
        if self.owners.get(&meeting) == Some(&(id.clone(), epoch)) {
            self.owners.remove(&meeting);
            true
        } else {
            false
        }
    }

    /// The live controller hosting `meeting`, if any: clients joining it go there first.
    pub fn live_owner(&self, now_ms: u64, meeting: MeetingId) -> Option<&ControllerRecord> {
        let (owner, _) = self.owners.get(&meeting)?;
        self.controllers
            .get(owner)
            .filter(|c| self.is_live(now_ms, c))
    }

    /// Every owned meeting with its owner and epoch.
    pub fn owners(&self) -> impl Iterator<Item = (&MeetingId, &(ControllerId, u64))> {
        self.owners.iter()
    }

    /// Returns the registration number to quote in [`StatusSync::disconnected`].
    pub fn register(
        &mut self,
        now_ms: u64,
        id: ControllerId,
        zone: String,
        signalling: SignallingEndpoints,
        capacity: Load,
    ) -> u64 {
        self.registrations += 1;
        let registration = self.registrations;
        let load = self
            .controllers
            .get(&id)
            .map_or(Load::default(), |c| c.load);
        self.controllers.insert(
            id.clone(),
            ControllerRecord {
                id,
                zone,
                signalling,
                capacity,
                load,
                last_heard_ms: now_ms,
                connected: true,
                ready: true,
                registration,
            },
        );
        registration
    }

    /// Returns false for a controller that never registered.
    pub fn heartbeat(
        &mut self,
        now_ms: u64,
        id: &ControllerId,
        load: Load,
        capacity: Load,
        ready: bool,
    ) -> bool {
        match self.controllers.get_mut(id) {
            Some(c) => {
                c.ready = ready;
                c.load = load;
                c.capacity = capacity;
                c.last_heard_ms = now_ms;
                c.connected = true;
                true
            }
            None => false,
        }
    }

    pub fn disconnected(&mut self, id: &ControllerId, registration: u64) {
        if let Some(c) = self
            .controllers
            .get_mut(id)
            .filter(|c| c.registration == registration)
        {
            c.connected = false;
        }
    }

    pub fn is_live(&self, now_ms: u64, c: &ControllerRecord) -> bool {
        c.connected && now_ms.saturating_sub(c.last_heard_ms) <= self.down_after_ms
    }

    /// Live, ready controllers, least loaded first, for a client to try in order: fewest meetings
    /// owned, then fewest participants reported. Ownership changes with every claim, while
    /// reported load lags by a report interval: ordered by reports alone, every meeting that
    /// starts at the top of the hour would go to the same controller of a pair (and it has the
    /// meeting limit, too).
    pub fn live_controllers(&self, now_ms: u64) -> Vec<&ControllerRecord> {
        let mut owned: BTreeMap<&ControllerId, usize> = BTreeMap::new();
        for (owner, _) in self.owners.values() {
            *owned.entry(owner).or_default() += 1;
        }
        let mut live: Vec<_> = self
            .controllers
            .values()
            .filter(|c| self.is_live(now_ms, c) && c.ready)
            .collect();
        live.sort_by_key(|c| {
            (
                owned.get(&c.id).copied().unwrap_or(0),
                c.load.participants,
                &c.id,
            )
        });
        live
    }

    pub fn all(&self) -> impl Iterator<Item = &ControllerRecord> {
        self.controllers.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep() -> SignallingEndpoints {
        SignallingEndpoints {
            host: "127.0.0.1".into(),
            port: 8802,
            fallback_port: 443,
        }
    }

    #[test]
    fn new_meetings_spread_over_a_pair_before_load_reports_catch_up() {
        let mut s = StatusSync::new(3_000, 0, false);
        let (a, b) = (ControllerId("a".into()), ControllerId("b".into()));
        for c in [&a, &b] {
            s.register(0, c.clone(), "z".into(), ep(), Load::default());
        }
        let first = |s: &StatusSync| s.live_controllers(100)[0].id.clone();
        // A burst of meetings starting at once: no load report in between, yet each new
        // meeting is offered to the controller owning fewer.
        let mut to = Vec::new();
        for m in 1..=4 {
            let c = first(&s);
            assert!(matches!(
                s.claim(100, &c, MeetingId(m), &[]),
                ClaimOutcome::Granted { .. }
            ));
            to.push(c.0);
        }
        assert_eq!(to, ["a", "b", "a", "b"]);
    }

    #[test]
    fn silent_controllers_stop_being_offered() {
        let mut s = StatusSync::new(3_000, 0, false);
        s.register(
            0,
            ControllerId("a".into()),
            "z".into(),
            ep(),
            Load {
                participants: 200,
                meetings: 100,
            },
        );
        let _ = s.register(
            0,
            ControllerId("b".into()),
            "z".into(),
            ep(),
            Load {
                participants: 200,
                meetings: 100,
            },
        );
        assert!(s.heartbeat(
            2_000,
            &ControllerId("a".into()),
            Load {
                participants: 5,
                meetings: 1
            },
            Load {
                participants: 400,
                meetings: 100
            },
            true
        ));
        assert_eq!(s.all().next().unwrap().capacity.participants, 400);
        assert_eq!(s.live_controllers(2_500).len(), 2);
        let live: Vec<_> = s
            .live_controllers(4_000)
            .iter()
            .map(|c| c.id.0.clone())
            .collect();
        assert_eq!(live, vec!["a"]);
        let again = s.register(
            3_900,
            ControllerId("a".into()),
            "z".into(),
            ep(),
            Load::default(),
        );
        s.disconnected(&ControllerId("a".into()), again - 1);
        assert_eq!(
            s.live_controllers(4_000).len(),
            1,
            "a stale connection closing does not mark it down"
        );
        s.disconnected(&ControllerId("a".into()), again);
        assert!(s.live_controllers(4_000).is_empty());
        assert!(!s.heartbeat(
            0,
            &ControllerId("nobody".into()),
            Load::default(),
            Load::default(),
            true
        ));
    }

    fn id(s: &str) -> ControllerId {
        ControllerId(s.into())
    }

    #[test]
    fn a_meeting_moves_only_when_its_owner_is_silent_to_the_cloud_and_the_claimant() {
        let mut s = StatusSync::new(5_000, 1_000, false);
        for c in ["a", "b"] {
            s.register(1_000, id(c), "z".into(), ep(), Load::default());
        }
        let m = MeetingId(7);
        let ClaimOutcome::Granted { epoch: e1 } = s.claim(1_000, &id("a"), m, &[]) else {
            panic!("an unowned meeting is granted")
        };
        assert_eq!(
            s.claim(1_100, &id("a"), m, &[]),
            ClaimOutcome::Granted { epoch: e1 }
        );
        assert!(matches!(
            s.claim(1_200, &id("b"), m, &[]),
            ClaimOutcome::HostedBy { controller, .. } if controller == id("a")
        ));
        s.heartbeat(2_000, &id("b"), Load::default(), Load::default(), true);
        s.heartbeat(6_500, &id("b"), Load::default(), Load::default(), true);
        // a is silent to the cloud, but b still hears it: a keeps its meeting.
        assert!(matches!(
            s.claim(6_500, &id("b"), m, &[id("a")]),
            ClaimOutcome::HostedBy { .. }
        ));
        let ClaimOutcome::Granted { epoch: e2 } = s.claim(6_500, &id("b"), m, &[]) else {
            panic!("silent to both: taken over")
        };
        assert!(e2 > e1, "a takeover is a new epoch");
        assert_eq!(
            s.poll_takeover(),
            Some(Takeover {
                meeting: m,
                from: id("a"),
                to: id("b"),
                epoch: e2
            }),
            "the takeover is reported once"
        );
        assert_eq!(s.poll_takeover(), None);
        assert!(
            !s.release(&id("a"), m, e1),
            "a stale release changes nothing"
        );
        // a comes back still believing it owns the meeting: it is told it lost it.
        s.register(7_000, id("a"), "z".into(), ep(), Load::default());
        assert_eq!(
            s.adopt(
                &id("a"),
                &[OwnedMeeting {
                    meeting: m,
                    epoch: e1
                }]
            ),
            vec![m]
        );
        assert_eq!(s.live_owner(7_000, m).unwrap().id, id("b"));
        assert!(s.release(&id("b"), m, e2));
        assert!(s.live_owner(7_000, m).is_none());
    }

    #[test]
    fn after_a_restart_unowned_meetings_wait_for_the_controllers_to_re_register() {
        let mut s = StatusSync::new(5_000, 10_000, true);
        s.register(10_100, id("b"), "z".into(), ep(), Load::default());
        assert!(matches!(
            s.claim(10_200, &id("b"), MeetingId(1), &[]),
            ClaimOutcome::Retry { .. }
        ));
        s.register(10_300, id("a"), "z".into(), ep(), Load::default());
        assert!(s
            .adopt(
                &id("a"),
                &[OwnedMeeting {
                    meeting: MeetingId(1),
                    epoch: 42
                }]
            )
            .is_empty());
        assert!(matches!(
            s.claim(10_400, &id("b"), MeetingId(1), &[]),
            ClaimOutcome::HostedBy { .. }
        ));
        assert!(matches!(
            s.claim(15_001, &id("b"), MeetingId(2), &[]),
            ClaimOutcome::Granted { epoch } if epoch > 42
        ));
    }
}
