//! Meetings cascaded across MMRs (DESIGN §5): the shell numbers each link to another MMR, and
//! the ZC says which meetings each link carries. A participant's packet goes once to every
//! linked MMR of its meeting (it is one more member of the meeting here); a packet from a link
//! goes to this MMR's own participants of that meeting only, never to another link, so nothing
//! loops and every participant hears everyone once.

use super::{DropReason, Endpoint, Forwarding, Outcome};
use mc_wire::rtp::RtpHeader;
use mc_wire::MeetingId;

impl Forwarding {
    /// `meeting` also runs on the MMR at the other end of `link`.
    pub fn attach_cascade(&mut self, meeting: MeetingId, link: u64) {
        self.meetings
            .entry(meeting)
            .or_default()
            .insert(Endpoint::Cascade(link));
    }

    /// `meeting` no longer runs on the MMR at the other end of `link`.
    pub fn detach_cascade(&mut self, meeting: MeetingId, link: u64) {
        if let Some(members) = self.meetings.get_mut(&meeting) {
            members.remove(&Endpoint::Cascade(link));
            if members.is_empty() {
                self.meetings.remove(&meeting);
            }
        }
    }

    /// The meetings `link` carries now.
    pub fn cascaded_on(&self, link: u64) -> Vec<MeetingId> {
        self.meetings
            .iter()
            .filter(|(_, members)| members.contains(&Endpoint::Cascade(link)))
            .map(|(m, _)| *m)
            .collect()
    }

    /// A packet of `meeting` from the MMR at the other end of `link`: to this MMR's own
    /// participants of the meeting. A link that does not carry the meeting, or a packet that is
    /// not RTP, is dropped and counted.
    pub fn from_cascade(&mut self, link: u64, meeting: MeetingId, packet: &[u8]) -> Outcome {
        if RtpHeader::parse(packet).is_err() {
            return self.drop(DropReason::Malformed);
        }
        let Some(members) = self
            .meetings
            .get(&meeting)
            .filter(|m| m.contains(&Endpoint::Cascade(link)))
        else {
            return self.drop(DropReason::Unbound);
        };
        let to: Vec<Endpoint> = members
            .iter()
            .filter(|e| !matches!(e, Endpoint::Cascade(_)))
            .copied()
            .collect();
        self.count_forward(packet, to.len());
        Outcome::Forward(to)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mc_wire::binding::Binding;
    use mc_wire::{MediaToken, ParticipantId};

    fn rtp() -> Vec<u8> {
        let mut p = vec![0x80, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9];
        p.extend_from_slice(&[0; 20]);
        p
    }

    fn bind(f: &mut Forwarding, n: u8, meeting: u64) -> Endpoint {
        let token = MediaToken::from_bytes(vec![n; 16]);
        f.admit(token.clone(), MeetingId(meeting), ParticipantId(n as u64));
        let e = Endpoint::Udp(([10, 0, 0, n], 5000).into());
        let req = Binding::Request {
            txn: [n; 12],
            username: mc_wire::binding::BindingId::of(&token),
            counter: 1,
        };
        assert!(matches!(
            f.handle_packet(e, &req.encode_signed(&token)),
            Outcome::Reply(_)
        ));
        e
    }

    fn sent(o: Outcome) -> Vec<Endpoint> {
        match o {
            Outcome::Forward(mut to) => {
                to.sort();
                to
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_participants_packet_goes_once_to_each_linked_mmr_and_a_linked_mmrs_only_to_our_own() {
        let mut f = Forwarding::new();
        let (a, b) = (bind(&mut f, 1, 7), bind(&mut f, 2, 7));
        let other_meeting = bind(&mut f, 3, 8);
        f.attach_cascade(MeetingId(7), 100);
        f.attach_cascade(MeetingId(7), 101);
        f.attach_cascade(MeetingId(8), 100);
        let mut want = vec![b, Endpoint::Cascade(100), Endpoint::Cascade(101)];
        want.sort();
        assert_eq!(sent(f.handle_packet(a, &rtp())), want);
        // From link 100: our own participants of meeting 7, never back out on link 101.
        assert_eq!(sent(f.from_cascade(100, MeetingId(7), &rtp())), vec![a, b]);
        assert_eq!(
            sent(f.from_cascade(100, MeetingId(8), &rtp())),
            vec![other_meeting]
        );
        assert_eq!(f.cascaded_on(100), vec![MeetingId(7), MeetingId(8)]);
        // A link that does not carry the meeting, and garbage, are dropped and counted.
        assert!(matches!(
            f.from_cascade(102, MeetingId(7), &rtp()),
            Outcome::Drop(DropReason::Unbound)
        ));
        assert!(matches!(
            f.from_cascade(100, MeetingId(7), b"garbage"),
            Outcome::Drop(DropReason::Malformed)
        ));
        f.detach_cascade(MeetingId(7), 101);
        let mut want = vec![b, Endpoint::Cascade(100)];
        want.sort();
        assert_eq!(sent(f.handle_packet(a, &rtp())), want);
        assert!(matches!(
            f.from_cascade(101, MeetingId(7), &rtp()),
            Outcome::Drop(DropReason::Unbound)
        ));
    }
}
