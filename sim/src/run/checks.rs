//! The checkers of a scenario run: safety (limits, one owner and one MMR per meeting, no media
//! across meetings, no ticketless admission, no plaintext on TLS ports), outcomes, and links back
//! on their dedicated ports.

use super::{Participant, RunStats};
use crate::scenario::Scenario;
use crate::{controller_ip, ip, mmr_vm_ip, SimDeployment, CLOUD_IP};
use mc_core::controller::Event;
use mc_node::client::{ClientError, ClientReport};
use mc_node::events::{CloudEvent, Typed};
use mc_rt::{AsyncReadExt, AsyncWriteExt};
use mc_wire::monitor::LinkPath;
use mc_wire::{ports, MeetingId, ParticipantId};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A violation list that keeps the first occurrence of each kind of problem.
#[derive(Clone, Default)]
pub(super) struct Violations(Arc<Mutex<BTreeMap<String, String>>>);

impl Violations {
    pub(super) fn add(&self, kind: impl Into<String>, detail: String) {
        self.0.lock().unwrap().entry(kind.into()).or_insert(detail);
    }
    pub(super) fn list(&self) -> Vec<String> {
        self.0.lock().unwrap().values().cloned().collect()
    }
}

/// Limits hold; every meeting has one owner, and lives on the MMRs of one controller only (on
/// one MMR, or cascaded across several of the same controller's).
pub(super) fn check_safety(d: &SimDeployment, v: &Violations, at_s: f64) {
    // Controllers whose hosting counts: running, and (in a pair) within their lease. One whose
    // lease ran out admits nobody and fences at once; the peer may own its meetings by then.
    let now_ms = mc_rt::unix_now_ms();
    let live: Vec<(String, Arc<mc_node::controller::ControllerHandle>)> = d
        .controllers
        .iter()
        .filter_map(|(name, slot)| Some((name.clone(), slot.get()?)))
        .filter(|(_, c)| c.lease_valid_at(now_ms))
        .collect();
    let mut owners: BTreeMap<MeetingId, Vec<String>> = BTreeMap::new();
    // Where the MMRs themselves hold grants, and whose grants they are: each meeting on the
    // MMRs of one controller only.
    let mut holders: BTreeMap<MeetingId, Vec<(String, String)>> = BTreeMap::new();
    // MMRs some live controller counts as healthy (a dead MMR VM keeps its unreachable table
    // until it restarts).
    let mut healthy: BTreeSet<String> = BTreeSet::new();
    for (name, ctl) in &live {
        let zone = ctl.zone();
        let max_meetings = ctl.max_meetings();
        if zone.meetings.len() as u32 > max_meetings {
            v.add(format!("meeting-limit:{name}"), format!("safety at {at_s:.1} s: {name} hosts {} meetings, over its limit of {max_meetings}", zone.meetings.len()));
        }
        for (mmr, (participants, capacity, ok)) in &zone.mmrs {
            if participants > capacity {
                v.add(format!("capacity:{mmr}"), format!("safety at {at_s:.1} s: {mmr} holds {participants} participants, over its capacity of {capacity}"));
            }
            if *ok {
                healthy.insert(mmr.0.clone());
            }
        }
        for m in zone.meetings.keys() {
            owners.entry(*m).or_default().push(name.clone());
        }
        for m in ctl.mmr.meetings() {
            holders
                .entry(m)
                .or_default()
                .push((format!("{name}-mmr"), name.clone()));
        }
    }
    for (name, (capacity, slot)) in d.vms.lock().unwrap().iter() {
        if let Some(vm) = slot.get() {
            let held = vm.mmr.participants() as u32;
            if held > *capacity {
                v.add(format!("capacity:{name}:grants"), format!("safety at {at_s:.1} s: {name} holds {held} grants, over its capacity of {capacity}"));
            }
            let by = vm.controller.lock().unwrap().clone();
            let by = by.map_or_else(|| "no controller".to_string(), |c| c.0);
            for m in vm.mmr.meetings() {
                holders
                    .entry(m)
                    .or_default()
                    .push((name.clone(), by.clone()));
            }
        }
    }
    for (m, by) in owners {
        if by.len() > 1 {
            v.add(
                format!("owned-twice:{m}"),
                format!(
                    "safety at {at_s:.1} s: meeting {m} is hosted by {} at once",
                    by.join(" and ")
                ),
            );
        }
    }
    for (m, on) in holders {
        let live_on: Vec<&(String, String)> =
            on.iter().filter(|(h, _)| healthy.contains(h)).collect();
        let controllers: BTreeSet<&String> = live_on.iter().map(|(_, c)| c).collect();
        if controllers.len() > 1 {
            let on: Vec<String> = live_on
                .iter()
                .map(|(h, c)| format!("{h} ({c}'s)"))
                .collect();
            v.add(
                format!("hosted-twice:{m}"),
                format!(
                    "safety at {at_s:.1} s: meeting {m} is on {} at once",
                    on.join(" and ")
                ),
            );
        }
    }
}

