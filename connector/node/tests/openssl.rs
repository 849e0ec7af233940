//! What an operator checks with `openssl s_client`: TLS 1.3 only, and mutual TLS on links.
//! Needs the `openssl` command (`.ci/run` installs it).
// Real sockets and a real runtime: simulations live in sim/.
#![cfg(not(madsim))]

mod common;

use common::Deployment;
use std::path::PathBuf;
use std::process::{Command, Stdio};

struct Pems {
    dir: PathBuf,
}

impl Pems {
    fn write(d: &Deployment) -> Pems {
        let dir = std::env::temp_dir().join(format!(
            "mc-openssl-{}-{}",
            std::process::id(),
            mc_rt::fresh_seed()
        ));
        d.ids.write(&dir).unwrap();
        Pems { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

impl Drop for Pems {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `openssl s_client` with `args`; returns whether it exited 0 and everything it printed.
fn s_client(addr: std::net::SocketAddr, args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .arg("s_client")
        .arg("-connect")
        .arg(addr.to_string())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the openssl command is installed (.ci/run installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn zc_ports_speak_tls_1_3_only_and_links_require_a_certificate() {
    mc_rt::block_on(async {
        let d = Deployment::start(|_, _| {}).await;
        let pems = Pems::write(&d);
        let ca = pems.path("ca.pem");
        for addr in [d.controller.signal_addr, d.controller.tls_addr] {
            let (ok, out) = s_client(
                addr,
                &[
                    "-tls1_3",
                    "-CAfile",
                    &ca,
                    "-verify_ip",
                    "127.0.0.1",
                    "-verify_return_error",
                ],
            );
            assert!(
                ok && out.contains("TLSv1.3") && out.contains("Verify return code: 0 (ok)"),
                "TLS 1.3 to {addr}:\n{out}"
            );
            let (ok, out) = s_client(addr, &["-tls1_2", "-CAfile", &ca]);
            assert!(
                !ok && out.contains("alert protocol version"),
                "TLS 1.2 to {addr} must be refused:\n{out}"
            );
        }

        // The on-premises link (MMR VMs, HA peers) on the ZC ports.
        for addr in [d.controller.signal_addr, d.controller.tls_addr] {
            let (ok, out) = s_client(
                addr,
                &["-tls1_3", "-CAfile", &ca, "-alpn", "mc-link/1", "-ign_eof"],
            );
            assert!(
                !ok && out.contains("certificate required"),
                "an MMR link without a certificate must be refused on {addr}:\n{out}"
            );
        }

        let link = d.cloud.status_sync_addr;
        // -ign_eof: wait for the server's verdict, which comes after the client's handshake ends.
        let (ok, out) = s_client(
            link,
            &[
                "-tls1_3",
                "-CAfile",
                &ca,
                "-alpn",
                "mc-status/1",
                "-ign_eof",
            ],
        );
        assert!(
            !ok && out.contains("certificate required"),
            "a link peer without a certificate must be refused:\n{out}"
        );
        let cert = [
            "-cert",
            &pems.path("controller-1.pem"),
            "-key",
            &pems.path("controller-1.key"),
        ];
        let (ok, out) = s_client(
            link,
            &[
                &["-tls1_3", "-CAfile", &ca, "-alpn", "mc-status/1"][..],
                &cert[..],
            ]
            .concat(),
        );
        assert!(
            ok && out.contains("ALPN protocol: mc-status/1"),
            "a deployment certificate is accepted:\n{out}"
        );
    });
}
