//! Results of a run: the per-run records, folding rounds into rows, and the
//! Markdown and JSON files written under `bench/results/`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::stats::{self, fmt_ms, fmt_rate, fmt_ratio, median, ratio, LatencySummary};
use crate::stormp99::{AttackCounts, UnderAttack, PAIRS, TARGET_RATIO};

/// The peer every ratio is taken against.
pub const BASELINE: &str = "wardmq";
/// wardmq with the defender off: the baseline of the defender's cost.
pub const NO_DEFENDER: &str = "wardmq-nodefender";
/// Issue 8's target: the defender costs at most this share of throughput.
pub const DEFENDER_COST_TARGET: f64 = 0.05;

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
    /// What the run's first TLS handshake negotiated (`--tls`), e.g.
    /// `TLSv1_3 TLS13_AES_256_GCM_SHA384 X25519`.
    #[serde(default)]
    pub tls: Option<String>,
    /// Remarks: a connection count capped by the open-file limit, whether
    /// idle connections still answered.
    #[serde(default)]
    pub notes: Vec<String>,
    /// storm-p99: latency by phase and the attackers' counts.
    #[serde(default)]
    pub attack: Option<UnderAttack>,
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
    /// "plain TCP" or "mutual TLS".
    #[serde(default)]
    pub transport: String,
    /// The open-file soft limit the bench and the brokers it started had.
    #[serde(default)]
    pub open_files: Option<u64>,
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
    pub tls: Option<String>,
    pub notes: Vec<String>,
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
                tls: all.iter().find_map(|r| r.tls.clone()),
                notes: {
                    let mut notes: Vec<String> = Vec::new();
                    for n in all.iter().flat_map(|r| r.notes.iter()) {
                        if !notes.contains(n) {
                            notes.push(n.clone());
                        }
                    }
                    notes
                },
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
    let transport = if report.transport.is_empty() {
        "plain TCP"
    } else {
        report.transport.as_str()
    };
    let files = report
        .open_files
        .map_or(String::new(), |n| format!(", open-file limit {n}"));
    let _ = writeln!(
        s,
        "# wardmq-bench results\n\n`{}` — {} round(s), {:.0} s per traffic scenario, persistence {}, {transport}, {} cores{files}.\n",
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
    s.push_str(&defender_section(&rows));
    s.push_str(&attack_section(&report.results));
    let mut negotiated: Vec<(String, String)> = Vec::new();
    for row in &rows {
        if let Some(t) = &row.tls {
            if !negotiated.iter().any(|(p, _)| *p == row.peer) {
                negotiated.push((row.peer.clone(), t.clone()));
            }
        }
    }
    if !negotiated.is_empty() {
        let list: Vec<String> = negotiated.iter().map(|(p, t)| format!("{p} {t}")).collect();
        let _ = writeln!(s, "\nTLS negotiated: {}.", list.join("; "));
    }
    let noted: Vec<&Row> = rows.iter().filter(|r| !r.notes.is_empty()).collect();
    if !noted.is_empty() {
        s.push_str("\nNotes:\n\n");
        for r in noted {
            for n in &r.notes {
                let _ = writeln!(s, "- {} / {}: {n}", r.scenario, r.peer);
            }
        }
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

/// The defender's price in one scenario: wardmq's throughput with the
/// defender on and off.
#[derive(Clone, Debug, PartialEq)]
pub struct DefenderCost {
    pub scenario: String,
    pub unit: String,
    pub on: f64,
    pub off: f64,
}

impl DefenderCost {
    /// on / off: below 1 means the defender slowed wardmq down.
    pub fn ratio(&self) -> f64 {
        ratio(Some(self.on), Some(self.off)).unwrap_or(f64::NAN)
    }

    /// Throughput lost to the defender, as a fraction (negative: the run
    /// with the defender happened to be faster, i.e. noise).
    pub fn cost(&self) -> f64 {
        1.0 - self.ratio()
    }
}

/// Every scenario with both a `wardmq` and a `wardmq-nodefender` row.
pub fn defender_costs(rows: &[Row]) -> Vec<DefenderCost> {
    rows.iter()
        .filter(|r| r.peer == BASELINE)
        .filter_map(|on| {
            let off = rows
                .iter()
                .find(|r| r.scenario == on.scenario && r.peer == NO_DEFENDER)?;
            match (on.throughput, off.throughput) {
                (Some(a), Some(b)) if b > 0.0 => Some(DefenderCost {
                    scenario: on.scenario.clone(),
                    unit: on.unit.clone(),
                    on: a,
                    off: b,
                }),
                _ => None,
            }
        })
        .collect()
}

fn defender_section(rows: &[Row]) -> String {
    let costs = defender_costs(rows);
    let mut s = String::new();
    if costs.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "\nDefender cost: wardmq (defender on, 1 s periods) ÷ {NO_DEFENDER}; target: at most {:.0} % lower.\n",
        DEFENDER_COST_TARGET * 100.0
    );
    s.push_str(
        "| scenario | defender on | defender off | on/off | cost |\n|---|---:|---:|---:|---:|\n",
    );
    for c in &costs {
        let _ = writeln!(
            s,
            "| {} | {} {} | {} {} | {} | {} |",
            c.scenario,
            fmt_rate(c.on),
            c.unit,
            fmt_rate(c.off),
            c.unit,
            fmt_ratio(Some(c.ratio())),
            fmt_cost(c.cost()),
        );
    }
    let over: Vec<String> = costs
        .iter()
        // The tolerance keeps exactly 5 % (0.95 / 1.0 in floating point) within.
        .filter(|c| c.cost() > DEFENDER_COST_TARGET + 1e-9)
        .map(|c| format!("{} ({})", c.scenario, fmt_cost(c.cost())))
        .collect();
    if over.is_empty() {
        let _ = writeln!(
            s,
            "\nDefender cost within {:.0} % in every scenario.",
            DEFENDER_COST_TARGET * 100.0
        );
    } else {
        let _ = writeln!(
            s,
            "\nDefender cost over {:.0} %: {}.",
            DEFENDER_COST_TARGET * 100.0,
            over.join(", ")
        );
    }
    s
}

/// storm-p99 rows: one per scenario × peer with attack results, rounds
/// folded (latencies by median round, the ratio the median of every
/// pair of every round, attack counts summed).
fn attack_section(results: &[RunResult]) -> String {
    let mut keys: Vec<(&str, &str)> = Vec::new();
    for r in results.iter().filter(|r| r.attack.is_some()) {
        let k = (r.scenario.as_str(), r.peer.as_str());
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let mut s = String::new();
    if keys.is_empty() {
        return s;
    }
    let _ = writeln!(
        s,
        "\nLatency under attack: established clients' end-to-end latency in quiet and attacked \
         phases by turns ({PAIRS} pairs per run); target: attacked p99 at most {TARGET_RATIO:.0}× quiet p99 \
         (median of the pairs).\n"
    );
    s.push_str(
        "| scenario | peer | quiet p50 ms | quiet p99 ms | attacked p50 ms | attacked p99 ms | p99 ratio | \
         bad-cert attempts/s | bad-cert refused | bad-cert accepted | flood attempts/s | flood CONNACKed | flood refused |\n",
    );
    s.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let mut verdicts = Vec::new();
    for (scenario, peer) in keys {
        let runs: Vec<&UnderAttack> = results
            .iter()
            .filter(|r| r.scenario == scenario && r.peer == peer)
            .filter_map(|r| r.attack.as_ref())
            .collect();
        let lat = |f: fn(&UnderAttack) -> f64| {
            let mut v: Vec<f64> = runs.iter().map(|u| f(u)).collect();
            median(&mut v)
        };
        let mut all_ratios: Vec<f64> = runs.iter().flat_map(|u| u.ratios.clone()).collect();
        let r = median(&mut all_ratios);
        let (mut bad, mut flood) = (AttackCounts::default(), AttackCounts::default());
        let mut attacked_s = 0.0;
        for u in &runs {
            bad.add(&u.bad_cert);
            flood.add(&u.flood);
            attacked_s += u.phase_s * u.phases.iter().filter(|p| p.attacked).count() as f64;
        }
        let per_s = |n: u64| {
            if attacked_s > 0.0 {
                fmt_rate(n as f64 / attacked_s)
            } else {
                "–".to_string()
            }
        };
        let _ = writeln!(
            s,
            "| {scenario} | {peer} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            opt(lat(|u| u.quiet.p50_us), fmt_ms),
            opt(lat(|u| u.quiet.p99_us), fmt_ms),
            opt(lat(|u| u.attacked.p50_us), fmt_ms),
            opt(lat(|u| u.attacked.p99_us), fmt_ms),
            fmt_ratio(r),
            per_s(bad.attempts),
            bad.refused(),
            bad.connected,
            per_s(flood.attempts),
            flood.connected,
            flood.refused(),
        );
        verdicts.push(match r {
            Some(r) if r <= TARGET_RATIO => format!("{peer} {} (within)", fmt_ratio(Some(r))),
            Some(r) => format!("{peer} {} (over)", fmt_ratio(Some(r))),
            None => format!("{peer} – (no ratio)"),
        });
    }
    let _ = writeln!(
        s,
        "\np99 under attack ÷ quiet p99, target at most {TARGET_RATIO:.0}×: {}.",
        verdicts.join("; ")
    );
    s
}

/// A cost fraction as a signed percentage: `3.2 %`, `-1.0 %`.
pub fn fmt_cost(cost: f64) -> String {
    if cost.is_finite() {
        format!("{:.1} %", cost * 100.0)
    } else {
        "–".to_string()
    }
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
            tls: None,
            notes: Vec::new(),
            attack: None,
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
            transport: String::new(),
            open_files: None,
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
    fn defender_cost_is_on_over_off() {
        let results = vec![
            result("fanin-qos0", "wardmq", 95_000.0, 1_000.0),
            result("fanin-qos0", "wardmq-nodefender", 100_000.0, 1_000.0),
            result("fanin-qos0", "mosquitto", 50_000.0, 1_000.0),
            result("storm", "wardmq", 1_010.0, 1_000.0),
            result("storm", "wardmq-nodefender", 1_000.0, 1_000.0),
            // No defender-off row: no cost line.
            result("idle", "wardmq", 10.0, 1.0),
        ];
        let costs = defender_costs(&rows(&results));
        assert_eq!(costs.len(), 2);
        assert_eq!(costs[0].scenario, "fanin-qos0");
        assert!((costs[0].ratio() - 0.95).abs() < 1e-12);
        assert!((costs[0].cost() - 0.05).abs() < 1e-12);
        assert!((costs[1].cost() + 0.01).abs() < 1e-12);
        assert_eq!(fmt_cost(costs[0].cost()), "5.0 %");
        assert_eq!(fmt_cost(costs[1].cost()), "-1.0 %");

        let md = markdown(&report(results));
        assert!(
            md.contains("| fanin-qos0 | 95.0k msg/s | 100.0k msg/s | 0.95× | 5.0 % |"),
            "{md}"
        );
        assert!(md.contains("Defender cost within 5 % in every scenario."));

        let over = vec![
            result("pairs-qos1", "wardmq", 90.0, 1.0),
            result("pairs-qos1", "wardmq-nodefender", 100.0, 1.0),
        ];
        let md = markdown(&report(over));
        assert!(
            md.contains("Defender cost over 5 %: pairs-qos1 (10.0 %)."),
            "{md}"
        );
    }

    #[test]
    fn tls_and_notes_are_shown() {
        let mut a = result("idle-50k", "wardmq", 1000.0, 1.0);
        a.tls = Some("TLSv1_3 TLS13_AES_256_GCM_SHA384 X25519".into());
        a.notes = vec!["only 19744 of 50000 connections attempted".into()];
        let mut r = report(vec![a]);
        r.transport = "mutual TLS".into();
        r.open_files = Some(20_000);
        let md = markdown(&r);
        assert!(
            md.contains("persistence off, mutual TLS, 2 cores, open-file limit 20000."),
            "{md}"
        );
        assert!(md.contains("TLS negotiated: wardmq TLSv1_3 TLS13_AES_256_GCM_SHA384 X25519."));
        assert!(md.contains("- idle-50k / wardmq: only 19744 of 50000 connections attempted"));
    }

    #[test]
    fn attack_rows_fold_rounds_and_judge_the_target() {
        use crate::stormp99::Phase;
        let phase = |attacked, p50_us, p99_us| Phase {
            attacked,
            latency: LatencySummary {
                count: 100,
                p50_us,
                p99_us,
                p999_us: p99_us,
                max_us: p99_us,
            },
        };
        let counts = |attempts, connected, refused_handshake, refused_after| AttackCounts {
            attempts,
            connected,
            refused_handshake,
            refused_after,
            unfinished: 0,
        };
        let run = |peer: &str, round, ratios: Vec<f64>, attacked_p99| {
            let mut r = result("storm-p99", peer, 200.0, attacked_p99);
            r.round = round;
            r.attack = Some(UnderAttack {
                phase_s: 5.0,
                phases: vec![
                    phase(false, 500.0, 1000.0),
                    phase(true, 600.0, attacked_p99),
                ],
                quiet: phase(false, 500.0, 1000.0).latency,
                attacked: phase(true, 600.0, attacked_p99).latency,
                ratio: median(&mut ratios.clone()),
                ratios,
                bad_cert: counts(5000, 0, 4000, 1000),
                flood: counts(2500, 1000, 1500, 0),
            });
            r
        };
        let md = markdown(&report(vec![
            run("wardmq", 0, vec![1.2, 1.5, 3.0], 1500.0),
            run("wardmq", 1, vec![1.1, 1.4, 1.3], 1300.0),
            run("mosquitto", 0, vec![9.0, 8.0, 7.0], 8000.0),
        ]));
        // wardmq: median of six ratios (1.3, 1.4) = 1.35; p99 the median
        // round's; 10,000 bad-cert attempts over 2 × 5 s attacked.
        assert!(
            md.contains(
                "| storm-p99 | wardmq | 0.500 | 1.0 | 0.600 | 1.4 | 1.35× | 1.0k | 10000 | 0 | 500 | 2000 | 3000 |"
            ),
            "{md}"
        );
        assert!(md.contains("| storm-p99 | mosquitto | 0.500 | 1.0 | 0.600 | 8.0 | 8.00× |"));
        assert!(md.contains("target at most 2×: wardmq 1.35× (within); mosquitto 8.00× (over)."));
        // No attack rows, no section.
        let plain = markdown(&report(vec![result("fanin-qos0", "wardmq", 1.0, 1.0)]));
        assert!(!plain.contains("Latency under attack"));
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
