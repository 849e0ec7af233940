//! Cloud status sync: controllers register and heartbeat; clients are steered to live ones.

use mc_wire::status::{Load, SignallingEndpoints};
use mc_wire::ControllerId;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ControllerRecord {
    pub id: ControllerId,
    pub zone: String,
    pub signalling: SignallingEndpoints,
    pub capacity: Load,
    pub load: Load,
    pub last_heard_ms: u64,
    pub connected: bool,
    /// Takes new meetings (false while drained). Live and ready are different things: a drained
    /// controller is live, and still serves the meetings it has.
    pub ready: bool,
    /// Which registration (connection) is current, so a stale connection closing late cannot
    /// mark a re-registered controller down.
    #[serde(skip)]
    pub registration: u64,
}

#[derive(Debug)]
pub struct StatusSync {
    /// A controller not heard from for this long is down.
    pub down_after_ms: u64,
    controllers: BTreeMap<ControllerId, ControllerRecord>,
    registrations: u64,
}

impl StatusSync {
    pub fn new(down_after_ms: u64) -> StatusSync {
        StatusSync {
            down_after_ms,
            controllers: BTreeMap::new(),
            registrations: 0,
        }
    }

    /// Returns the registration number to quote in [`StatusSync::disconnected`].
    pub fn register(
        &mut self,
        now_ms: u64,
        id: ControllerId,
        zone: String,
        signalling: SignallingEndpoints,
        capacity: Load,
    ) -> u64 {
        self.registrations += 1;
        let registration = self.registrations;
        let load = self
            .controllers
            .get(&id)
            .map_or(Load::default(), |c| c.load);
        self.controllers.insert(
            id.clone(),
            ControllerRecord {
                id,
                zone,
                signalling,
                capacity,
                load,
                last_heard_ms: now_ms,
                connected: true,
                ready: true,
                registration,
            },
        );
        registration
    }

    /// Returns false for a controller that never registered.
    pub fn heartbeat(
        &mut self,
        now_ms: u64,
        id: &ControllerId,
        load: Load,
        capacity: Load,
        ready: bool,
    ) -> bool {
        match self.controllers.get_mut(id) {
            Some(c) => {
                c.ready = ready;
                c.load = load;
                c.capacity = capacity;
                c.last_heard_ms = now_ms;
                c.connected = true;
                true
            }
            None => false,
        }
    }

    pub fn disconnected(&mut self, id: &ControllerId, registration: u64) {
        if let Some(c) = self
            .controllers
            .get_mut(id)
            .filter(|c| c.registration == registration)
        {
            c.connected = false;
        }
    }

    pub fn is_live(&self, now_ms: u64, c: &ControllerRecord) -> bool {
        c.connected && now_ms.saturating_sub(c.last_heard_ms) <= self.down_after_ms
    }

    /// Live, ready controllers, least loaded (by participants) first, for a client to try in order.
    pub fn live_controllers(&self, now_ms: u64) -> Vec<&ControllerRecord> {
        let mut live: Vec<_> = self
            .controllers
            .values()
            .filter(|c| self.is_live(now_ms, c) && c.ready)
            .collect();
        live.sort_by(|a, b| {
            a.load
                .participants
                .cmp(&b.load.participants)
                .then_with(|| a.id.cmp(&b.id))
        });
        live
    }

    pub fn all(&self) -> impl Iterator<Item = &ControllerRecord> {
        self.controllers.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep() -> SignallingEndpoints {
        SignallingEndpoints {
            host: "127.0.0.1".into(),
            port: 8802,
            fallback_port: 443,
        }
    }

    #[test]
    fn silent_controllers_stop_being_offered() {
        let mut s = StatusSync::new(3_000);
        s.register(
            0,
            ControllerId("a".into()),
            "z".into(),
            ep(),
            Load {
                participants: 200,
                meetings: 100,
            },
        );
        let _ = s.register(
            0,
            ControllerId("b".into()),
            "z".into(),
            ep(),
            Load {
                participants: 200,
                meetings: 100,
            },
        );
        assert!(s.heartbeat(
            2_000,
            &ControllerId("a".into()),
            Load {
                participants: 5,
                meetings: 1
            },
            Load {
                participants: 400,
                meetings: 100
            },
            true
        ));
        assert_eq!(s.all().next().unwrap().capacity.participants, 400);
        assert_eq!(s.live_controllers(2_500).len(), 2);
        let live: Vec<_> = s
            .live_controllers(4_000)
            .iter()
            .map(|c| c.id.0.clone())
            .collect();
        assert_eq!(live, vec!["a"]);
        let again = s.register(
            3_900,
            ControllerId("a".into()),
            "z".into(),
            ep(),
            Load::default(),
        );
        s.disconnected(&ControllerId("a".into()), again - 1);
        assert_eq!(
            s.live_controllers(4_000).len(),
            1,
            "a stale connection closing does not mark it down"
        );
        s.disconnected(&ControllerId("a".into()), again);
        assert!(s.live_controllers(4_000).is_empty());
        assert!(!s.heartbeat(
            0,
            &ControllerId("nobody".into()),
            Load::default(),
            Load::default(),
            true
        ));
    }
}
