//! Results of a run: the per-run records, folding rounds into rows, and the
//! Markdown and JSON files written under `bench/results/`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::stats::{self, fmt_ms, fmt_rate, fmt_ratio, median, ratio, LatencySummary};

/// The peer every ratio is taken against.
pub const BASELINE: &str = "wardmq";

/// One scenario run against one peer in one round.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunResult {
    pub scenario: String,
    pub peer: String,
    pub round: u32,
    /// What `throughput` counts: "msg/s" (deliveries) or "conn/s".
    pub unit: String,
    pub sent: u64,
    pub received: u64,
    pub expected: u64,
    pub elapsed_s: f64,
    pub throughput: f64,
    pub latency: LatencySummary,
    /// Broker's peak resident memory (VmHWM), KiB.
    pub peak_rss_kib: Option<u64>,
    /// Broker CPU time (user + system) during the run, seconds.
    pub cpu_s: Option<f64>,
    /// Broker RSS growth per idle connection, KiB.
    pub mem_per_conn_kib: Option<f64>,
    pub errors: u64,
    pub error: Option<String>,
}

impl RunResult {
    /// Deliveries the broker owed but did not make.
    pub fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.received)
    }

    /// Broker CPU per delivered message (or established connection), µs.
    pub fn cpu_us_per_item(&self) -> Option<f64> {
        self.cpu_s
            .filter(|_| self.received > 0)
            .map(|s| s * 1e6 / self.received as f64)
    }
}

/// The whole run, as written to JSON.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub command: String,
    pub started_unix_s: u64,
    pub duration_s: f64,
    pub rounds: u32,
    pub persistence: bool,
    pub cores: usize,
    pub results: Vec<RunResult>,
}

/// One table row: a scenario × peer with its rounds folded by median.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub scenario: String,
    pub peer: String,
    pub unit: String,
    pub throughput: Option<f64>,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub p999_us: Option<f64>,
    pub peak_rss_mib: Option<f64>,
    pub cpu_us_per_item: Option<f64>,
    pub mem_per_conn_kib: Option<f64>,
    pub lost: u64,
    pub errors: u64,
    pub error: Option<String>,
}

fn med(results: &[&RunResult], f: impl Fn(&RunResult) -> Option<f64>) -> Option<f64> {
    let mut v: Vec<f64> = results.iter().filter_map(|r| f(r)).collect();
    median(&mut v)
}

