//! Putting shards back together: every check a sweep's parts must pass before their results are
//! believed (one build, one set of scenarios and seeds, every shard and every seed exactly once),
//! then the report, recomputed from the raw figures, exactly as one process would have written
//! it.

use super::{Build, Header, Shard, FORMAT};
use crate::report::{markdown, summarize, ScenarioSummary};
use crate::run::RunResult;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub enum MergeError {
    /// An input could not be read, or holds no shard file.
    Read(PathBuf, String),
    /// The inputs do not make one complete sweep; every reason found.
    Refused(Vec<String>),
    /// The report could not be written.
    Write(PathBuf, std::io::Error),
}

impl std::fmt::Display for MergeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MergeError::Read(p, e) => write!(f, "{}: {e}", p.display()),
            MergeError::Refused(why) => {
                write!(f, "these shards do not make one complete sweep:")?;
                for w in why {
                    write!(f, "\n  - {w}")?;
                }
                Ok(())
            }
            MergeError::Write(p, e) => write!(f, "{}: cannot write: {e}", p.display()),
        }
    }
}

/// A merged sweep: its build and one summary per scenario, in the sweep's order.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub build: Build,
    pub scenarios: Vec<ScenarioSummary>,
}

/// The shard files among `inputs`: files as given, directories searched (recursively) for
/// `shard-K-of-N.jsonl`, in path order.
pub fn shard_files(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, MergeError> {
    let mut found = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let before = found.len();
            walk(input, &mut found)?;
            if found.len() == before {
                return Err(MergeError::Read(
                    input.clone(),
                    "no shard file (shard-K-of-N.jsonl) in this directory".into(),
                ));
            }
        } else {
            found.push(input.clone());
        }
    }
    found.sort();
    Ok(found)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> Result<(), MergeError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| MergeError::Read(dir.into(), e.to_string()))?;
    for entry in entries {
        let path = entry
            .map_err(|e| MergeError::Read(dir.into(), e.to_string()))?
            .path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            walk(&path, found)?;
        } else if name.starts_with("shard-") && name.ends_with(".jsonl") {
            found.push(path);
        }
    }
    Ok(())
}

struct Input {
    path: PathBuf,
    header: Header,
    /// Result lines with their line numbers.
    results: Vec<(usize, RunResult)>,
}

fn read(path: &Path) -> Result<Input, MergeError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| MergeError::Read(path.into(), format!("cannot read: {e}")))?;
    let mut lines = text.lines().enumerate();
    let header: Header = lines
        .next()
        .and_then(|(_, l)| serde_json::from_str(l).ok())
        .ok_or_else(|| {
            MergeError::Read(
                path.into(),
                "not a shard file: its first line is not a shard header (write one with `scenario run --shard K/N`)".into(),
            )
        })?;
    if header.format != FORMAT {
        return Err(MergeError::Read(
            path.into(),
            format!(
                "a shard file of format {}, this runner reads format {FORMAT}",
                header.format
            ),
        ));
    }
    let mut results = Vec::new();
    for (i, line) in lines {
        let r: RunResult = serde_json::from_str(line).map_err(|e| {
            MergeError::Read(
                path.into(),
                format!("line {}: not a result ({e}); a shard stopped while writing leaves a partial last line: run that shard again", i + 1),
            )
        })?;
        results.push((i + 1, r));
    }
    Ok(Input {
        path: path.into(),
        header,
        results,
    })
}

/// Shards checked to make one complete sweep: their common header and every result, by
/// (scenario's index in the header, seed), with the shard file it came from.
pub struct Sweep {
    pub header: Header,
    files: Vec<PathBuf>,
    results: BTreeMap<(usize, u64), (usize, RunResult)>,
}

impl Sweep {
    /// One scenario's results, in seed order, with their shard files.
    pub fn of(&self, scenario: usize) -> impl Iterator<Item = (&Path, &RunResult)> {
        self.results
            .range((scenario, 0)..=(scenario, u64::MAX))
            .map(|(_, (f, r))| (self.files[*f].as_path(), r))
    }
}

