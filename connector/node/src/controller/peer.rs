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
    };
    let link_ctx = ctx.clone();
    let run_link = move |l: Linked| {
        let (ctx, host) = (link_ctx.clone(), host.clone());
        async move {
            ctx.links.up(LINK, l.path, l.port);
            let conn = ctx.core.conn_id();
            let open = Input::PeerLinkOpened {
                conn,
                dialled: Some((host, l.port)),
            };
            let input = move |msg: PeerMsg| Input::Peer { conn, msg };
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