/// Rows in first-seen order of scenarios and, within one, of peers.
pub fn rows(results: &[RunResult]) -> Vec<Row> {
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for r in results {
        let k = (r.scenario.as_str(), r.peer.as_str());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys.into_iter()
        .map(|(scenario, peer)| {
            let all: Vec<&RunResult> = results
                .iter()
                .filter(|r| r.scenario == scenario && r.peer == peer)
                .collect();
            // Rounds that failed outright say nothing about speed.
            let ok: Vec<&RunResult> = all.iter().copied().filter(|r| r.received > 0).collect();
            let has_latency = |r: &RunResult| r.latency.count > 0;
            Row {
                scenario: scenario.to_string(),
                peer: peer.to_string(),
                unit: all.first().map(|r| r.unit.clone()).unwrap_or_default(),
                throughput: med(&ok, |r| Some(r.throughput)),
                p50_us: med(&ok, |r| has_latency(r).then_some(r.latency.p50_us)),
                p99_us: med(&ok, |r| has_latency(r).then_some(r.latency.p99_us)),
                p999_us: med(&ok, |r| has_latency(r).then_some(r.latency.p999_us)),
                peak_rss_mib: med(&ok, |r| r.peak_rss_kib.map(|k| k as f64 / 1024.0)),
                cpu_us_per_item: med(&ok, RunResult::cpu_us_per_item),
                mem_per_conn_kib: med(&ok, |r| r.mem_per_conn_kib),
                lost: all.iter().map(|r| r.lost()).sum(),
                errors: all.iter().map(|r| r.errors).sum(),
                error: all.iter().find_map(|r| r.error.clone()),
            }
        })
        .collect()
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map(f).unwrap_or_else(|| "–".to_string())
}

/// The Markdown table. Ratio columns compare wardmq with the row's peer:
/// throughput wardmq/peer (above 1 = wardmq faster), and p99, peak RSS and
/// CPU per message wardmq/peer (below 1 = wardmq lower).
pub fn markdown(report: &Report) -> String {
    let rows = rows(&report.results);
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# wardmq-bench results\n\n`{}` — {} round(s), {:.0} s per traffic scenario, persistence {}, {} cores.\n",
        report.command,
        report.rounds,
        report.duration_s,
        if report.persistence { "on" } else { "off" },
        report.cores,
    );
    s.push_str(
        "| scenario | peer | throughput | p50 ms | p99 ms | p99.9 ms | peak RSS MiB | CPU µs/msg | KiB/conn | lost | thr ratio | p99 ratio | RSS ratio | CPU ratio |\n",
    );
    s.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for row in &rows {
        let base = rows
            .iter()
            .find(|b| b.scenario == row.scenario && b.peer == BASELINE);
        let r = |f: fn(&Row) -> Option<f64>| -> String {
            match base {
                Some(b) if row.peer != BASELINE => fmt_ratio(ratio(f(b), f(row))),
                _ => "–".to_string(),
            }
        };
        let thr = opt(row.throughput, |t| format!("{} {}", fmt_rate(t), row.unit));
        let lost = if row.errors > 0 {
            format!("{} ({} errors)", row.lost, row.errors)
        } else {
            row.lost.to_string()
        };
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.scenario,
            row.peer,
            thr,
            opt(row.p50_us, fmt_ms),
            opt(row.p99_us, fmt_ms),
            opt(row.p999_us, fmt_ms),
            opt(row.peak_rss_mib, |m| format!("{m:.1}")),
            opt(row.cpu_us_per_item, |c| format!("{c:.1}")),
            opt(row.mem_per_conn_kib, |k| format!("{k:.1}")),
            lost,
            r(|x| x.throughput),
            r(|x| x.p99_us),
            r(|x| x.peak_rss_mib),
            r(|x| x.cpu_us_per_item),
        );
    }
    let failures: Vec<&Row> = rows.iter().filter(|r| r.error.is_some()).collect();
    if !failures.is_empty() {
        s.push_str("\nErrors:\n\n");
        for f in failures {
            let _ = writeln!(
                s,
                "- {} / {}: {}",
                f.scenario,
                f.peer,
                f.error.as_deref().unwrap_or_default()
            );
        }
    }
    s.push_str(
        "\nRatios are wardmq / peer: throughput above 1 means wardmq delivered more; \
         p99, RSS and CPU below 1 mean wardmq needed less.\n",
    );
    s
}

/// `YYYY-MM-DD-HHMMSS` (UTC) for file names, from Unix seconds.
pub fn stamp(unix_s: u64) -> String {
    let days = (unix_s / 86_400) as i64;
    let rem = unix_s % 86_400;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}-{:02}{:02}{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Writes `<stamp>-<kind>.{md,json,svg}` into `dir`; returns the paths.
pub fn write_all(dir: &Path, kind: &str, report: &Report) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let base = format!("{}-{kind}", stamp(report.started_unix_s));
    let files = [
        (format!("{base}.md"), markdown(report)),
        (
            format!("{base}.json"),
            serde_json::to_string_pretty(report).context("encoding JSON report")?,
        ),
        (
            format!("{base}.svg"),
            crate::svg::latency_chart(&rows(&report.results)),
        ),
    ];
    let mut paths = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        paths.push(path);
    }
    Ok(paths)
}

