//! Seed sweeps split across machines: a shard runs its share of the (scenario, seed) pairs and
//! writes every result as one JSON line, raw figures and all; [`merge`] puts any set of shards
//! back together and renders the report one process over the same seeds would have written.
//!
//! A shard file (`shard-K-of-N.jsonl`) starts with a [`Header`] naming the build (commit and the
//! runner's own SHA-256), the shard, and every scenario with its file's SHA-256 and its whole seed
//! set (all shards'), so a merge can check that the shards belong together and that no seed is
//! missing or run twice. Each further line is one seed's [`RunResult`].
//!
//! Pairs are dealt round-robin in (scenario, seed) order: pair `i` goes to shard `i mod N + 1`,
//! so every shard gets a share of every scenario, cheap and expensive alike.

pub mod merge;

use crate::run::RunResult;
use serde::{Deserialize, Serialize};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Bumped when a shard file's layout changes; a merge refuses files of another format.
pub const FORMAT: u32 = 1;

/// Shard `index` of `count` (1-based), from `--shard K/N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// The whole sweep in one shard: what `run` does without `--shard`.
    pub const WHOLE: Shard = Shard { index: 1, count: 1 };

    /// Whether the `pair`-th (scenario, seed) pair, counted from 0 over the whole sweep, is this
    /// shard's.
    pub fn takes(self, pair: usize) -> bool {
        pair % self.count as usize == (self.index - 1) as usize
    }

    pub fn file_name(self) -> String {
        format!("shard-{}-of-{}.jsonl", self.index, self.count)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Shard, String> {
        let bad = || format!("{s:?}: expected K/N, shard K of N, with 1 ≤ K ≤ N (e.g. 3/8)");
        let (k, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (
            k.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// What the results were produced by. Shards of one sweep must all come from the same build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Build {
    /// The commit the runner was built from (`unknown` outside git; `MC_BUILD_COMMIT` at build
    /// time overrides it, for builds from a source archive).
    pub commit: String,
    /// SHA-256 of the runner executable itself: the build's true identity.
    pub binary_sha256: String,
}

impl Build {
    /// This executable's build.
    pub fn this() -> std::io::Result<Build> {
        let exe = std::env::current_exe()?;
        Ok(Build {
            commit: env!("MC_BUILD_COMMIT").to_string(),
            binary_sha256: mc_core::digest::sha256_hex(&std::fs::read(exe)?),
        })
    }
}

/// One scenario of the sweep, as every shard of it must agree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioEntry {
    pub name: String,
    /// The file as given on the command line (the report's reproduce commands name it).
    pub file: String,
    pub sha256: String,
    /// Every seed of the sweep for this scenario, as inclusive ranges.
    pub seeds: Vec<(u64, u64)>,
}

impl ScenarioEntry {
    pub fn new(name: &str, file: &Path, bytes: &[u8], seeds: &[u64]) -> ScenarioEntry {
        ScenarioEntry {
            name: name.to_string(),
            file: file.display().to_string(),
            sha256: mc_core::digest::sha256_hex(bytes),
            seeds: ranges(seeds),
        }
    }

    pub fn seeds(&self) -> impl Iterator<Item = u64> + '_ {
        self.seeds.iter().flat_map(|&(a, b)| a..=b)
    }

    pub fn seed_count(&self) -> u64 {
        self.seeds.iter().map(|&(a, b)| b - a + 1).sum()
    }
}

/// Sorted, deduplicated seeds as inclusive ranges: 1..=10000 is one pair, not ten thousand.
fn ranges(seeds: &[u64]) -> Vec<(u64, u64)> {
    let mut sorted = seeds.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for s in sorted {
        match out.last_mut() {
            Some((_, b)) if *b + 1 == s => *b = s,
            _ => out.push((s, s)),
        }
    }
    out
}

/// A shard file's first line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub format: u32,
    pub shard: Shard,
    pub build: Build,
    pub scenarios: Vec<ScenarioEntry>,
    /// For a capacity plan's shards: what the plan is of (its scenarios are the plan's cases).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<crate::plan::shard::PlanSweep>,
}

/// Writes a shard file: the header at once, then results as they come, each line flushed, so a
/// shard killed midway leaves every result it finished.
pub struct ShardWriter {
    path: PathBuf,
    out: BufWriter<std::fs::File>,
}

impl ShardWriter {
    pub fn create(path: &Path, header: &Header) -> std::io::Result<ShardWriter> {
        let mut w = ShardWriter {
            path: path.to_path_buf(),
            out: BufWriter::new(std::fs::File::create(path)?),
        };
        w.line(&serde_json::to_string(header).expect("a header serializes"))?;
        Ok(w)
    }

    pub fn append(&mut self, results: &[RunResult]) -> std::io::Result<()> {
        for r in results {
            self.line(&serde_json::to_string(r).expect("a run result serializes"))?;
        }
        Ok(())
    }

    fn line(&mut self, text: &str) -> std::io::Result<()> {
        writeln!(self.out, "{text}")?;
        self.out.flush()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_deal_every_pair_to_exactly_one_shard() {
        assert_eq!("3/8".parse::<Shard>(), Ok(Shard { index: 3, count: 8 }));
        for bad in ["0/4", "5/4", "4", "a/b", "1/0", ""] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains("expected K/N"), "{bad}: {e}");
        }
        let shards: Vec<Shard> = (1..=3).map(|index| Shard { index, count: 3 }).collect();
        for pair in 0..10 {
            assert_eq!(shards.iter().filter(|s| s.takes(pair)).count(), 1);
        }
        assert!((0..10).all(|p| Shard::WHOLE.takes(p)));
    }

    #[test]
    fn seeds_are_kept_as_ranges() {
        assert_eq!(
            ranges(&[5, 1, 2, 3, 9, 3, 10]),
            vec![(1, 3), (5, 5), (9, 10)]
        );
        let e = ScenarioEntry::new("x", Path::new("x.toml"), b"", &[1, 2, 3, 7]);
        assert_eq!(e.seeds().collect::<Vec<_>>(), vec![1, 2, 3, 7]);
        assert_eq!(e.seed_count(), 4);
    }
}