/// Reads the shard `files` and checks that they make one sweep: one build, one set of
/// scenarios and seeds, every shard and every (scenario, seed) exactly once. Every reason found
/// is given, not only the first.
pub fn collect(files: &[PathBuf]) -> Result<Sweep, MergeError> {
    let inputs: Vec<Input> = files.iter().map(|f| read(f)).collect::<Result<_, _>>()?;
    let Some(first) = inputs.first() else {
        return Err(MergeError::Refused(vec!["no shard files given".into()]));
    };
    let header = first.header.clone();
    let head = &header;
    let mut why = Vec::new();
    for i in &inputs[1..] {
        why.extend(mismatch(&first.path, head, &i.path, &i.header));
    }
    let mut by_shard: BTreeMap<u32, Vec<&Path>> = BTreeMap::new();
    for i in &inputs {
        by_shard
            .entry(i.header.shard.index)
            .or_default()
            .push(&i.path);
    }
    let count = head.shard.count;
    for index in 1..=count {
        let shard = Shard { index, count };
        match by_shard.get(&index).map(Vec::as_slice) {
            None | Some([]) => why.push(format!(
                "shard {shard} is missing (no {} among the inputs)",
                shard.file_name()
            )),
            Some([_]) => {}
            Some(more) => why.push(format!(
                "shard {shard} is given {} times: {}",
                more.len(),
                show(more)
            )),
        }
    }
    if !why.is_empty() {
        return Err(MergeError::Refused(why));
    }

    let index: BTreeMap<&str, usize> = head
        .scenarios
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    // Where each (scenario, seed) is: the input and line, to name both ends of a repeat.
    let mut got: BTreeMap<(usize, u64), (usize, usize)> = BTreeMap::new();
    for (n, input) in inputs.iter().enumerate() {
        for (line, r) in &input.results {
            let at = || format!("{}:{line}", input.path.display());
            let Some(&s) = index.get(r.scenario.as_str()) else {
                why.push(format!(
                    "{}: a result of scenario {:?}, which is not in the sweep",
                    at(),
                    r.scenario
                ));
                continue;
            };
            if !head.scenarios[s].seeds().any(|seed| seed == r.seed) {
                why.push(format!(
                    "{}: {} seed {}, which is not among the sweep's seeds",
                    at(),
                    r.scenario,
                    r.seed
                ));
                continue;
            }
            if let Some((other, other_line)) = got.get(&(s, r.seed)) {
                why.push(format!(
                    "{} seed {} is there twice: {}:{other_line} and {}",
                    r.scenario,
                    r.seed,
                    inputs[*other].path.display(),
                    at()
                ));
                continue;
            }
            got.insert((s, r.seed), (n, *line));
        }
    }
    let mut pair = 0usize;
    for (s, entry) in head.scenarios.iter().enumerate() {
        let mut missing: BTreeMap<Shard, Vec<u64>> = BTreeMap::new();
        for seed in entry.seeds() {
            if !got.contains_key(&(s, seed)) {
                let owner = (1..=count)
                    .map(|index| Shard { index, count })
                    .find(|sh| sh.takes(pair))
                    .expect("every pair has a shard");
                missing.entry(owner).or_default().push(seed);
            }
            pair += 1;
        }
        for (shard, seeds) in missing {
            why.push(format!(
                "{}: {} seed(s) missing, shard {shard}'s ({}): did that shard finish?",
                entry.name,
                seeds.len(),
                seed_list(&seeds)
            ));
        }
    }
    if !why.is_empty() {
        return Err(MergeError::Refused(why));
    }
    // Every result is now known to be in the sweep exactly once: move them, don't copy.
    let mut files = Vec::new();
    let mut results = BTreeMap::new();
    for (n, input) in inputs.into_iter().enumerate() {
        files.push(input.path);
        for (_, r) in input.results {
            let s = index[r.scenario.as_str()];
            results.insert((s, r.seed), (n, r));
        }
    }
    Ok(Sweep {
        header,
        files,
        results,
    })
}

