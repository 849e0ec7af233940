//! Writes the seed corpus: `cargo run --manifest-path fuzz/Cargo.toml --example seed_corpus`.
//!
//! Each target's seeds go to `fuzz/corpus/<target>/seed-<name>`, made by the real encoders
//! (`src/seeds.rs`). Old `seed-*` files are replaced; anything else there (regressions kept from
//! crashes, `crash-*`) is left alone.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let seeds = mc_fuzz::seeds::all();
    let targets: BTreeSet<&str> = seeds.iter().map(|s| s.target).collect();
    for t in &targets {
        let dir = root.join(t);
        fs::create_dir_all(&dir)?;
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            if path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("seed-"))
            {
                fs::remove_file(path)?;
            }
        }
    }
    for s in &seeds {
        fs::write(
            root.join(s.target).join(format!("seed-{}", s.name)),
            &s.bytes,
        )?;
    }
    println!(
        "wrote {} seeds for {} targets under {}",
        seeds.len(),
        targets.len(),
        root.display()
    );
    Ok(())
}
