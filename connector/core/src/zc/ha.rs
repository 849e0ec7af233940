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

/// Slack between a lease running out and the peer (or the cloud) acting on it. Message transit
/// needs none (silence is measured from when a renewing message was heard, after it was sent);
/// this covers clocks running at slightly different rates and a lease holder's fence timer
/// firing late on a busy machine.
pub const LEASE_MARGIN_MS: u64 = 500;

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
    /// Whether the silent peer's meetings were claimed once its lease ran out (once per outage).
    takeover_started: bool,
    /// A peer link closed or failed since the peer was last heard: it is suspect at once.
    link_lost: bool,
}

impl Ha {
    pub fn new(peer_down_after_ms: u64) -> Ha {
        Ha {
            lease_ms: 0,
            lease_until_ms: 0,
            peer_down_after_ms,
            peer: None,
            peer_reported_down: false,
            takeover_started: false,
            link_lost: false,
        }
    }

    /// A link to or from the peer closed or failed: until it is heard again, joins for its
    /// meetings are told when they move here rather than sent to it.
    pub fn peer_link_lost(&mut self) {
        self.link_lost = true;
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
        self.takeover_started = false;
        self.link_lost = false;
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

    /// When `owner` is this controller's peer and is suspect — its link failed, or it has been
    /// silent for half the detection bound (a ping or two missed): how long until its meetings
    /// may be taken over here. Sending a client there meanwhile would only make it wait for a
    /// dead host's connect timeout.
    pub fn takeover_in_ms(&self, now_ms: u64, owner: &ControllerId) -> Option<u64> {
        let p = self.peer.as_ref().filter(|p| &p.id == owner)?;
        let silent_ms = now_ms.saturating_sub(p.last_heard_ms);
        (self.link_lost || silent_ms >= self.peer_down_after_ms / 2)
            .then(|| self.takeover_after_ms().saturating_sub(silent_ms))
    }

    /// When the silent peer's meetings may be claimed here, unless it is heard first: the
    /// moment its lease has provably run out. `None` once claimed, or while the peer answers.
    pub fn takeover_due_ms(&self) -> Option<u64> {
        let p = self.peer.as_ref().filter(|p| !p.meetings.is_empty())?;
        (self.lease_ms > 0 && !self.takeover_started)
            .then(|| p.last_heard_ms + self.takeover_after_ms())
    }

    /// The silent peer's lease has run out: the meetings it hosted when last heard, to claim
    /// now rather than when their participants come back. Once per outage.
    pub fn start_takeover(&mut self, now_ms: u64) -> Vec<HostedMeeting> {
        match self.takeover_due_ms() {
            Some(due) if due <= now_ms => {
                self.takeover_started = true;
                self.peer
                    .as_ref()
                    .map(|p| p.meetings.clone())
                    .unwrap_or_default()
            }
            _ => Vec::new(),
        }
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
                retry_after_ms: Some(in_ms.max(1)),
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
            ha.alive_peers(13_499),
            vec![b.clone()],
            "down, but its lease may still run"
        );
        assert!(ha.alive_peers(13_500).is_empty());
        assert_eq!(
            ha.takeover_in_ms(10_999, &b),
            None,
            "not silent long enough to suspect"
        );
        assert_eq!(ha.takeover_in_ms(11_000, &b), Some(2_500));
        assert_eq!(ha.takeover_in_ms(12_500, &b), Some(1_000));
        assert_eq!(ha.takeover_in_ms(15_000, &b), Some(0));
        assert_eq!(ha.takeover_in_ms(15_000, &ControllerId("c".into())), None);
        ha.heard_peer(10_000, b.clone());
        ha.peer_link_lost();
        assert_eq!(
            ha.takeover_in_ms(10_100, &b),
            Some(3_400),
            "a peer whose link failed is suspect at once"
        );
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
            ClaimOutcome::Retry { message, retry_after_ms: Some(1_000) } if message.contains("within 1000 ms")
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

    #[test]
    fn the_silent_peers_meetings_are_claimed_once_the_moment_its_lease_is_out() {
        let mut ha = Ha::new(2_000);
        ha.set_lease_ms(1_500);
        let b = ControllerId("b".into());
        let hosted = HostedMeeting {
            meeting: MeetingId(7),
            epoch: 1,
            mmr: mc_wire::MmrId("b-mmr".into()),
            participants: 3,
        };
        ha.heard_peer(10_000, b.clone());
        assert_eq!(ha.takeover_due_ms(), None, "a peer that hosts nothing");
        ha.heard_peer(10_500, b.clone()).meetings = vec![hosted.clone()];
        assert_eq!(
            ha.takeover_due_ms(),
            Some(12_500),
            "2 s: the lease and the margin"
        );
        assert!(ha.start_takeover(12_499).is_empty(), "not before");
        assert_eq!(ha.start_takeover(12_500), vec![hosted.clone()]);
        assert_eq!(ha.takeover_due_ms(), None, "once per outage");
        assert!(ha.start_takeover(13_000).is_empty());
        ha.heard_peer(20_000, b.clone());
        assert_eq!(
            ha.takeover_due_ms(),
            Some(22_000),
            "a peer heard again can be taken over again if it goes silent again"
        );
    }
}
