//! Records the commit the runner is built from, so every shard of a sweep names its build
//! (`MC_BUILD_COMMIT`). `MC_BUILD_COMMIT` set at build time wins (a build from a source archive
//! has no git); outside git it is `unknown`.
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    println!("cargo:rerun-if-env-changed=MC_BUILD_COMMIT");
    // Rebuilt when HEAD moves: HEAD itself (a checkout) and the branch refs (a commit).
    for (what, file) in [
        ("--git-dir", "HEAD"),
        ("--git-common-dir", "refs/heads"),
        ("--git-common-dir", "packed-refs"),
    ] {
        if let Some(dir) = git(&["rev-parse", what]) {
            // Relative paths are relative to this package's directory, where cargo runs us.
            let here = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default();
            let path = std::path::Path::new(&here).join(dir).join(file);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    let commit = std::env::var("MC_BUILD_COMMIT")
        .ok()
        .filter(|c| !c.is_empty())
        .or_else(|| git(&["rev-parse", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=MC_BUILD_COMMIT={commit}");
}
