//! The bench runs: `--quick` against the real services, PostgreSQL and
//! RabbitMQ, and its JSON has every row with positive figures. (Its numbers
//! are not checked against goals: timing goals live in the bench itself.)

use std::path::Path;
use std::process::Command;

use anyhow::Context;

const ROWS: &[&str] = &[
    "grpc_ceiling",
    "read_path",
    "db_read_ceiling",
    "db_ceiling",
    "write_path",
    "bus_ceiling",
    "event_path",
    "event_latency",
    "auth_per_call",
    "sign_ins_per_core",
    "members_first_1k",
    "members_first_large",
    "members_middle_1k",
    "members_middle_large",
    "locations_first_1k",
    "locations_first_large",
    "locations_middle_1k",
    "locations_middle_large",
    "seed_seconds",
    "start_to_serving",
    "rss_idle",
    "rss_load",
];

#[test]
fn quick_run_reports_every_row() -> anyhow::Result<()> {
    let bench = Path::new(env!("CARGO_BIN_EXE_partnerhub-bench"));
    let dir = bench.parent().context("no target directory")?;
    // Row 6 runs the real binary: make sure this profile's one is current.
    let built = Command::new(env!("CARGO"))
        .args(["build", "-p", "partnerhub", "--bin", "partnerhub"])
        .status()
        .context("cannot run cargo")?;
    anyhow::ensure!(built.success(), "cannot build partnerhub");
    let json = std::env::temp_dir().join(format!("bench-{}.json", std::process::id()));
    let output = Command::new(bench)
        .args([
            "--quick",
            "--in-flight",
            "4",
            "--connections",
            "2",
            "--json",
        ])
        .arg(&json)
        .arg("--partnerhub")
        .arg(dir.join("partnerhub"))
        .env("RUST_LOG", "warn")
        .output()
        .context("cannot run the bench")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    anyhow::ensure!(
        output.status.success(),
        "bench failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("gRPC ceiling"),
        "no table printed: {stdout}"
    );

    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json)?)?;
    let _ = std::fs::remove_file(&json);
    let rows = report["rows"].as_array().context("no rows")?;
    for key in ROWS {
        let row = rows
            .iter()
            .find(|r| r["key"] == *key)
            .with_context(|| format!("row {key} missing"))?;
        let value = row["value"].as_f64().unwrap_or(0.0);
        assert!(value > 0.0, "row {key} has no positive value: {row}");
        if let Some(stats) = row["stats"].as_object() {
            for field in ["count", "per_second", "p50_us", "p99_us"] {
                let figure = stats.get(field).and_then(|v| v.as_f64()).unwrap_or(0.0);
                assert!(figure > 0.0, "row {key}: {field} is not positive: {row}");
            }
            assert_eq!(
                stats.get("errors").and_then(|v| v.as_u64()),
                Some(0),
                "row {key}: {row}"
            );
        }
        if row["goal"].as_str().is_some_and(|g| g.contains('×')) {
            let ratio = row["ratio"].as_f64().unwrap_or(0.0);
            assert!(ratio > 0.0, "row {key} has no ratio: {row}");
        }
    }
    assert_eq!(rows.len(), ROWS.len(), "unexpected rows: {rows:?}");
    Ok(())
}
