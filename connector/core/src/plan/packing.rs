//! How many MMRs and controllers a set of meetings needs, by two rules: the product's division
//! rule of thumb, and bin packing that respects meeting affinity (a meeting lives on one MMR) and
//! the per-controller meeting limit.

use thiserror::Error;

/// A bin of the meeting-size distribution: meetings of `size` participants make up `share` of
/// all meetings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SizeBin {
    pub size: u32,
    pub share: f64,
}

/// The product limits a sizing respects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Participants one MMR carries (the product's 200).
    pub mmr_capacity: u32,
    /// Meetings one controller hosts (the product's 100).
    pub max_meetings: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            mmr_capacity: 200,
            max_meetings: 100,
        }
    }
}

/// MMRs and controllers, as counted by a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    pub mmrs: u32,
    pub controllers: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PackError {
    #[error("a meeting of {size} participants is larger than an MMR holds ({capacity})")]
    MeetingTooLarge { size: u32, capacity: u32 },
}

/// The meetings at the peak: `peak` participants split over the size bins, as whole meetings.
/// The number of meetings is the fewest whose expected size reaches the peak; each bin gets its
/// share of them by largest remainder (ties to the larger meeting), so the list is the same for
/// the same forecast. Largest meetings first.
pub fn meetings_at_peak(peak: u32, bins: &[SizeBin]) -> Vec<u32> {
    let mean: f64 = bins.iter().map(|b| b.size as f64 * b.share).sum();
    if peak == 0 || mean <= 0.0 {
        return Vec::new();
    }
    let total = (peak as f64 / mean).ceil() as u64;
    let exact: Vec<f64> = bins.iter().map(|b| b.share * total as f64).collect();
    let mut counts: Vec<u64> = exact.iter().map(|x| x.floor() as u64).collect();
    let mut order: Vec<usize> = (0..bins.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
        rb.total_cmp(&ra).then(bins[b].size.cmp(&bins[a].size))
    });
    let short = total.saturating_sub(counts.iter().sum());
    for &i in order.iter().take(short as usize) {
        counts[i] += 1;
    }
    let mut meetings: Vec<u32> = bins
        .iter()
        .zip(&counts)
        .flat_map(|(b, &n)| std::iter::repeat_n(b.size, n as usize))
        .collect();
    meetings.sort_unstable_by(|a, b| b.cmp(a));
    meetings
}

/// The product's rule of thumb: participants ÷ MMR capacity, meetings ÷ meeting limit, each
/// rounded up — no affinity, no headroom, no failure.
pub fn rule_of_thumb(participants: u32, meetings: u32, limits: Limits) -> Count {
    Count {
        mmrs: participants.div_ceil(limits.mmr_capacity).max(1),
        controllers: meetings.div_ceil(limits.max_meetings).max(1),
    }
}

/// First-fit decreasing: each meeting, largest first, on the first MMR with room for all of it.
/// Returns the participants on each MMR. FFD uses at most 11/9 of the optimum plus one bin.
pub fn pack(meetings: &[u32], capacity: u32) -> Result<Vec<u32>, PackError> {
    let mut sorted = meetings.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let mut mmrs: Vec<u32> = Vec::new();
    for size in sorted {
        if size > capacity {
            return Err(PackError::MeetingTooLarge { size, capacity });
        }
        match mmrs.iter_mut().find(|load| **load + size <= capacity) {
            Some(load) => *load += size,
            None => mmrs.push(size),
        }
    }
    Ok(mmrs)
}

/// MMRs by bin packing (each meeting whole on one MMR, and at most `usable` of all seats in
/// use, the headroom target), and controllers by the meeting limit.
pub fn packed(meetings: &[u32], limits: Limits, usable: f64) -> Result<Count, PackError> {
    let participants: u32 = meetings.iter().sum();
    let by_headroom = (participants as f64 / (usable * limits.mmr_capacity as f64)).ceil() as u32;
    let mmrs = (pack(meetings, limits.mmr_capacity)?.len() as u32).max(by_headroom);
    Ok(Count {
        mmrs: mmrs.max(1),
        controllers: (meetings.len() as u32).div_ceil(limits.max_meetings).max(1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bins(b: &[(u32, f64)]) -> Vec<SizeBin> {
        b.iter()
            .map(|&(size, share)| SizeBin { size, share })
            .collect()
    }

    #[test]
    fn the_peak_splits_into_whole_meetings_by_share() {
        // Mean size 0.6·4 + 0.4·10 = 6.4; 150 / 6.4 → 24 meetings: 14.4 of 4, 9.6 of 10.
        let m = meetings_at_peak(150, &bins(&[(4, 0.6), (10, 0.4)]));
        assert_eq!(m.len(), 24);
        assert_eq!(m.iter().filter(|&&s| s == 10).count(), 10);
        assert_eq!(m.iter().filter(|&&s| s == 4).count(), 14);
        assert_eq!(m.iter().sum::<u32>(), 156);
        assert!(m.windows(2).all(|w| w[0] >= w[1]), "largest first");
        assert!(meetings_at_peak(0, &bins(&[(4, 1.0)])).is_empty());
    }

    #[test]
    fn packing_keeps_each_meeting_on_one_mmr() {
        // Hand-worked: 150 + 150 cannot share a 200-seat MMR; the 40s fill the gaps.
        assert_eq!(
            pack(&[150, 150, 40, 40, 30], 200).unwrap(),
            vec![190, 190, 30]
        );
        // Six meetings of 120: one per MMR, though the division rule says 720 / 200 → 4.
        assert_eq!(pack(&[120; 6], 200).unwrap().len(), 6);
        assert_eq!(rule_of_thumb(720, 6, Limits::default()).mmrs, 4);
        // Perfect fits: 100 + 100, 50 × 4.
        assert_eq!(
            pack(&[100, 50, 100, 50, 50, 50], 200).unwrap(),
            vec![200, 200]
        );
        assert_eq!(
            pack(&[201], 200),
            Err(PackError::MeetingTooLarge {
                size: 201,
                capacity: 200
            })
        );
    }

    #[test]
    fn headroom_and_the_meeting_limit_add_mmrs_and_controllers() {
        let small = vec![2u32; 250]; // 500 participants in 250 meetings
        let c = packed(&small, Limits::default(), 1.0).unwrap();
        assert_eq!(
            c,
            Count {
                mmrs: 3,
                controllers: 3
            }
        );
        // Filled to 80 %: 160 seats an MMR → 4 MMRs.
        assert_eq!(packed(&small, Limits::default(), 0.8).unwrap().mmrs, 4);
        assert_eq!(
            rule_of_thumb(500, 250, Limits::default()),
            Count {
                mmrs: 3,
                controllers: 3
            }
        );
    }
}