/// Merges the scenario runner's shard `files` into one report, writes `report.md` and
/// `report.json` to `out` and copies the failing seeds' event logs there (from beside each shard
/// file).
pub fn merge(files: &[PathBuf], out: &Path) -> Result<Report, MergeError> {
    let sweep = collect(files)?;
    if sweep.header.plan.is_some() {
        return Err(MergeError::Refused(vec![
            "these are the shards of a capacity plan: merge them with `plan merge`".into(),
        ]));
    }
    std::fs::create_dir_all(out).map_err(|e| MergeError::Write(out.into(), e))?;
    let mut scenarios = Vec::new();
    for (s, entry) in sweep.header.scenarios.iter().enumerate() {
        let results: Vec<&RunResult> = sweep.of(s).map(|(_, r)| r).collect();
        let mut logs = BTreeMap::new();
        for (shard_file, r) in sweep.of(s).filter(|(_, r)| !r.passed()) {
            let name = format!("{}-seed{}.log", r.scenario, r.seed);
            let beside = shard_file.parent().unwrap_or(Path::new("."));
            if copy_log(beside, &name, out)? {
                logs.insert(r.seed, name);
            }
        }
        scenarios.push(summarize(
            &results,
            |seed| format!("ci/scenario run {} --seed {seed}", entry.file),
            |seed| logs.get(&seed).cloned(),
        ));
    }
    let report = Report {
        build: sweep.header.build.clone(),
        scenarios,
    };
    let write = |name: &str, text: &str| {
        let path = out.join(name);
        std::fs::write(&path, text).map_err(|e| MergeError::Write(path, e))
    };
    write(
        "report.md",
        &markdown(Some(&report.build), &report.scenarios),
    )?;
    write("report.json", &json(&report))?;
    Ok(report)
}

pub fn json(report: &Report) -> String {
    serde_json::to_string_pretty(report).expect("a report serializes")
}

/// Copies a failing seed's event log `name` from directory `from_dir` into `out` (nothing to do
/// when that is where it already is). Whether `out` has it now.
pub fn copy_log(from_dir: &Path, name: &str, out: &Path) -> Result<bool, MergeError> {
    let from = from_dir.join(name);
    let to = out.join(name);
    let same = matches!(
        (from.canonicalize(), out.canonicalize()),
        (Ok(f), Ok(o)) if f.parent() == Some(o.as_path())
    );
    if same {
        return Ok(true);
    }
    if !from.exists() {
        return Ok(false);
    }
    std::fs::copy(&from, &to).map_err(|e| MergeError::Write(to, e))?;
    Ok(true)
}

/// Why two shard headers cannot belong to one sweep.
fn mismatch(a_path: &Path, a: &Header, b_path: &Path, b: &Header) -> Vec<String> {
    let (a_name, b_name) = (a_path.display(), b_path.display());
    let mut why = Vec::new();
    if a.build != b.build {
        why.push(format!(
            "{b_name} comes from another build (commit {}, runner SHA-256 {}) than {a_name} (commit {}, runner SHA-256 {}): ship one build to every shard",
            b.build.commit,
            &b.build.binary_sha256[..12.min(b.build.binary_sha256.len())],
            a.build.commit,
            &a.build.binary_sha256[..12.min(a.build.binary_sha256.len())]
        ));
    }
    if a.shard.count != b.shard.count {
        why.push(format!(
            "{b_name} is shard {} but {a_name} is shard {}: one sweep has one shard count",
            b.shard, a.shard
        ));
    }
    if a.plan != b.plan {
        why.push(format!(
            "{b_name} is of another plan than {a_name} (the forecast, its seeds or its options differ)"
        ));
    }
    if a.scenarios != b.scenarios {
        let names = |h: &Header| {
            h.scenarios
                .iter()
                .map(|s| s.name.clone())
                .collect::<Vec<_>>()
        };
        let detail = if names(a) != names(b) {
            format!("scenarios {:?} against {:?}", names(b), names(a))
        } else {
            let differs = a
                .scenarios
                .iter()
                .zip(&b.scenarios)
                .find(|(x, y)| x != y)
                .map(|(x, y)| {
                    if x.sha256 != y.sha256 {
                        format!("{}'s file differs", x.name)
                    } else if x.seeds != y.seeds {
                        format!("{}'s seeds differ", x.name)
                    } else {
                        format!("{} is read from {} against {}", x.name, y.file, x.file)
                    }
                })
                .unwrap_or_default();
            differs
        };
        why.push(format!(
            "{b_name} ran another sweep than {a_name}: {detail}"
        ));
    }
    why
}

fn show(paths: &[&Path]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `1, 4..=9, 12` (at most a few ranges, then a count).
fn seed_list(seeds: &[u64]) -> String {
    let ranges = super::ranges(seeds);
    let mut parts: Vec<String> = ranges
        .iter()
        .take(6)
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}..={b}")
            }
        })
        .collect();
    if ranges.len() > 6 {
        parts.push(format!("and {} more ranges", ranges.len() - 6));
    }
    parts.join(", ")
}