/// Sends plaintext HTTP to every TLS port; an answer in plaintext is a violation.
pub(super) async fn probe_plaintext(
    d: &SimDeployment,
    v: &Violations,
    controllers: u32,
    mmr_vms: u32,
) {
    let mut targets = vec![
        SocketAddr::new(ip(CLOUD_IP), ports::HTTPS),
        SocketAddr::new(ip(CLOUD_IP), ports::STATUS_SYNC),
        SocketAddr::new(ip(CLOUD_IP), ports::NOTIFICATION),
    ];
    for n in 1..=controllers {
        targets.push(SocketAddr::new(controller_ip(n), ports::ZC));
        targets.push(SocketAddr::new(controller_ip(n), ports::HTTPS));
    }
    targets.extend((1..=mmr_vms).map(|n| SocketAddr::new(mmr_vm_ip(n), ports::HTTPS)));
    let found = d
        .on_new_host("plaintext-prober", move || async move {
            let mut answered = Vec::new();
            for addr in targets {
                let Ok(mut s) = mc_rt::net::connect_tcp(addr, Duration::from_secs(1)).await else {
                    continue;
                };
                if s.write_all(b"GET / HTTP/1.1\r\nHost: probe\r\n\r\n")
                    .await
                    .is_err()
                    || s.flush().await.is_err()
                {
                    continue;
                }
                let mut buf = [0u8; 8];
                if let Ok(Ok(n)) = mc_rt::timeout(Duration::from_secs(1), s.read(&mut buf)).await {
                    // A TLS server answers plaintext with an alert record (0x15) or closes.
                    if n > 0 && buf[0] != 0x15 {
                        answered.push(format!(
                            "{addr} answered plaintext with {:?}",
                            String::from_utf8_lossy(&buf[..n])
                        ));
                    }
                }
            }
            answered
        })
        .await;
    for a in found {
        v.add(format!("plaintext:{a}"), format!("safety: {a}"));
    }
}

