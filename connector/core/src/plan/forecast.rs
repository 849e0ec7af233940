//! A forecast, in a planner's terms: how many people at the peak, in meetings of what sizes, how
//! fast they arrive, what the deployment must survive, and the targets it must meet. Checked
//! field by field: a forecast that is missing something, contradicts itself or asks the
//! impossible is refused with the field's name and what would fix it.

use super::packing::{Limits, SizeBin};
use serde::Deserialize;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Forecast {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Participants in meetings at once, at the busiest moment.
    pub peak_participants: u32,
    /// The meeting-size distribution: each bin's share of meetings.
    pub meeting_sizes: Vec<SizeBinSpec>,
    /// The join burst at the top of the hour.
    pub burst: Burst,
    /// How long a meeting lasts, in minutes.
    pub meeting_minutes: f64,
    pub availability: Availability,
    #[serde(default)]
    pub targets: Targets,
    pub growth: Option<Growth>,
    pub cost: Option<Cost>,
    /// The product limits, if not the defaults (200 participants per MMR, 100 meetings per
    /// controller).
    pub limits: Option<LimitsSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SizeBinSpec {
    pub size: u32,
    pub share: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Burst {
    pub joins_per_s: f64,
    pub duration_s: f64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Availability {
    pub controllers: ControllerMode,
    /// Failures the deployment must survive at peak with nothing refused that would otherwise
    /// fit.
    #[serde(default)]
    pub survive: Vec<Failure>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControllerMode {
    /// One controller VM per zone.
    Single,
    /// An active-active HA pair per zone.
    Pair,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// Any one controller VM (with its own MMR).
    ControllerVm,
    /// Any one MMR VM.
    MmrVm,
    /// One controller VM and one MMR VM at once.
    ControllerAndMmrVm,
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Targets {
    /// Joins refused at peak, in percent of joins.
    pub max_refusal_pct: f64,
    /// Participant capacity in use at peak, in percent.
    pub max_utilisation_pct: f64,
}

impl Default for Targets {
    fn default() -> Self {
        Targets {
            max_refusal_pct: 0.1,
            max_utilisation_pct: 80.0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Growth {
    pub per_quarter_pct: f64,
    pub quarters: u32,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cost {
    pub controller_vm: f64,
    pub mmr_vm: f64,
    #[serde(default = "default_currency")]
    pub currency: String,
}

fn default_currency() -> String {
    "USD".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    pub mmr_capacity: u32,
    pub max_meetings: u32,
}

/// A forecast field that cannot be planned for: which, what is wrong, and what would fix it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("forecast field `{field}`: {problem}; {fix}")]
pub struct ForecastError {
    pub field: String,
    pub problem: String,
    pub fix: String,
}

/// Shares must sum to 1 within this.
const SHARE_SLACK: f64 = 0.001;

impl Forecast {
    /// Every field, checked; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ForecastError> {
        let bad = |field: &str, problem: String, fix: &str| {
            Err(ForecastError {
                field: field.into(),
                problem,
                fix: fix.into(),
            })
        };
        let limits = self.limits();
        if self.name.is_empty() {
            return bad("name", "is empty".into(), "name the forecast");
        }
        if let Some(l) = self.limits {
            if l.mmr_capacity == 0 || l.max_meetings == 0 {
                return bad(
                    "limits",
                    format!(
                        "mmr_capacity {} and max_meetings {} must both be at least 1",
                        l.mmr_capacity, l.max_meetings
                    ),
                    "omit [limits] for the product's 200 and 100",
                );
            }
        }
        if self.peak_participants == 0 {
            return bad(
                "peak_participants",
                "is 0".into(),
                "give the participants in meetings at once at the busiest moment",
            );
        }
        if self.meeting_sizes.is_empty() {
            return bad(
                "meeting_sizes",
                "lists no bins".into(),
                "add bins such as { size = 4, share = 1.0 }",
            );
        }
        for (i, b) in self.meeting_sizes.iter().enumerate() {
            if b.size == 0 {
                return bad(
                    &format!("meeting_sizes[{i}].size"),
                    "is 0".into(),
                    "a meeting has at least one participant",
                );
            }
            if b.size > limits.mmr_capacity {
                return bad(
                    &format!("meeting_sizes[{i}].size"),
                    format!(
                        "{} participants is more than one MMR holds ({}), and the planner models each meeting on one MMR (a deployment cascades larger meetings across MMRs, which planning does not model yet)",
                        b.size, limits.mmr_capacity
                    ),
                    "plan such meetings as several of at most one MMR's size, or raise limits.mmr_capacity if your MMRs hold more",
                );
            }
            if !(b.share > 0.0 && b.share <= 1.0) {
                return bad(
                    &format!("meeting_sizes[{i}].share"),
                    format!("is {}", b.share),
                    "a share is above 0 and at most 1",
                );
            }
        }
        let total: f64 = self.meeting_sizes.iter().map(|b| b.share).sum();
        if (total - 1.0).abs() > SHARE_SLACK {
            return bad(
                "meeting_sizes",
                format!("shares sum to {total:.3}"),
                "make the shares sum to 1",
            );
        }
        if !(self.burst.joins_per_s > 0.0 && self.burst.joins_per_s.is_finite()) {
            return bad(
                "burst.joins_per_s",
                format!("is {}", self.burst.joins_per_s),
                "give the joins per second at the top of the hour (above 0)",
            );
        }
        if !(self.burst.duration_s > 0.0 && self.burst.duration_s.is_finite()) {
            return bad(
                "burst.duration_s",
                format!("is {}", self.burst.duration_s),
                "give how long the burst lasts, in seconds (above 0)",
            );
        }
        if !(self.meeting_minutes > 0.0 && self.meeting_minutes.is_finite()) {
            return bad(
                "meeting_minutes",
                format!("is {}", self.meeting_minutes),
                "give how long a meeting lasts, in minutes (above 0)",
            );
        }
        let a = &self.availability;
        if a.controllers == ControllerMode::Single && a.survive.iter().any(|f| *f != Failure::MmrVm)
        {
            return bad(
                "availability.survive",
                "asks to survive a controller VM with a single controller, which is the one that fails".into(),
                "set availability.controllers = \"pair\", or survive only \"mmr_vm\"",
            );
        }
        let t = &self.targets;
        if !(0.0..100.0).contains(&t.max_refusal_pct) {
            return bad(
                "targets.max_refusal_pct",
                format!("is {}", t.max_refusal_pct),
                "a percentage of joins from 0 up to (not including) 100, e.g. 0.1",
            );
        }
        if !(t.max_utilisation_pct > 0.0 && t.max_utilisation_pct <= 100.0) {
            return bad(
                "targets.max_utilisation_pct",
                format!("is {}", t.max_utilisation_pct),
                "a percentage of participant capacity above 0 and at most 100, e.g. 80",
            );
        }
        if let Some(g) = self.growth {
            if !(g.per_quarter_pct > -100.0 && g.per_quarter_pct.is_finite()) {
                return bad(
                    "growth.per_quarter_pct",
                    format!("is {}", g.per_quarter_pct),
                    "a change per quarter above -100 %, e.g. 15",
                );
            }
            if !(1..=20).contains(&g.quarters) {
                return bad(
                    "growth.quarters",
                    format!("is {}", g.quarters),
                    "from 1 to 20 quarters",
                );
            }
        }
        if let Some(c) = &self.cost {
            for (field, v) in [
                ("cost.controller_vm", c.controller_vm),
                ("cost.mmr_vm", c.mmr_vm),
            ] {
                if !(v >= 0.0 && v.is_finite()) {
                    return bad(field, format!("is {v}"), "a cost per VM of 0 or more");
                }
            }
        }
        Ok(())
    }

    /// The product limits this forecast plans with.
    pub fn limits(&self) -> Limits {
        self.limits.map_or_else(Limits::default, |l| Limits {
            mmr_capacity: l.mmr_capacity,
            max_meetings: l.max_meetings,
        })
    }

    /// The meeting-size distribution, for the sizing functions.
    pub fn bins(&self) -> Vec<SizeBin> {
        self.meeting_sizes
            .iter()
            .map(|b| SizeBin {
                size: b.size,
                share: b.share,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn campus() -> Forecast {
        Forecast {
            name: "campus".into(),
            description: String::new(),
            peak_participants: 1000,
            meeting_sizes: vec![
                SizeBinSpec {
                    size: 4,
                    share: 0.7,
                },
                SizeBinSpec {
                    size: 12,
                    share: 0.3,
                },
            ],
            burst: Burst {
                joins_per_s: 20.0,
                duration_s: 60.0,
            },
            meeting_minutes: 45.0,
            availability: Availability {
                controllers: ControllerMode::Pair,
                survive: vec![Failure::ControllerVm, Failure::MmrVm],
            },
            targets: Targets::default(),
            growth: Some(Growth {
                per_quarter_pct: 15.0,
                quarters: 4,
            }),
            cost: None,
            limits: None,
        }
    }

    fn refused(f: Forecast) -> ForecastError {
        f.validate().expect_err("refused")
    }

    #[test]
    fn a_sound_forecast_passes() {
        assert_eq!(campus().validate(), Ok(()));
    }

    #[test]
    fn each_kind_of_bad_field_is_named_with_a_fix() {
        let mut f = campus();
        f.meeting_sizes[1].share = 0.2;
        let e = refused(f);
        assert_eq!(e.field, "meeting_sizes");
        assert!(e.to_string().contains("shares sum to 0.900"), "{e}");

        let mut f = campus();
        f.meeting_sizes[1].size = 250;
        let e = refused(f);
        assert_eq!(e.field, "meeting_sizes[1].size");
        assert!(e.fix.contains("several of at most one MMR's size"), "{e}");

        let mut f = campus();
        f.burst.joins_per_s = -3.0;
        assert_eq!(refused(f).field, "burst.joins_per_s");

        let mut f = campus();
        f.availability.controllers = ControllerMode::Single;
        let e = refused(f);
        assert_eq!(e.field, "availability.survive");
        assert!(e.fix.contains("pair"), "{e}");

        let mut f = campus();
        f.targets.max_utilisation_pct = 120.0;
        assert_eq!(refused(f).field, "targets.max_utilisation_pct");

        let mut f = campus();
        f.growth = Some(Growth {
            per_quarter_pct: f64::NAN,
            quarters: 4,
        });
        assert_eq!(refused(f).field, "growth.per_quarter_pct");

        let mut f = campus();
        f.peak_participants = 0;
        assert_eq!(refused(f).field, "peak_participants");

        // Larger MMRs make the large meeting possible.
        let mut f = campus();
        f.meeting_sizes[1].size = 250;
        f.limits = Some(LimitsSpec {
            mmr_capacity: 300,
            max_meetings: 100,
        });
        assert_eq!(f.validate(), Ok(()));
    }
}
