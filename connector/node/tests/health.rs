//! Local health probes on a controller's and an MMR VM's TLS ports: liveness and readiness apart,
//! answered without the cloud, and the full report only to deployment certificates.
// Real sockets: simulations live in sim/.
#![cfg(not(madsim))]

mod common;

use common::Deployment;
use mc_node::config::ControllerConfig;
use mc_node::{controller, EventLog};
use mc_rt::tls::{self, Identity};
use mc_wire::ports::alpn;
use std::net::SocketAddr;
use std::time::Duration;

/// GET `path` on `addr` over TLS with ALPN http/1.1; `Err` carries the status and the message.
async fn get(
    addr: SocketAddr,
    ca: &rustls::pki_types::CertificateDer<'static>,
    client: Option<&Identity>,
    path: &str,
) -> Result<serde_json::Value, String> {
    let config = tls::client_config(ca, client, alpn::HTTP1).unwrap();
    let stream = tls::connect(addr, "127.0.0.1", config, Duration::from_secs(2))
        .await
        .map_err(|e| e.to_string())?;
    mc_node::http::request_json(stream, "GET", "127.0.0.1", path, None, None)
        .await
        .map_err(|e| e.to_string())
}

#[test]
fn a_controller_and_an_mmr_vm_answer_liveness_and_readiness_locally() {
    mc_rt::block_on(async {
        let d = Deployment::start(|_, _| {}).await;
        let ca = d.ca.clone();
        let ctl = d.controller.tls_addr;
        assert_eq!(
            get(ctl, &ca, None, "/livez").await.unwrap()["status"],
            "live"
        );
        assert_eq!(
            get(ctl, &ca, None, "/readyz").await.unwrap()["status"],
            "ready"
        );
        // The same on the dedicated signalling port.
        let sig = d.controller.signal_addr;
        assert_eq!(
            get(sig, &ca, None, "/livez").await.unwrap()["status"],
            "live"
        );

        let anonymous = get(ctl, &ca, None, "/v1/health").await.unwrap_err();
        assert!(anonymous.starts_with("403"), "{anonymous}");
        let operator = d.ids.identity("prometheus").unwrap();
        let full = get(ctl, &ca, Some(&operator), "/v1/health").await.unwrap();
        assert_eq!(full["node"], "controller-1");
        assert_eq!(
            full["links"]["status_sync"]["path"], "dedicated",
            "{full:#}"
        );
        let missing = get(ctl, &ca, None, "/nothing").await.unwrap_err();
        assert!(missing.starts_with("404"), "{missing}");

        let vm = d.start_mmr_vm(10).await;
        assert_eq!(
            get(vm.tls_addr, &ca, None, "/readyz").await.unwrap()["status"],
            "ready"
        );

        // A controller that cannot reach its cloud: live, but not ready — never dead.
        let nothing_there = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let lonely = controller::start(
            ControllerConfig {
                media_cascade_port: 0,
                listen: "127.0.0.1".parse().unwrap(),
                signal_port: 0,
                tls_port: 0,
                media_udp_port: 0,
                media_tcp_port: 0,
                cloud_status_sync_port: nothing_there,
                cloud_notification_port: nothing_there,
                cloud_https_port: nothing_there,
                connect_timeout_ms: 300,
                ..Default::default()
            },
            d.ids.identity("controller-1").unwrap(),
            EventLog::tracing_only("lonely"),
        )
        .await
        .unwrap();
        let at = lonely.tls_addr;
        assert_eq!(
            get(at, &ca, None, "/livez").await.unwrap()["status"],
            "live"
        );
        let not_ready = get(at, &ca, None, "/readyz").await.unwrap_err();
        assert!(not_ready.starts_with("503"), "{not_ready}");
    });
}