pub(super) fn check_outcomes(
    plan: &Scenario,
    participants: &[Participant],
    outcomes: &[Result<ClientReport, ClientError>],
    d: &SimDeployment,
    v: &Violations,
    recovery_ms: Vec<u64>,
    rejoin_recovery_ms: Vec<u64>,
) -> RunStats {
    let mut stats = RunStats {
        joins_attempted: outcomes.len() as u64,
        recovery_ms,
        rejoin_recovery_ms,
        ..Default::default()
    };
    let mut ssrc_meeting: BTreeMap<u32, MeetingId> = BTreeMap::new();
    for r in outcomes.iter().flatten() {
        ssrc_meeting.insert(r.ssrc, r.meeting);
    }
    let first_fault_s = plan
        .faults
        .iter()
        .map(|f| f.at_s)
        .fold(f64::INFINITY, f64::min);
    let window_end_s = plan.faults_end_s() + plan.expect.recovery_s;
    for (p, o) in participants.iter().zip(outcomes) {
        if (first_fault_s..=window_end_s).contains(&p.arrival_s) {
            stats.fault_joins_attempted += 1;
            if let Ok(r) = o {
                stats.fault_joins_admitted += 1;
                stats.fault_join_ms.push(r.join_ms);
            }
        }
        match o {
            Ok(r) => {
                stats.joins_admitted += 1;
                stats.join_ms.push(r.join_ms);
                if let Some(reason) = &r.rejoin_refused {
                    *stats.rejoin_refused.entry(reason.clone()).or_default() += 1;
                    if !plan.expect.allowed_rejections.contains(reason) {
                        v.add(format!("rejoin:{reason}"), format!("{} lost its seat on rejoining after a failure ({reason}), which this scenario does not allow: {}", p.name, r.ended_by_zc.as_deref().unwrap_or_default()));
                    }
                }
                stats.rejoins += r.rejoins as u64;
                stats.rtp_sent += r.sent;
                stats.rtp_received += r.received;
                stats.rtp_lost += r.by_source.values().map(|s| s.lost).sum::<u64>();
                for ssrc in r.by_source.keys() {
                    if ssrc_meeting.get(ssrc).is_some_and(|m| *m != r.meeting) {
                        v.add(format!("cross-meeting:{}", p.name), format!("safety: {} in {} received media from another meeting's participant", p.name, r.meeting));
                    }
                }
            }
            Err(e) => match e.rejection() {
                Some(reason) => {
                    *stats
                        .rejections
                        .entry(reason.as_str().to_string())
                        .or_default() += 1;
                    if !plan
                        .expect
                        .allowed_rejections
                        .iter()
                        .any(|a| a == reason.as_str())
                    {
                        v.add(format!("rejection:{reason}"), format!("{} was refused with {reason}, which this scenario does not allow: {e}", p.name));
                    }
                }
                None => {
                    let kind = match e {
                        ClientError::Ticket(_) => "ticket",
                        ClientError::TicketRefused(_) => "ticket_refused",
                        ClientError::Signalling(_) => "signalling",
                        ClientError::Media(_) => "media",
                        _ => "other",
                    };
                    *stats.failures.entry(kind.to_string()).or_default() += 1;
                }
            },
        }
    }
    let admitted_pct = 100.0 * stats.joins_admitted as f64 / stats.joins_attempted.max(1) as f64;
    if admitted_pct + 1e-9 < plan.expect.min_admitted_pct {
        v.add(
            "admitted",
            format!(
                "{admitted_pct:.1}% of joins admitted, below the expected {}% (failures: {:?})",
                plan.expect.min_admitted_pct, stats.failures
            ),
        );
    }
    let loss_pct =
        100.0 * stats.rtp_lost as f64 / (stats.rtp_received + stats.rtp_lost).max(1) as f64;
    if loss_pct > plan.expect.max_loss_pct {
        v.add(
            "loss",
            format!(
                "RTP loss {loss_pct:.2}% above the expected {}%",
                plan.expect.max_loss_pct
            ),
        );
    }
    // Nobody admitted without a ticket the cloud issued for that meeting.
    let typed = d.checks.typed();
    let issued: BTreeSet<(ParticipantId, MeetingId)> = typed
        .iter()
        .filter_map(|(_, e)| match e {
            Typed::Cloud(CloudEvent::TicketIssued {
                participant,
                meeting,
            }) => Some((*participant, *meeting)),
            _ => None,
        })
        .collect();
    for (node, e) in &typed {
        if let Typed::Controller(Event::Admitted {
            participant,
            meeting,
            ..
        }) = e
        {
            if !issued.contains(&(*participant, *meeting)) {
                v.add(
                    format!("ticketless:{participant}:{meeting}"),
                    format!("safety: {node} admitted {participant} to {meeting} without a ticket the cloud issued"),
                );
            }
        }
    }
    stats
}

pub(super) fn check_links(d: &SimDeployment, v: &Violations) {
    let mut links: Vec<(String, String, LinkPath)> = Vec::new();
    // A peer link to a controller that is dead at the end is down, rightly.
    let all_alive = d.controllers.values().all(|slot| slot.get().is_some());
    for (name, slot) in &d.controllers {
        if let Some(ctl) = slot.get() {
            links.extend(
                ctl.links()
                    .into_iter()
                    .filter(|(l, _)| all_alive || l != "peer")
                    .map(|(l, s)| (name.clone(), l, s.path)),
            );
        }
    }
    for (name, (_, slot)) in d.vms.lock().unwrap().iter() {
        if let Some(vm) = slot.get() {
            links.extend(
                vm.links
                    .snapshot()
                    .into_iter()
                    .map(|(l, s)| (name.clone(), l, s.path)),
            );
        }
    }
    for (host, link, path) in links {
        if path != LinkPath::Dedicated {
            v.add(format!("link:{host}:{link}"), format!("liveness: {host}'s {link} link is {path} at the end, though its dedicated port is open again"));
        }
    }
}
