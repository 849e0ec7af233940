//! CPU time read from `/proc` (Linux only; elsewhere every reading is `None` and the tables say
//! "n/a").
//!
//! Two views: the CPU time of chosen threads (the runtime a server under test runs on, see
//! [`crate::isolated`]), so a forwarder is charged with its own work and not with the load
//! generator's; and the CPU time of the whole process, for benchmarks whose every party (client,
//! cloud, controller) runs in this process anyway.

use std::collections::BTreeSet;

/// Linux reports `utime`/`stime` in USER_HZ ticks, which is 100 on every architecture it
/// supports (the kernel's `CLOCK_TICKS` seen by user space, independent of `CONFIG_HZ`).
const NS_PER_TICK: u64 = 10_000_000;

/// The ids of this process's threads now.
pub fn thread_ids() -> BTreeSet<u32> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return BTreeSet::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// CPU time one thread of this process has used, in nanoseconds. `schedstat` counts
/// nanoseconds; `stat` (10 ms ticks) is the fallback on kernels without scheduler statistics.
pub fn thread_cpu_ns(tid: u32) -> Option<u64> {
    if let Ok(s) = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")) {
        if let Some(ns) = s.split_whitespace().next().and_then(|f| f.parse().ok()) {
            return Some(ns);
        }
    }
    stat_cpu_ns(&std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?)
}

/// Context switches of one thread of this process, voluntary (it slept: an empty socket, a
/// parked worker) and involuntary (it was preempted).
pub fn thread_context_switches(tid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .trim()
            .parse()
            .ok()
    };
    Some(field("voluntary_ctxt_switches:")? + field("nonvoluntary_ctxt_switches:")?)
}

/// CPU time of the whole process (every thread, including ones that have exited), user plus
/// system, in nanoseconds, with 10 ms resolution.
pub fn process_cpu_ns() -> Option<u64> {
    stat_cpu_ns(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// `utime + stime` from a `stat` line. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from the last `)`: after it come field 3 (state) onwards,
/// and `utime`, `stime` are fields 14 and 15.
fn stat_cpu_ns(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) * NS_PER_TICK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let line = "4242 (a (weird) name) R 1 2 3 4 5 6 7 8 9 10 120 30 0 0 20 0 1 0";
        assert_eq!(stat_cpu_ns(line), Some(150 * NS_PER_TICK));
    }

    #[test]
    fn this_process_has_threads_and_uses_cpu() {
        if cfg!(target_os = "linux") {
            assert!(thread_ids().contains(&std::process::id()));
            assert!(process_cpu_ns().is_some());
            assert!(thread_cpu_ns(std::process::id()).is_some());
            assert!(thread_context_switches(std::process::id()).is_some());
        }
    }
}
