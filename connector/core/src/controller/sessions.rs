//! Signalling sessions: a client joins with a ticket, pings, leaves or goes away.

use super::{Closed, ConnId, Controller, Event, Message};
use mc_wire::signal::{ClientToZc, ZcToClient};

impl Controller {
    pub(super) fn session_opened(&mut self, now_ms: u64, conn: ConnId) {
        self.sessions.insert(conn);
        // A client that connects and never joins would hold a session forever.
        self.join_due
            .insert((now_ms + self.p.handshake_timeout_ms, conn));
    }

    pub(super) fn session_message(&mut self, now_ms: u64, conn: ConnId, msg: ClientToZc) {
        if !self.sessions.contains(&conn) {
            return;
        }
        match msg {
            ClientToZc::Join { ticket } => {
                self.join_due.retain(|(_, c)| *c != conn);
                self.zc.join(now_ms, conn, &ticket);
            }
            ClientToZc::Rejoin { pass } => {
                self.join_due.retain(|(_, c)| *c != conn);
                self.zc.rejoin(now_ms, conn, &pass);
            }
            ClientToZc::Ping => {
                self.send(conn, Message::Client(ZcToClient::Pong));
                self.zc.pinged(now_ms, conn);
            }
            ClientToZc::Leave => self.session_closed(conn, Closed::Clean),
        }
    }

    pub(super) fn session_closed(&mut self, conn: ConnId, why: Closed) {
        if !self.sessions.contains(&conn) {
            return;
        }
        if let Closed::Malformed(error) | Closed::Io(error) = &why {
            self.event(Event::SessionMalformed {
                session: conn,
                error: error.clone(),
            });
        }
        if let Closed::Malformed(error) = why {
            self.send(
                conn,
                Message::Client(ZcToClient::Ended {
                    reason: error,
                    rejoin: false,
                }),
            );
        }
        self.sessions.remove(&conn);
        self.join_due.retain(|(_, c)| *c != conn);
        self.close(conn);
        self.zc.session_closed(conn);
    }

    pub(super) fn sessions_due(&mut self, now_ms: u64) {
        while let Some(&(due, conn)) = self.join_due.first() {
            if due > now_ms {
                break;
            }
            self.join_due.pop_first();
            self.event(Event::SessionNeverJoined { session: conn });
            self.session_closed(conn, Closed::Clean);
        }
    }
}
