//! The lease and the peer view of a controller in an HA pair (DESIGN §5).
//!
//! The lease says how long this controller may go on hosting its meetings: each cloud ack and
//! each peer pong extends it to `sent_ms + lease_ms`, where `sent_ms` is when the acknowledged
//! heartbeat or ping left (this controller's clock, so no clocks need to agree). Both the cloud
//! and the peer promise not to hand this controller's meetings over for longer than that, so once
//! the lease runs out the controller must fence, and then nothing it hosted is hosted twice.
//!
//! The peer view is the other side of the same promise: the peer is *alive* (its meetings are
//! its own) until it has been silent for longer than its lease plus a margin.

use mc_wire::peer::HostedMeeting;
use mc_wire::status::{ClaimOutcome, Load};
use mc_wire::{ControllerId, MeetingId};

/// Slack between a lease running out and the peer (or the cloud) acting on it: messages take
/// time, and clocks run at slightly different rates.
pub const LEASE_MARGIN_MS: u64 = 1_000;

#[derive(Debug, Clone)]
pub struct PeerView {
    pub id: ControllerId,
    pub last_heard_ms: u64,
    pub meetings: Vec<HostedMeeting>,
    pub load: Load,
    pub capacity: Load,
}

#[derive(Debug)]
pub struct Ha {
    /// Learnt from the cloud at registration; 0 until then.
    lease_ms: u64,
    lease_until_ms: u64,
    /// After this much silence the peer is reported down.
    peer_down_after_ms: u64,
    peer: Option<PeerView>,
    /// Whether the peer was reported down (so it is reported once per outage).
    peer_reported_down: bool,
}

impl Ha {
    pub fn new(peer_down_after_ms: u64) -> Ha {
        Ha {
            lease_ms: 0,
            lease_until_ms: 0,
            peer_down_after_ms,
            peer: None,
            peer_reported_down: false,
        }
    }

    pub fn set_lease_ms(&mut self, lease_ms: u64) {
        self.lease_ms = lease_ms;
    }

    pub fn lease_ms(&self) -> u64 {
        self.lease_ms
    }

    /// A cloud ack or peer pong for a message sent at `sent_ms`.
    pub fn renew(&mut self, sent_ms: u64) {
        self.lease_until_ms = self.lease_until_ms.max(sent_ms + self.lease_ms);
    }

    /// When the lease runs out (0 before any acknowledgement).
    pub fn lease_until_ms(&self) -> u64 {
        self.lease_until_ms
    }

    /// When the peer will have been silent past the detection bound, unless heard before; `None`
    /// once it has been reported down, or before it was ever heard.
    pub fn peer_down_due_ms(&self) -> Option<u64> {
        let p = self.peer.as_ref().filter(|_| !self.peer_reported_down)?;
        Some(p.last_heard_ms + self.peer_down_after_ms)
    }

    pub fn lease_expired(&self, now_ms: u64) -> bool {
        now_ms >= self.lease_until_ms
    }

    /// Heard the peer (a ping or a pong).
    pub fn heard_peer(&mut self, now_ms: u64, id: ControllerId) -> &mut PeerView {
        self.peer_reported_down = false;
        let view = self.peer.get_or_insert_with(|| PeerView {
            id: id.clone(),
            last_heard_ms: now_ms,
            meetings: Vec::new(),
            load: Load::default(),
            capacity: Load::default(),
        });
        view.id = id;
        view.last_heard_ms = now_ms;
        view
    }

    pub fn peer(&self) -> Option<&PeerView> {
        self.peer.as_ref()
    }

    /// A claim for `meeting` was granted here: whether that took it over from the peer (silent
    /// past the detection bound, and hosting it when last heard). Counted once: the meeting
    /// leaves the silent peer's view.
    pub fn took_over(&mut self, meeting: MeetingId) -> bool {
        let Some(p) = self.peer.as_mut().filter(|_| self.peer_reported_down) else {
            return false;
        };
        let before = p.meetings.len();
        p.meetings.retain(|m| m.meeting != meeting);
        p.meetings.len() < before
    }

    /// The peer has been heard and not reported down since.
    pub fn peer_up(&self) -> bool {
        self.peer.is_some() && !self.peer_reported_down
    }

    /// How long the peer may be silent before this controller may take its meetings over.
    fn takeover_after_ms(&self) -> u64 {
        self.peer_down_after_ms.max(self.lease_ms + LEASE_MARGIN_MS)
    }

    /// The peers whose meetings are still theirs, to list in a claim.
    pub fn alive_peers(&self, now_ms: u64) -> Vec<ControllerId> {
        self.peer
            .iter()
            .filter(|p| now_ms.saturating_sub(p.last_heard_ms) < self.takeover_after_ms())
            .map(|p| p.id.clone())
            .collect()
    }

