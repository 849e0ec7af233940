//! Load through a run, sampled by the safety checker: each MMR's and each controller's busiest
//! moment, and participants in meetings against healthy seats over time (what a capacity plan
//! measures).

use crate::SimDeployment;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Load {
    /// Per MMR (controller-1-mmr, mmr-1, ...): the most participants it held at once, and its
    /// capacity.
    pub mmr_peaks: BTreeMap<String, (u32, u32)>,
    /// Per controller: the most meetings it hosted at once, and its limit.
    pub controller_peaks: BTreeMap<String, (u32, u32)>,
    /// The most participants in meetings at once, over the whole deployment.
    pub peak_participants: u32,
    /// (seconds into the run, participants in meetings, seats on live MMRs), once a second.
    pub timeline: Vec<(f64, u32, u32)>,
}

impl Load {
    /// One look at every live MMR's grants and every live controller's meetings. `timeline_at`
    /// also records a point of the timeline.
    pub fn sample(
        &mut self,
        d: &SimDeployment,
        ctl_capacity: u32,
        vm_capacity: u32,
        timeline_at: Option<f64>,
    ) {
        let mut mmrs: Vec<(String, u32, u32)> = Vec::new();
        for (name, slot) in &d.controllers {
            if let Some(ctl) = slot.get() {
                mmrs.push((
                    format!("{name}-mmr"),
                    ctl.mmr.participants() as u32,
                    ctl_capacity,
                ));
                let peak = self
                    .controller_peaks
                    .entry(name.clone())
                    .or_insert((0, ctl.max_meetings()));
                peak.0 = peak.0.max(ctl.zone().meetings.len() as u32);
            }
        }
        for (name, (_, slot)) in d.vms.lock().unwrap().iter() {
            if let Some(vm) = slot.get() {
                mmrs.push((name.clone(), vm.mmr.participants() as u32, vm_capacity));
            }
        }
        let (mut participants, mut seats) = (0, 0);
        for (name, held, capacity) in mmrs {
            let peak = self.mmr_peaks.entry(name).or_insert((0, capacity));
            peak.0 = peak.0.max(held);
            participants += held;
            seats += capacity;
        }
        self.peak_participants = self.peak_participants.max(participants);
        if let Some(at_s) = timeline_at {
            self.timeline
                .push(((at_s * 10.0).round() / 10.0, participants, seats));
        }
    }
}
