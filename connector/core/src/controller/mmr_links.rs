//! Links from MMR VMs: an MMR VM says hello with its capacity and media addresses and joins the
//! zone; grants flow to it and it confirms each; a link that closes, or goes three report
//! intervals without a load report, takes the MMR out of the zone — after one more interval, so
//! an MMR moving its link to a better port keeps its meetings.

use super::{ConnId, Controller, Event, Message};
use crate::zc::MmrCommand;
use mc_wire::link::{ControllerToMmr, MmrToController};
use mc_wire::MediaToken;
use mc_wire::MmrId;

/// Load reports an MMR VM may miss before it is declared down.
const MISSED_REPORTS_DOWN: u64 = 3;

#[derive(Debug)]
pub(super) struct MmrLink {
    /// Set by the hello.
    mmr: Option<MmrId>,
    /// Its address, for the log.
    from: String,
    hello_due_ms: u64,
    report_due_ms: u64,
    keepalive_due_ms: u64,
}

impl MmrLink {
    pub(super) fn next_due_ms(&self) -> u64 {
        match self.mmr {
            None => self.hello_due_ms,
            Some(_) => self.report_due_ms.min(self.keepalive_due_ms),
        }
    }
}

pub(super) fn to_wire(cmd: MmrCommand) -> ControllerToMmr {
    match cmd {
        MmrCommand::Admit {
            token,
            meeting,
            participant,
        } => ControllerToMmr::Admit {
            token,
            meeting,
            participant,
        },
        MmrCommand::Revoke { token } => ControllerToMmr::Revoke { token },
        MmrCommand::Cascade { meeting, peers } => ControllerToMmr::Cascade { meeting, peers },
    }
}

impl Controller {
    pub(super) fn mmr_link_opened(&mut self, now_ms: u64, conn: ConnId, from: String) {
        self.mmr_links.insert(
            conn,
            MmrLink {
                mmr: None,
                from,
                hello_due_ms: now_ms + self.p.handshake_timeout_ms,
                report_due_ms: u64::MAX,
                keepalive_due_ms: u64::MAX,
            },
        );
    }

    pub(super) fn mmr_message(&mut self, now_ms: u64, conn: ConnId, msg: MmrToController) {
        let Some(link) = self.mmr_links.get_mut(&conn) else {
            return;
        };
        let interval_ms = self.p.mmr_report_interval_ms;
        match (link.mmr.clone(), msg) {
            (
                None,
                MmrToController::Hello {
                    mmr,
                    capacity,
                    media,
                    cascade_port,
                },
            ) => {
                if mmr == self.p.local_mmr.0 || capacity == 0 {
                    let message = format!("MMR {mmr} with capacity {capacity} cannot join: the id is taken by this controller's own MMR or the capacity is 0");
                    self.refuse_mmr_link(conn, message);
                    return;
                }
                link.mmr = Some(mmr.clone());
                link.report_due_ms = now_ms + interval_ms * MISSED_REPORTS_DOWN;
                link.keepalive_due_ms = now_ms + interval_ms;
                let from = std::mem::take(&mut link.from);
                // A newer link replaces an older one of the same MMR, which closes quietly.
                if let Some(old) = self.mmr_by_id.insert(mmr.clone(), conn) {
                    self.mmr_links.remove(&old);
                    self.close(old);
                }
                self.mmr_down_due.remove(&mmr);
                self.zc
                    .mmr_up(mmr.clone(), capacity, media.clone(), cascade_port);
                self.event(Event::MmrLinked {
                    mmr: mmr.clone(),
                    from,
                    capacity,
                    media: format!("{}:{}", media.host, media.udp_port),
                });
                let welcome = ControllerToMmr::Welcome {
                    controller: self.p.id.clone(),
                    report_interval_ms: interval_ms,
                };
                self.send(conn, Message::Mmr(welcome));
                self.send(conn, Message::Mmr(ControllerToMmr::Keepalive));
                // A re-linking MMR gets every grant it should hold again.
                for cmd in self.zc.grants_on(&mmr) {
                    self.send(conn, Message::Mmr(to_wire(cmd)));
                }
            }
            (None, _) => {
                self.event(Event::MmrLinkWithoutHello { conn });
                let message = "the first message on an MMR link must be a hello".to_string();
                self.refuse_mmr_link(conn, message);
            }
            (Some(_), MmrToController::Load { .. }) => {
                link.report_due_ms = now_ms + interval_ms * MISSED_REPORTS_DOWN;
            }
            (Some(_), MmrToController::Admitted { token }) => self.grant_confirmed(&token),
            (Some(_), MmrToController::Hello { .. }) => {
                self.mmr_link_ended(now_ms, conn, "said hello twice".into())
            }
        }
    }

    fn refuse_mmr_link(&mut self, conn: ConnId, message: String) {
        self.mmr_links.remove(&conn);
        self.send(conn, Message::Mmr(ControllerToMmr::Refused { message }));
        self.close(conn);
    }

    /// An MMR VM confirmed a grant: release the held `joined`.
    fn grant_confirmed(&mut self, token: &MediaToken) {
        if let Some(super::Held {
            joined: Some((session, msg)),
            ..
        }) = self.held.remove(token)
        {
            if self.sessions.contains(&session) {
                self.send(session, Message::Client(msg));
            }
        }
    }

    pub(super) fn mmr_link_ended(&mut self, now_ms: u64, conn: ConnId, reason: String) {
        let Some(link) = self.mmr_links.remove(&conn) else {
            return;
        };
        self.close(conn);
        let Some(mmr) = link.mmr else { return };
        if self.mmr_by_id.get(&mmr) == Some(&conn) {
            self.mmr_by_id.remove(&mmr);
            let due = now_ms + self.p.mmr_report_interval_ms;
            self.mmr_down_due.insert(mmr, (due, reason));
        }
    }

    pub(super) fn mmr_links_due(&mut self, now_ms: u64) {
        let interval_ms = self.p.mmr_report_interval_ms;
        let due: Vec<ConnId> = self
            .mmr_links
            .iter()
            .filter(|(_, l)| l.next_due_ms() <= now_ms)
            .map(|(c, _)| *c)
            .collect();
        for conn in due {
            let link = self.mmr_links.get_mut(&conn).expect("listed above");
            if link.mmr.is_none() {
                self.event(Event::MmrLinkWithoutHello { conn });
                let message = "the first message on an MMR link must be a hello".to_string();
                self.refuse_mmr_link(conn, message);
            } else if link.report_due_ms <= now_ms {
                let silence_ms = interval_ms * MISSED_REPORTS_DOWN;
                self.mmr_link_ended(now_ms, conn, format!("no load report for {silence_ms} ms"));
            } else {
                link.keepalive_due_ms = now_ms + interval_ms;
                self.send(conn, Message::Mmr(ControllerToMmr::Keepalive));
            }
        }
        let down: Vec<MmrId> = self
            .mmr_down_due
            .iter()
            .filter(|(_, (due, _))| *due <= now_ms)
            .map(|(m, _)| m.clone())
            .collect();
        for mmr in down {
            let (_, reason) = self.mmr_down_due.remove(&mmr).expect("listed above");
            self.zc.mmr_down(now_ms, &mmr, &reason);
            // Grants on a dead MMR will never be confirmed; their sessions were ended above.
            self.held.retain(|_, h| h.mmr != mmr);
            self.pump(now_ms);
            self.event(Event::MmrDown { mmr, reason });
        }
    }
}
