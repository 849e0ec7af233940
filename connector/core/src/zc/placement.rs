//! Which MMR hosts a new meeting: the healthy MMR with room whose load fraction is lowest (ties
//! go to the smaller id, so the choice is deterministic). A meeting expected to outgrow that MMR
//! (its size hint) is spread over more from the start ([`spread_for`]).

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

    pub fn free_seats(&self) -> u32 {
        self.capacity.saturating_sub(self.participants)
    }
}

/// Orders MMRs by load fraction, least loaded first, comparing participants/capacity without
/// floating point; ties go to the smaller id.
pub fn by_load(
    (a_id, a): (&MmrId, &MmrState),
    (b_id, b): (&MmrId, &MmrState),
) -> std::cmp::Ordering {
    let lhs = a.participants as u64 * b.capacity as u64;
    let rhs = b.participants as u64 * a.capacity as u64;
    lhs.cmp(&rhs).then_with(|| a_id.cmp(b_id))
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
        .min_by(|a, b| by_load(*a, *b))
        .map(|(id, _)| id.clone())
        .ok_or(RejectReason::ZoneFull)
}

/// The other MMRs a new meeting placed on `first` and expected to hold `expected` participants
/// is spread over from its first join, so they are linked before the crowd arrives: none when
/// `first` has the seats (or takes no part in cascades); else the least loaded healthy,
/// undrained, cascading MMRs with room, until together with `first` they have `expected` free
/// seats — or all of them, when the zone has fewer (the hint is a hint: the meeting is placed
/// as well as the zone allows, and extends later as any meeting does). No seat is reserved:
/// other meetings may still take these MMRs' seats.
pub fn spread_for(mmrs: &BTreeMap<MmrId, MmrState>, first: &MmrId, expected: u32) -> Vec<MmrId> {
    let Some(home) = mmrs.get(first).filter(|m| m.cascade_port.is_some()) else {
        return Vec::new();
    };
    let mut seats = home.free_seats();
    let mut others: Vec<(&MmrId, &MmrState)> = mmrs
        .iter()
        .filter(|(id, m)| {
            *id != first && m.healthy && !m.draining && m.has_room() && m.cascade_port.is_some()
        })
        .collect();
    others.sort_by(|a, b| by_load(*a, *b));
    let mut chosen = Vec::new();
    for (id, m) in others {
        if seats >= expected {
            break;
        }
        seats += m.free_seats();
        chosen.push(id.clone());
    }
    chosen
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

    fn cascading(capacity: u32, participants: u32) -> MmrState {
        MmrState {
            cascade_port: Some(8805),
            ..mmr(capacity, participants, true)
        }
    }

    fn ids(v: &[&str]) -> Vec<MmrId> {
        v.iter().map(|s| MmrId(s.to_string())).collect()
    }

    #[test]
    fn a_hint_larger_than_the_first_mmr_adds_the_least_loaded_cascading_mmrs_until_it_fits() {
        let mut m = BTreeMap::new();
        m.insert(MmrId("a".into()), cascading(200, 0));
        m.insert(MmrId("b".into()), cascading(200, 100));
        m.insert(MmrId("c".into()), cascading(200, 0));
        m.insert(MmrId("d".into()), cascading(200, 0));
        // Not cascading, unhealthy, or draining: never chosen, however empty.
        m.insert(MmrId("e".into()), mmr(200, 0, true));
        m.insert(MmrId("f".into()), cascading(200, 0));
        m.get_mut(&MmrId("f".into())).unwrap().healthy = false;
        m.insert(
            MmrId("g".into()),
            MmrState {
                draining: true,
                ..cascading(200, 0)
            },
        );
        let a = MmrId("a".into());
        assert_eq!(spread_for(&m, &a, 200), Vec::<MmrId>::new(), "it fits");
        assert_eq!(spread_for(&m, &a, 201), ids(&["c"]));
        // Empty MMRs first (by id), then the half-full one.
        assert_eq!(spread_for(&m, &a, 601), ids(&["c", "d", "b"]));
        // More than the zone holds: everything it has.
        assert_eq!(spread_for(&m, &a, 5_000), ids(&["c", "d", "b"]));
        // A first MMR that takes no part in cascades is not spread from.
        assert!(spread_for(&m, &MmrId("e".into()), 500).is_empty());
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
