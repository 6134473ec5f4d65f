//! Runs a plan: every scenario against every peer, scenario-major and
//! interleaved (so slow drift of the machine hits every peer alike), each
//! run on a freshly started broker.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Result;

use crate::client::{Endpoint, Transport};
use crate::peers::{self, Peer, PeerOptions, Target};
use crate::procstat;
use crate::report::{self, RunResult};
use crate::scenarios::{Pattern, RunSettings, Scenario};

/// Pause between runs so the previous broker's sockets are gone.
const BETWEEN_RUNS: Duration = Duration::from_millis(500);

pub struct Plan {
    pub scenarios: Vec<Scenario>,
    pub targets: Vec<Target>,
    pub rounds: u32,
    pub settings: RunSettings,
    pub peers: PeerOptions,
    pub transport: Transport,
}

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Runs the plan; a failing run becomes a result with an error, so one
/// broker's failure does not lose the others' numbers.
pub async fn execute(plan: &Plan) -> Result<Vec<RunResult>> {
    let mut targets = Vec::new();
    for &t in &plan.targets {
        match peers::prepare(t, &plan.peers)? {
            Some(bin) => targets.push((t, Some(bin))),
            None if matches!(t, Target::External(_)) => targets.push((t, None)),
            None => {} // unavailable; prepare said why
        }
    }
    let probes = plan
        .scenarios
        .iter()
        .filter(|s| s.half_mosquitto_rate)
        .count();
    let total = plan.rounds as usize * (plan.scenarios.len() * targets.len() + probes);
    let mut results = Vec::with_capacity(total);
    for round in 0..plan.rounds {
        for scenario in &plan.scenarios {
            let scenario = if scenario.half_mosquitto_rate {
                let n = results.len() + 1;
                let label = format!(
                    "[{n}/{total}] {} mosquitto flat out (rate probe)",
                    scenario.name
                );
                let (probe, rate) = probe_rate(plan, scenario, round, &label).await;
                eprintln!("{label}: {}", summary_line(&probe));
                results.push(probe);
                tokio::time::sleep(BETWEEN_RUNS).await;
                Scenario {
                    rate,
                    ..scenario.clone()
                }
            } else {
                scenario.clone()
            };
            if scenario.half_mosquitto_rate && scenario.rate.is_none() {
                continue; // the probe failed and says why
            }
            let scenario = &scenario;
            for (target, bin) in &targets {
                let n = results.len() + 1;
                let label = format!("[{n}/{total}] {} {}", scenario.name, target);
                let r = run_one(plan, scenario, *target, bin.as_deref(), round, &label).await;
                eprintln!("{label}: {}", summary_line(&r));
                results.push(r);
                tokio::time::sleep(BETWEEN_RUNS).await;
            }
        }
    }
    Ok(results)
}

/// Runs `scenario` flat out against Mosquitto: the result (reported under
/// the peer `mosquitto-max`) and half its throughput, the rate every target
/// then gets. `None` when Mosquitto is missing or the probe failed.
async fn probe_rate(
    plan: &Plan,
    scenario: &Scenario,
    round: u32,
    label: &str,
) -> (RunResult, Option<f64>) {
    let flat_out = Scenario {
        rate: None,
        half_mosquitto_rate: false,
        ..scenario.clone()
    };
    let mut r = match peers::prepare(Target::Mosquitto, &plan.peers) {
        Ok(Some(bin)) => {
            run_one(plan, &flat_out, Target::Mosquitto, Some(&bin), round, label).await
        }
        found => {
            let mut r = blank(&flat_out, Target::Mosquitto, round);
            let why = found.err().map(|e| format!(": {e:#}")).unwrap_or_default();
            r.error = Some(format!(
                "Mosquitto sets this scenario's rate and is not available{why}"
            ));
            r
        }
    };
    r.peer = "mosquitto-max".into();
    let rate = (r.error.is_none() && r.throughput > 0.0).then(|| r.throughput / 2.0);
    (r, rate)
}

fn summary_line(r: &RunResult) -> String {
    if let Some(e) = &r.error {
        return format!("FAILED: {e}");
    }
    format!(
        "{:.0} {} (received {} of {}), p99 {:.3} ms",
        r.throughput,
        r.unit,
        r.received,
        r.expected,
        r.latency.p99_us / 1000.0
    )
}

/// A result with nothing measured yet.
fn blank(scenario: &Scenario, target: Target, round: u32) -> RunResult {
    let unit = match scenario.pattern {
        // Established clients' deliveries, like the other traffic runs.
        Pattern::UnderAttack { .. } => "msg/s",
        Pattern::Storm { .. } | Pattern::Idle { .. } => "conn/s",
        _ => "msg/s",
    };
    RunResult {
        scenario: scenario.name.to_string(),
        peer: target.name(),
        round,
        unit: unit.to_string(),
        sent: 0,
        received: 0,
        expected: 0,
        elapsed_s: 0.0,
        throughput: 0.0,
        latency: Default::default(),
        peak_rss_kib: None,
        cpu_s: None,
        mem_per_conn_kib: None,
        errors: 0,
        error: None,
        tls: None,
        notes: Vec::new(),
        attack: None,
    }
}

async fn run_one(
    plan: &Plan,
    scenario: &Scenario,
    target: Target,
    bin: Option<&std::path::Path>,
    round: u32,
    label: &str,
) -> RunResult {
    let mut result = blank(scenario, target, round);
    if let Err(e) = measure(plan, scenario, target, bin, label, &mut result).await {
        result.error = Some(format!("{e:#}"));
    }
    result
}

async fn measure(
    plan: &Plan,
    scenario: &Scenario,
    target: Target,
    bin: Option<&std::path::Path>,
    label: &str,
    out: &mut RunResult,
) -> Result<()> {
    crate::client::new_run();
    let mut peer = Peer::start(target, bin, &plan.peers, scenario.admission)?;
    let transport = plan.transport.for_run();
    let ep = Endpoint::new(peer.addr, transport.clone())?;
    let pid = peer.pid();
    let cpu_before = pid.map(procstat::cpu_seconds).transpose()?;
    let limit = scenario.time_limit(plan.settings.duration);
    let m = tokio::time::timeout(limit, scenario.run(ep, pid, &plan.settings, label))
        .await
        .map_err(|_| anyhow::anyhow!("run abandoned after {limit:?}"))??;
    if let Some(pid) = pid {
        let cpu_after = procstat::cpu_seconds(pid)?;
        out.cpu_s = cpu_before.map(|b| (cpu_after - b).max(0.0));
        out.peak_rss_kib = Some(procstat::memory(pid)?.hwm_kib);
    }
    peer.stop();
    out.sent = m.sent;
    out.received = m.received;
    out.expected = m.expected;
    out.elapsed_s = m.elapsed.as_secs_f64();
    out.throughput = report::throughput(m.received, out.elapsed_s);
    out.latency = m.latency.summary();
    out.mem_per_conn_kib = m.mem_per_conn_kib;
    out.errors = m.errors;
    out.tls = transport.negotiated();
    out.notes = m.notes;
    out.attack = m.attack;
    if m.received == 0 {
        out.error = m
            .first_error
            .or_else(|| Some("nothing was delivered".to_string()));
    }
    Ok(())
}
