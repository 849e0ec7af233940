//! The controller's link to cloud status sync: mutual TLS on the dedicated port (8803), falling
//! back to 443. The core registers, heartbeats, claims and releases over it, and decides when it
//! is dead; this task dials, falls back and moves back (see [`super::outbound`]).

use super::outbound::{self, Dial, Linked};
use super::Ctx;
use crate::events::LinkEvent;
use mc_core::controller::Input;
use mc_rt::tls::{self, Identity};
use mc_wire::ports::alpn;
use mc_wire::status::CloudToController;

pub(super) const LINK: &str = "status_sync";

pub(super) async fn run(ctx: Ctx, identity: Identity) {
    let tls = match tls::client_config(&identity.ca, Some(&identity), alpn::STATUS_SYNC) {
        Ok(c) => c,
        Err(e) => {
            ctx.events.record(LinkEvent::CannotLink {
                to: "the cloud",
                error: e.to_string(),
            });
            return;
        }
    };
    let dial = Dial {
        link: LINK,
        host: ctx.config.cloud_host.clone(),
        ports: [
            ctx.config.cloud_status_sync_port,
            ctx.config.cloud_https_port,
        ],
        tls,
        backoff: outbound::CLOUD_BACKOFF,
        expect: crate::dial::Expect {
            role: mc_rt::identity::CertRole::Cloud,
            link: crate::identity_gate::link::STATUS_SYNC,
            gate: ctx.identity.clone(),
        },
    };
    let link_ctx = ctx.clone();
    let run_link = move |l: Linked| {
        let ctx = link_ctx.clone();
        async move {
            let conn = ctx.core.conn_id();
            let open = Input::CloudLinkOpened {
                conn,
                port: l.port,
                path: l.path,
            };
            let input = move |msg: CloudToController| Input::Cloud { conn, msg };
            super::conn::run(l.stream, &ctx.core, conn, open, input, Some(l.leave)).await
        }
    };
    outbound::supervise(ctx, dial, run_link, |ctx, backoff_ms, _| {
        ctx.events.record(LinkEvent::CloudUnreachable {
            retry_in_ms: backoff_ms,
        })
    })
    .await
}
