//! The analytic candidate: the fewest zones, and MMR VMs per zone, that hold a forecast's peak
//! meetings with headroom in normal operation and hold every one of them through each failure
//! the forecast must survive. A zone is one controller VM or an HA pair (each controller VM
//! brings its own MMR) plus MMR VMs; a meeting lives on one MMR and one controller.

use super::forecast::{ControllerMode, Failure};
use super::packing::{pack, Limits, PackError};

/// One zone's shape, and how many such zones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZonePlan {
    pub zones: u32,
    pub controllers: u32,
    pub mmr_vms: u32,
}

impl ZonePlan {
    /// Every VM of every zone: controller VMs and MMR VMs.
    pub fn vms(&self) -> (u32, u32) {
        (self.zones * self.controllers, self.zones * self.mmr_vms)
    }
}

/// Splits meetings (largest first) over `zones`, each to the zone with the fewest participants
/// so far (ties to the lower zone): the same forecast always splits the same way.
pub fn split(meetings: &[u32], zones: u32) -> Vec<Vec<u32>> {
    let mut sorted = meetings.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let mut out: Vec<Vec<u32>> = vec![Vec::new(); zones.max(1) as usize];
    for size in sorted {
        let z = (0..out.len())
            .min_by_key(|&z| (out[z].iter().sum::<u32>(), z))
            .expect("at least one zone");
        out[z].push(size);
    }
    out
}

/// Whether `meetings` fit on `mmrs` MMRs of `capacity`, each meeting whole on one.
fn fits(meetings: &[u32], mmrs: u32, capacity: u32) -> Result<bool, PackError> {
    Ok(pack(meetings, capacity)?.len() as u32 <= mmrs)
}

/// The smallest plan for `meetings` at the peak: in normal operation every meeting packed whole
/// on an MMR, at most `usable` (the headroom target, 0 to 1) of the zone's seats in use, and
/// every controller within its meeting limit; under each failure in `survive`, what is left
/// holds every meeting (a failure may use the headroom). Zones grow until the meeting limit
/// holds, then MMR VMs until the rest does.
pub fn size(
    meetings: &[u32],
    limits: Limits,
    mode: ControllerMode,
    survive: &[Failure],
    usable: f64,
) -> Result<ZonePlan, PackError> {
    let controllers = match mode {
        ControllerMode::Single => 1,
        ControllerMode::Pair => 2,
    };
    // A pair that must survive a controller holds, at worst, everything on the survivor.
    let lose_controller =
        survive.contains(&Failure::ControllerVm) || survive.contains(&Failure::ControllerAndMmrVm);
    let meetings_per_zone = if lose_controller {
        limits.max_meetings
    } else {
        limits.max_meetings * controllers
    };
    let zones = (meetings.len() as u32).div_ceil(meetings_per_zone).max(1);
    let mut mmr_vms = 0;
    for zone in split(meetings, zones) {
        let participants: u32 = zone.iter().sum();
        let mut vms = 0;
        loop {
            let mmrs = controllers + vms;
            let mut ok = fits(&zone, mmrs, limits.mmr_capacity)?
                && participants as f64 <= usable * (mmrs * limits.mmr_capacity) as f64;
            for failure in survive {
                // MMRs lost: a controller VM takes its own MMR with it; an MMR VM can fail only
                // where there is one.
                let lost = match failure {
                    Failure::ControllerVm => 1,
                    Failure::MmrVm => u32::from(vms > 0),
                    Failure::ControllerAndMmrVm => 1 + u32::from(vms > 0),
                };
                ok &= mmrs > lost && fits(&zone, mmrs - lost, limits.mmr_capacity)?;
            }
            if ok {
                break;
            }
            vms += 1;
        }
        mmr_vms = mmr_vms.max(vms);
    }
    Ok(ZonePlan {
        zones,
        controllers,
        mmr_vms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ControllerMode::{Pair, Single};
    use Failure::{ControllerAndMmrVm, ControllerVm, MmrVm};

    const L: Limits = Limits {
        mmr_capacity: 200,
        max_meetings: 100,
    };

    #[test]
    fn a_small_office_needs_one_controller_and_nothing_else() {
        // 150 people in meetings of 3: 50 meetings, 150 of 160 usable seats.
        let p = size(&[3; 50], L, Single, &[], 0.8).unwrap();
        assert_eq!(
            p,
            ZonePlan {
                zones: 1,
                controllers: 1,
                mmr_vms: 0
            }
        );
        // With no MMR VM there is none to lose.
        assert_eq!(size(&[3; 50], L, Single, &[MmrVm], 0.8).unwrap().mmr_vms, 0);
        // 300 people: two MMRs at 160 usable; losing the VM leaves 200 seats for 300.
        assert_eq!(size(&[3; 100], L, Single, &[], 0.8).unwrap().mmr_vms, 1);
        assert_eq!(
            size(&[3; 100], L, Single, &[MmrVm], 0.8).unwrap().mmr_vms,
            2
        );
    }

    #[test]
    fn surviving_a_controller_keeps_every_meeting_on_the_survivor() {
        // 1,000 people in 250 meetings of 4: a pair holds 200 meetings, so surviving a
        // controller (100 on the survivor) takes three zones; without it, two pairs.
        let m = [4u32; 250];
        assert_eq!(size(&m, L, Pair, &[], 0.8).unwrap().zones, 2);
        let p = size(&m, L, Pair, &[ControllerVm, MmrVm], 0.8).unwrap();
        assert_eq!(p.zones, 3);
        // The largest zone has 84 meetings of 4 (336 people): 3 MMRs at 160 usable, so one VM;
        // losing a controller or the VM leaves 2 MMRs at 200, enough.
        assert_eq!(p.mmr_vms, 1);
        // Losing one of each at once leaves 1 MMR with one VM: two VMs are needed.
        let both = size(&m, L, Pair, &[ControllerAndMmrVm], 0.8).unwrap();
        assert_eq!((both.zones, both.mmr_vms), (3, 2));
    }

    #[test]
    fn large_meetings_need_an_mmr_each() {
        // Twelve meetings of 150: the division rule says 1,800 / 200 → 9 MMRs; one per meeting
        // is what fits, and surviving an MMR VM needs one more.
        let m = [150u32; 12];
        let p = size(&m, L, Pair, &[], 1.0).unwrap();
        assert_eq!(p.controllers + p.mmr_vms, 12);
        assert_eq!(size(&m, L, Pair, &[MmrVm], 1.0).unwrap().mmr_vms, 11);
    }

    #[test]
    fn headroom_is_over_the_zone_so_a_meeting_above_it_still_fits() {
        // A meeting of 180 is above 80 % of one MMR, but the target is the zone's seats: three
        // meetings on three MMRs use 480 of 600 (80 %).
        let p = size(&[180, 180, 120], L, Single, &[], 0.8).unwrap();
        assert_eq!(p.mmr_vms, 2);
        // 490 of 600 is over 80 %: one more MMR.
        assert_eq!(
            size(&[180, 180, 130], L, Single, &[], 0.8).unwrap().mmr_vms,
            3
        );
    }

    #[test]
    fn meetings_split_evenly_and_the_same_way_every_time() {
        let z = split(&[150, 40, 40, 30, 20, 10], 2);
        assert_eq!(z, vec![vec![150], vec![40, 40, 30, 20, 10]]);
        assert_eq!(
            split(&[4; 7], 3).iter().map(Vec::len).collect::<Vec<_>>(),
            [3, 2, 2]
        );
    }
}
