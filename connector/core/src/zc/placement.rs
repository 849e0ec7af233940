//! Which MMR hosts a new meeting: the healthy MMR with room whose load fraction is lowest (ties
//! go to the smaller id, so the choice is deterministic).

use mc_wire::signal::RejectReason;
use mc_wire::MmrId;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MmrState {
    pub capacity: u32,
    pub participants: u32,
    pub healthy: bool,
    /// Drained by an operator: keeps its meetings until they move, takes no new ones.
    pub draining: bool,
    pub media: mc_wire::signal::MediaEndpoints,
    /// Where other MMRs link to this one for a cascaded meeting; `None`: it takes no part.
    pub cascade_port: Option<u16>,
}

impl MmrState {
    pub fn has_room(&self) -> bool {
        self.participants < self.capacity
    }
}

/// Picks the MMR for a new meeting, or says why none can take it. `previous`, the MMR the meeting
/// was last on, is taken whenever it can host: its grants for the meeting may still be on their
/// way out, and only there do the revocations reach the MMR (on its one ordered link) before
/// the new grants, so the meeting is never on two MMRs at once.
pub fn place_new_meeting(
    mmrs: &BTreeMap<MmrId, MmrState>,
    previous: Option<&MmrId>,
) -> Result<MmrId, RejectReason> {
    if let Some((id, _)) = previous
        .and_then(|id| mmrs.get_key_value(id))
        .filter(|(_, m)| m.healthy && !m.draining && m.has_room())
    {
        return Ok(id.clone());
    }
    let mut healthy = mmrs
        .iter()
        .filter(|(_, m)| m.healthy && !m.draining)
        .peekable();
    if healthy.peek().is_none() {
        return Err(RejectReason::NoMmrAvailable);
    }
    healthy
        .filter(|(_, m)| m.has_room())
        // Compare participants/capacity as fractions without floating point.
        .min_by(|(a_id, a), (b_id, b)| {
            let lhs = a.participants as u64 * b.capacity as u64;
            let rhs = b.participants as u64 * a.capacity as u64;
            lhs.cmp(&rhs).then_with(|| a_id.cmp(b_id))
        })
        .map(|(id, _)| id.clone())
        .ok_or(RejectReason::ZoneFull)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mc_wire::signal::MediaEndpoints;

    fn mmr(capacity: u32, participants: u32, healthy: bool) -> MmrState {
        let media = MediaEndpoints {
            host: "h".into(),
            udp_port: 1,
            tcp_port: 1,
            tls_port: 1,
        };
        MmrState {
            capacity,
            participants,
            healthy,
            draining: false,
            media,
            cascade_port: None,
        }
    }

    #[test]
    fn least_loaded_healthy_mmr_with_room_wins() {
        let mut m = BTreeMap::new();
        m.insert(MmrId("a".into()), mmr(200, 150, true));
        m.insert(MmrId("b".into()), mmr(100, 50, true));
        m.insert(MmrId("c".into()), mmr(200, 0, false));
        assert_eq!(place_new_meeting(&m, None), Ok(MmrId("b".into())));
    }

    #[test]
    fn a_draining_mmr_takes_no_new_meeting() {
        let mut m = BTreeMap::new();
        m.insert(
            MmrId("a".into()),
            MmrState {
                draining: true,
                ..mmr(200, 0, true)
            },
        );
        assert_eq!(
            place_new_meeting(&m, None),
            Err(RejectReason::NoMmrAvailable)
        );
        m.insert(MmrId("b".into()), mmr(200, 150, true));
        assert_eq!(place_new_meeting(&m, None), Ok(MmrId("b".into())));
    }

    #[test]
    fn full_and_empty_zones_say_why() {
        let mut m = BTreeMap::new();
        assert_eq!(
            place_new_meeting(&m, None),
            Err(RejectReason::NoMmrAvailable)
        );
        m.insert(MmrId("a".into()), mmr(2, 2, true));
        assert_eq!(place_new_meeting(&m, None), Err(RejectReason::ZoneFull));
    }
}
