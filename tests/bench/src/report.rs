//! The results: one table on stdout, the same rows as JSON.

use serde::Serialize;

use crate::load::{LoadSettings, Stats};

/// One line of the table.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// Stable key (`read_path`, `auth_per_call`, …).
    pub key: &'static str,
    /// What was measured.
    pub label: String,
    /// Throughput and latency, for load rows.
    pub stats: Option<Stats>,
    /// The headline figure in `unit` (requests/s for load rows).
    pub value: f64,
    /// Unit of `value`.
    pub unit: &'static str,
    /// `value` against the row's reference (its ceiling, or the 1 k figure).
    pub ratio: Option<f64>,
    /// The goal, as text (`≥ 0.6 × gRPC ceiling`).
    pub goal: String,
    /// Whether the goal is met (`None` when the row has no goal).
    pub met: Option<bool>,
}

impl Row {
    /// A load row without a goal.
    pub fn load(key: &'static str, label: impl Into<String>, stats: Stats) -> Self {
        Self {
            key,
            label: label.into(),
            stats: Some(stats),
            value: stats.per_second,
            unit: "/s",
            ratio: None,
            goal: String::new(),
            met: None,
        }
    }

    /// A single figure without a goal.
    pub fn figure(
        key: &'static str,
        label: impl Into<String>,
        value: f64,
        unit: &'static str,
    ) -> Self {
        Self {
            key,
            label: label.into(),
            stats: None,
            value,
            unit,
            ratio: None,
            goal: String::new(),
            met: None,
        }
    }

    /// A latency row: the headline figure is the `quantile` (0.5 or 0.99)
    /// latency in ms.
    pub fn latency(
        key: &'static str,
        label: impl Into<String>,
        stats: Stats,
        quantile: f64,
    ) -> Self {
        let (value, unit) = if quantile >= 0.99 {
            (stats.p99_us / 1000.0, "ms p99")
        } else {
            (stats.p50_us / 1000.0, "ms p50")
        };
        Self {
            stats: Some(stats),
            value,
            unit,
            ..Self::figure(key, label, 0.0, "")
        }
    }

    /// This row's ratio to `reference`, which must be at least `minimum`.
    pub fn at_least(mut self, reference: f64, minimum: f64, of: &str) -> Self {
        let ratio = self.value / reference.max(f64::MIN_POSITIVE);
        self.ratio = Some(ratio);
        self.goal = format!("≥ {minimum} × {of}");
        self.met = Some(ratio >= minimum);
        self
    }

    /// A ratio shown for context, without a goal (`what` says what it is).
    pub fn context_ratio(mut self, ratio: f64, what: &str) -> Self {
        self.ratio = Some(ratio);
        self.goal = what.to_owned();
        self
    }

    /// This row's ratio to `reference`, which must be at most `maximum`.
    pub fn ratio_at_most(mut self, reference: f64, maximum: f64, of: &str) -> Self {
        let ratio = self.value / reference.max(f64::MIN_POSITIVE);
        self.ratio = Some(ratio);
        self.goal = format!("≤ {maximum} × {of}");
        self.met = Some(ratio <= maximum);
        self
    }

    /// The value itself must be at most `maximum` (in `unit`).
    pub fn value_at_most(mut self, maximum: f64) -> Self {
        self.goal = format!("≤ {maximum} {}", self.unit);
        self.met = Some(self.value <= maximum);
        self
    }
}

/// Everything one run found.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `quick` or `full`.
    pub mode: &'static str,
    /// The client settings every load row used.
    pub settings: LoadSettings,
    /// Cores, memory, kernel, load average at start.
    pub machine: Machine,
    /// The rows, in table order.
    pub rows: Vec<Row>,
    /// Wall-clock time of the whole run, seconds.
    pub total_seconds: f64,
}

/// What the run ran on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical cores.
    pub cores: usize,
    /// `MemTotal` of /proc/meminfo, MiB.
    pub memory_mib: u64,
    /// /proc/loadavg at start.
    pub load_average: String,
}

impl Machine {
    /// Reads /proc (best effort).
    pub fn current() -> Self {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_kib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0);
        Self {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_mib: memory_kib / 1024,
            load_average: std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" "),
        }
    }
}

/// The table, as printed.
pub fn table(report: &Report) -> String {
    let mut out = format!(
        "partnerhub bench ({}): {} connections, {} in flight, pools of {}, {:?} per row after {:?} warm-up; {} cores, load {}\n",
        report.mode,
        report.settings.connections,
        report.settings.in_flight,
        report.settings.pool_size,
        report.settings.duration,
        report.settings.warmup,
        report.machine.cores,
        report.machine.load_average,
    );
    out.push_str(&format!(
        "{:<44} {:>12} {:>9} {:>9} {:>9} {:>7}  {:<26} {}\n",
        "row", "value", "p50 ms", "p99 ms", "p99.9 ms", "ratio", "goal", "met"
    ));
    for row in &report.rows {
        let (p50, p99, p999) = match row.stats {
            Some(s) => (ms(s.p50_us), ms(s.p99_us), ms(s.p999_us)),
            None => (String::new(), String::new(), String::new()),
        };
        out.push_str(&format!(
            "{:<44} {:>12} {:>9} {:>9} {:>9} {:>7}  {:<26} {}\n",
            row.label,
            format!("{:.1} {}", row.value, row.unit),
            p50,
            p99,
            p999,
            row.ratio.map(|r| format!("{r:.2}")).unwrap_or_default(),
            row.goal,
            match row.met {
                Some(true) => "yes",
                Some(false) => "NO",
                None => "",
            }
        ));
        if let Some(errors) = row.stats.map(|s| s.errors).filter(|e| *e > 0) {
            out.push_str(&format!("    ^ {errors} calls failed in this row\n"));
        }
    }
    out.push_str(&format!("total {:.0} s\n", report.total_seconds));
    out
}

fn ms(us: f64) -> String {
    format!("{:.2}", us / 1000.0)
}

/// Busy and total jiffies of all cores since boot (/proc/stat's first line).
fn cpu_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = fields.iter().sum();
    // idle and iowait
    let idle = fields.get(3)? + fields.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// Waits until the machine is quiet (under 15 % busy over half a second)
/// so that a row does not pay for the work the previous one set off (the
/// consumers of its events, a checkpoint), at most `limit`. Returns how long
/// it waited.
pub async fn settle(limit: std::time::Duration) -> std::time::Duration {
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        let Some((busy0, total0)) = cpu_jiffies() else {
            break;
        };
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let Some((busy1, total1)) = cpu_jiffies() else {
            break;
        };
        let busy = (busy1 - busy0) as f64 / (total1 - total0).max(1) as f64;
        if busy < 0.15 {
            break;
        }
    }
    started.elapsed()
}