    /// When `owner` is this controller's peer and has gone silent past the detection bound: how
    /// long until its meetings may be taken over here. Sending a client there meanwhile would
    /// only make it wait for a dead host's connect timeout.
    pub fn takeover_in_ms(&self, now_ms: u64, owner: &ControllerId) -> Option<u64> {
        let p = self.peer.as_ref().filter(|p| &p.id == owner)?;
        let silent_ms = now_ms.saturating_sub(p.last_heard_ms);
        (silent_ms >= self.peer_down_after_ms)
            .then(|| self.takeover_after_ms().saturating_sub(silent_ms))
    }

    /// The cloud's answer to a claim, as the joins waiting on it should hear it: a meeting hosted
    /// by our peer while the peer is silent moves here shortly, so they retry rather than chase a
    /// dead host (and its connect timeout).
    pub fn judge_claim(
        &self,
        now_ms: u64,
        meeting: MeetingId,
        outcome: ClaimOutcome,
    ) -> ClaimOutcome {
        let ClaimOutcome::HostedBy { controller, .. } = &outcome else {
            return outcome;
        };
        match self.takeover_in_ms(now_ms, controller) {
            Some(in_ms) => ClaimOutcome::Retry {
                message: format!("controller {controller}, which hosts meeting {meeting}, is not answering; the meeting moves here within {in_ms} ms, once its lease has run out"),
            },
            None => outcome,
        }
    }

    /// The peer has just gone silent past the detection bound: returns it once per outage.
    pub fn peer_newly_down(&mut self, now_ms: u64) -> Option<&PeerView> {
        let p = self.peer.as_ref()?;
        if self.peer_reported_down
            || now_ms.saturating_sub(p.last_heard_ms) < self.peer_down_after_ms
        {
            return None;
        }
        self.peer_reported_down = true;
        self.peer.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lease_outlives_only_what_was_acknowledged() {
        let mut ha = Ha::new(3_000);
        ha.set_lease_ms(3_000);
        assert!(ha.lease_expired(0), "no lease before any ack");
        ha.renew(1_000);
        ha.renew(500); // a late ack of an older heartbeat does not shorten it
        assert!(!ha.lease_expired(3_999));
        assert!(ha.lease_expired(4_000));
    }

    #[test]
    fn a_peer_is_alive_until_silent_past_its_lease_and_the_margin() {
        let mut ha = Ha::new(2_000);
        ha.set_lease_ms(3_000);
        let b = ControllerId("b".into());
        ha.heard_peer(10_000, b.clone());
        assert!(ha.peer_newly_down(11_999).is_none());
        assert_eq!(ha.peer_newly_down(12_000).unwrap().id, b);
        assert!(ha.peer_newly_down(12_500).is_none(), "reported once");
        assert_eq!(
            ha.alive_peers(13_999),
            vec![b.clone()],
            "down, but its lease may still run"
        );
        assert!(ha.alive_peers(14_000).is_empty());
        assert_eq!(
            ha.takeover_in_ms(11_000, &b),
            None,
            "not silent long enough"
        );
        assert_eq!(ha.takeover_in_ms(12_500, &b), Some(1_500));
        assert_eq!(ha.takeover_in_ms(15_000, &b), Some(0));
        assert_eq!(ha.takeover_in_ms(15_000, &ControllerId("c".into())), None);
        let hosted_by_b = ClaimOutcome::HostedBy {
            controller: b.clone(),
            signalling: mc_wire::status::SignallingEndpoints {
                host: "b".into(),
                port: 8802,
                fallback_port: 443,
            },
        };
        assert!(matches!(
            ha.judge_claim(12_500, MeetingId(1), hosted_by_b.clone()),
            ClaimOutcome::Retry { message } if message.contains("within 1500 ms")
        ));
        ha.heard_peer(14_100, b.clone());
        assert_eq!(ha.alive_peers(14_100), vec![b.clone()]);
        assert_eq!(ha.takeover_in_ms(14_200, &b), None);
        assert_eq!(
            ha.judge_claim(14_200, MeetingId(1), hosted_by_b.clone()),
            hosted_by_b,
            "a peer that answers keeps its meetings: the client is redirected there"
        );
    }

    #[test]
    fn a_takeover_is_a_meeting_of_a_silent_peer_counted_once() {
        let mut ha = Ha::new(2_000);
        ha.set_lease_ms(3_000);
        let b = ControllerId("b".into());
        let hosted = |m: u64| HostedMeeting {
            meeting: MeetingId(m),
            epoch: 1,
            mmr: mc_wire::MmrId("b-mmr".into()),
            participants: 3,
        };
        ha.heard_peer(10_000, b.clone()).meetings = vec![hosted(1), hosted(2)];
        assert!(
            !ha.took_over(MeetingId(1)),
            "a meeting the peer hands over while it answers (a drain) is no takeover"
        );
        assert!(ha.peer_newly_down(12_000).is_some());
        assert!(ha.took_over(MeetingId(1)));
        assert!(
            !ha.took_over(MeetingId(1)),
            "the same meeting claimed again"
        );
        assert!(!ha.took_over(MeetingId(3)), "never the peer's");
        assert!(ha.took_over(MeetingId(2)));
    }
}