/// Throughput of a run from what was measured.
pub fn throughput(received: u64, elapsed_s: f64) -> f64 {
    stats::rate(
        received,
        std::time::Duration::from_secs_f64(elapsed_s.max(0.0)),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a broken fixture should fail the test loudly
pub(crate) mod tests {
    use super::*;

    pub(crate) fn result(scenario: &str, peer: &str, thr: f64, p99_us: f64) -> RunResult {
        RunResult {
            scenario: scenario.into(),
            peer: peer.into(),
            round: 0,
            unit: "msg/s".into(),
            sent: 1000,
            received: 1000,
            expected: 1000,
            elapsed_s: 1000.0 / thr,
            throughput: thr,
            latency: LatencySummary {
                count: 1000,
                p50_us: p99_us / 4.0,
                p99_us,
                p999_us: p99_us * 2.0,
                max_us: p99_us * 3.0,
            },
            peak_rss_kib: Some(10 * 1024),
            cpu_s: Some(0.5),
            mem_per_conn_kib: None,
            errors: 0,
            error: None,
        }
    }

    fn report(results: Vec<RunResult>) -> Report {
        Report {
            command: "wardmq-bench compare".into(),
            started_unix_s: 0,
            duration_s: 5.0,
            rounds: 1,
            persistence: false,
            cores: 2,
            results,
        }
    }

    #[test]
    fn renders_a_fixed_result_set() {
        let mut lossy = result("fanin-qos0", "mosquitto", 50_000.0, 2_000.0);
        lossy.received = 990;
        lossy.peak_rss_kib = Some(5 * 1024);
        let md = markdown(&report(vec![
            result("fanin-qos0", "wardmq", 100_000.0, 1_000.0),
            lossy,
        ]));
        let expected = "\
| fanin-qos0 | wardmq | 100.0k msg/s | 0.250 | 1.0 | 2.0 | 10.0 | 500.0 | – | 0 | – | – | – | – |
| fanin-qos0 | mosquitto | 50.0k msg/s | 0.500 | 2.0 | 4.0 | 5.0 | 505.1 | – | 10 | 2.00× | 0.50× | 2.00× | 0.99× |
";
        assert!(md.contains(expected), "{md}");
        assert!(
            md.starts_with("# wardmq-bench results\n\n`wardmq-bench compare` — 1 round(s), 5 s")
        );
        assert!(md.contains("| scenario | peer | throughput |"));
        assert!(!md.contains("Errors:"));
    }

    #[test]
    fn rounds_fold_by_median_and_errors_are_listed() {
        let mut results = vec![
            result("pairs-qos1", "wardmq", 10.0, 100.0),
            result("pairs-qos1", "wardmq", 30.0, 300.0),
            result("pairs-qos1", "wardmq", 20.0, 200.0),
        ];
        let mut failed = result("pairs-qos1", "rumqttd", 0.0, 0.0);
        failed.received = 0;
        failed.error = Some("did not start".into());
        results.push(failed);
        let rows = rows(&results);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].throughput, Some(20.0));
        assert_eq!(rows[0].p99_us, Some(200.0));
        assert_eq!(rows[1].throughput, None);
        let md = markdown(&report(results));
        assert!(md.contains("| pairs-qos1 | rumqttd | – | – |"), "{md}");
        assert!(md.contains("- pairs-qos1 / rumqttd: did not start"));
    }

    #[test]
    fn json_round_trips() {
        let r = report(vec![result("idle", "wardmq", 1.0, 1.0)]);
        let text = serde_json::to_string(&r).unwrap();
        let back: Report = serde_json::from_str(&text).unwrap();
        assert_eq!(back.results, r.results);
    }

    #[test]
    fn file_stamps_are_utc_dates() {
        assert_eq!(stamp(0), "1970-01-01-000000");
        assert_eq!(stamp(951_782_400 + 3_661), "2000-02-29-010101");
        assert_eq!(stamp(1_790_000_000), "2026-09-21-141320");
    }

    #[test]
    fn throughput_from_counts() {
        assert_eq!(throughput(500, 2.0), 250.0);
        assert_eq!(throughput(500, 0.0), 0.0);
    }
}
