//! The peer link of an HA pair (mutual TLS, ALPN `mc-peer/1`, on the peer's 8802 falling back to
//! 443): this controller dials its peer and the core pings over the link; the peer's own link to
//! us is accepted like any connection and the core answers its pings.

use super::outbound::{self, Dial, Linked};
use super::Ctx;
use crate::events::LinkEvent;
use mc_core::controller::Input;
use mc_core::fallback::Backoff;
use mc_rt::tls::{self, Identity};
use mc_wire::peer::PeerMsg;
use mc_wire::ports::alpn;

pub(super) const LINK: &str = "peer";

/// The controller a peer message says it comes from.
pub(super) fn sender(msg: &PeerMsg) -> &str {
    match msg {
        PeerMsg::Ping { controller, .. } | PeerMsg::Pong { controller, .. } => &controller.0,
    }
}

pub(super) async fn run(ctx: Ctx, identity: Identity) {
    let Some(host) = ctx.config.peer_host.clone() else {
        return;
    };
    let tls = match tls::client_config(&identity.ca, Some(&identity), alpn::PEER) {
        Ok(c) => c,
        Err(e) => {
            ctx.events.record(LinkEvent::CannotLink {
                to: "the peer controller",
                error: e.to_string(),
            });
            return;
        }
    };
    let ports = [ctx.config.peer_port, ctx.config.peer_fallback_port];
    // The peer is redialled at the ping interval: its silence is what the lease measures.
    let every_ms = ctx.config.peer_interval_ms;
    let dial = Dial {
        link: LINK,
        host: host.clone(),
        ports,
        tls,
        backoff: Backoff::linear(every_ms, every_ms),
        expect: crate::dial::Expect {
            role: mc_rt::identity::CertRole::Controller,
            link: crate::identity_gate::link::PEER,
            gate: ctx.identity.clone(),
        },
    };
    let link_ctx = ctx.clone();
    let run_link = move |l: Linked| {
        let (ctx, host) = (link_ctx.clone(), host.clone());
        async move {
            // The dial checked the role; each ping and pong must also name the certified peer.
            let addr = l.stream.get_ref().0.peer_addr();
            let addr = addr.unwrap_or_else(|_| ([0, 0, 0, 0], l.port).into());
            let certified = match tls::server_identity(&l.stream) {
                Ok(id) => id,
                Err(e) => {
                    return ctx
                        .identity
                        .refused(crate::identity_gate::link::PEER, addr, &e)
                }
            };
            ctx.links.up(LINK, l.path, l.port);
            let conn = ctx.core.conn_id();
            let open = Input::PeerLinkOpened {
                conn,
                dialled: Some((host, l.port)),
            };
            let vouch = super::Vouch {
                gate: ctx.identity.clone(),
                link: crate::identity_gate::link::PEER,
                peer: addr,
                certified,
            };
            let input = move |msg: PeerMsg| match vouch.claims(Some(sender(&msg))) {
                Ok(()) => Input::Peer { conn, msg },
                Err(why) => Input::Closed { conn, why },
            };
            super::conn::run(l.stream, &ctx.core, conn, open, input, Some(l.leave)).await
        }
    };
    let host = ctx.config.peer_host.clone().unwrap_or_default();
    outbound::supervise(ctx, dial, run_link, move |ctx, _, first| {
        if first {
            ctx.events.record(LinkEvent::PeerUnreachable {
                host: host.clone(),
                ports,
            });
        }
    })
    .await
}
