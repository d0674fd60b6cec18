//! CPU time of processes and of the machine, from `/proc`, so the soak can
//! say who used the cores when the service fell behind.

use std::collections::HashMap;

/// Clock ticks per second of `/proc/<pid>/stat` (`USER_HZ`, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// `(ppid, utime + stime)` of `pid`, in clock ticks.
fn stat(pid: u32) -> Option<(u32, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((ppid, utime + stime))
}

/// CPU seconds used so far by `pid` (0 if it is gone).
pub fn seconds(pid: u32) -> f64 {
    stat(pid).map_or(0.0, |(_, t)| t as f64 / TICKS_PER_SECOND)
}

/// CPU seconds used so far by `pid` and its living children (a PostgreSQL
/// postmaster and its backends).
pub fn seconds_with_children(pid: u32) -> f64 {
    let mut ticks = 0;
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(other) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if let Some((ppid, t)) = stat(other)
            && (other == pid || ppid == pid)
        {
            ticks += t;
        }
    }
    ticks as f64 / TICKS_PER_SECOND
}

/// Busy and total CPU seconds of the whole machine (all cores) so far.
pub fn machine() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return (0.0, 0.0);
    };
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = ticks.iter().take(8).sum();
    // idle and iowait
    let idle = ticks.get(3).copied().unwrap_or(0) + ticks.get(4).copied().unwrap_or(0);
    (
        (total - idle) as f64 / TICKS_PER_SECOND,
        total as f64 / TICKS_PER_SECOND,
    )
}

/// Differences between two readings of named CPU counters, as a share of
/// one core over `seconds` of wall time (100 = one core busy).
pub fn percent_of_core(
    before: &HashMap<String, f64>,
    after: &HashMap<String, f64>,
    seconds: f64,
) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = after
        .iter()
        .map(|(name, a)| {
            let b = before.get(name).copied().unwrap_or(*a);
            (name.clone(), 100.0 * (a - b) / seconds.max(0.001))
        })
        .collect();
    out.sort_by(|x, y| x.0.cmp(&y.0));
    out
}
