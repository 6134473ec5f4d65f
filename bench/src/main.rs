//! wardmq-bench: load generator and peer comparison for MQTT brokers.
//! See bench/README.md for the scenarios and how to read the report.

mod client;
mod fdlimit;
mod mlperf;
mod mlsim;
mod payload;
mod peers;
mod pki;
mod procstat;
mod report;
mod runner;
mod scenarios;
mod stats;
mod stormp99;
mod svg;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::{Args, Parser, Subcommand};

use crate::client::Transport;
use crate::peers::{PeerOptions, Target};
use crate::runner::Plan;
use crate::scenarios::RunSettings;

#[derive(Parser)]
#[command(name = "wardmq-bench", about = "Load bench for wardmq and its peers")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// One scenario (or a few) against one broker.
    Run {
        /// wardmq, mosquitto, rumqttd, or HOST:PORT of a broker on 127.0.0.0/8.
        #[arg(long, default_value = "wardmq")]
        target: String,
        /// Scenario name(s), comma-separated (see `list`).
        #[arg(long, default_value = "fanin-qos0")]
        scenario: String,
        #[command(flatten)]
        common: Common,
    },
    /// The same scenarios against every peer, interleaved, with ratios.
    Compare {
        /// Peers, comma-separated.
        #[arg(long, default_value = "wardmq,wardmq-nodefender,mosquitto,rumqttd")]
        targets: String,
        /// Scenarios, comma-separated; default is the quick set.
        #[arg(long)]
        scenarios: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Lists the scenarios.
    List,
    /// ML Detect on a simulated fleet: CSV, replay, score against static rules.
    Mlsim(mlsim::MlsimArgs),
    /// ML Detect's costs: state bytes, CPU per datapoint, retrain time.
    Mlperf(mlperf::MlperfArgs),
}

#[derive(Args)]
struct Common {
    /// Seconds of traffic per scenario run.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Times to repeat the whole sequence; rows show the median round.
    #[arg(long, default_value_t = 1)]
    rounds: u32,
    /// Persistence on for every broker (and persistent client sessions).
    #[arg(long)]
    persistence: bool,
    /// A wardmq config file to use instead of the generated one (e.g. with
    /// defender settings of your own); --data and --tcp (with --tls:
    /// --tls, --certs and the registered bench certificate) still come
    /// from the bench.
    #[arg(long)]
    wardmq_config: Option<PathBuf>,
    /// Mutual TLS: the bench makes a CA, a server certificate and a device
    /// certificate, every broker gets a listener that requires a client
    /// certificate, and every client presents one.
    #[arg(long)]
    tls: bool,
    /// Where reports go; default bench/results in this workspace.
    #[arg(long)]
    results: Option<PathBuf>,
    /// The workspace root (where wardmq is built); default: this source tree.
    #[arg(long)]
    root: Option<PathBuf>,
    /// No progress bars.
    #[arg(long)]
    no_progress: bool,
}

fn split(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn plan(
    common: &Common,
    targets: &[Target],
    scenarios: Vec<scenarios::Scenario>,
    open_files: Option<u64>,
) -> Result<Plan> {
    if common.tls && targets.iter().any(|t| matches!(t, Target::External(_))) {
        bail!(
            "--tls cannot target HOST:PORT: the bench makes its own CA for each run, \
             which a broker it did not start does not trust"
        );
    }
    if !(common.duration > 0.0 && common.duration <= 3600.0) {
        bail!("--duration must be between 0 and 3600 seconds");
    }
    if common.rounds == 0 || common.rounds > 100 {
        bail!("--rounds must be between 1 and 100");
    }
    if let Some(c) = &common.wardmq_config {
        if !c.is_file() {
            bail!("--wardmq-config {}: no such file", c.display());
        }
    }
    // Refuse a non-loopback target before starting anything.
    for t in targets {
        if let Target::External(addr) = t {
            client::Endpoint::new(*addr, Transport::Tcp)?;
        }
    }
    let root = common.root.clone().unwrap_or_else(default_root);
    let (tls, transport) = if common.tls {
        let pki = Arc::new(pki::BenchPki::generate()?);
        let client = client::TlsClient::new(pki.client_config()?);
        (Some(pki), Transport::Tls(Arc::new(client)))
    } else {
        (None, Transport::Tcp)
    };
    Ok(Plan {
        scenarios,
        targets: targets.to_vec(),
        rounds: common.rounds,
        settings: RunSettings {
            duration: Duration::from_secs_f64(common.duration),
            persistent: common.persistence,
            show_progress: !common.no_progress,
            max_connections: fdlimit::connection_budget(open_files),
            pki: tls.clone(),
        },
        peers: PeerOptions {
            persistence: common.persistence,
            wardmq_config: common
                .wardmq_config
                .as_ref()
                .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone())),
            root,
            tls,
        },
        transport,
    })
}

/// The workspace this binary was built from (bench/..).
fn default_root() -> PathBuf {
    let bench = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    bench.parent().map(PathBuf::from).unwrap_or(bench)
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Cmd::Mlsim(args) = &cli.command {
        return mlsim::run(args);
    }
    if let Cmd::Mlperf(args) = &cli.command {
        return mlperf::run(args);
    }
    // One descriptor per connection in the bench and in the broker, which
    // inherits this limit.
    let open_files = fdlimit::raise().map(|l| {
        if l.soft < 60_000 {
            eprintln!(
                "open-file limit {} (hard {}): storm and idle runs hold at most {} connections",
                l.soft,
                l.hard,
                fdlimit::connection_budget(Some(l.soft))
            );
        }
        l.soft
    });
    let (kind, common, plan) = match &cli.command {
        Cmd::Mlsim(_) | Cmd::Mlperf(_) => return Ok(()),
        Cmd::List => {
            for s in scenarios::catalog() {
                let quick = if scenarios::QUICK.contains(&s.name) {
                    " (quick)"
                } else {
                    ""
                };
                println!("{:<16} {}{quick}", s.name, s.about);
            }
            return Ok(());
        }
        Cmd::Run {
            target,
            scenario,
            common,
        } => {
            let target: Target = target.parse()?;
            let scs = split(scenario)
                .map(scenarios::find)
                .collect::<Result<Vec<_>>>()?;
            ("run", common, plan(common, &[target], scs, open_files)?)
        }
        Cmd::Compare {
            targets,
            scenarios: names,
            common,
        } => {
            let targets = split(targets)
                .map(str::parse)
                .collect::<Result<Vec<Target>>>()?;
            let names: Vec<&str> = match names {
                Some(n) => split(n).collect(),
                None => scenarios::QUICK.to_vec(),
            };
            let scs = names
                .into_iter()
                .map(scenarios::find)
                .collect::<Result<Vec<_>>>()?;
            ("compare", common, plan(common, &targets, scs, open_files)?)
        }
    };
    if plan.scenarios.is_empty() || plan.targets.is_empty() {
        bail!("nothing to run: give at least one scenario and one target");
    }

    let started = runner::unix_now();
    let results = runner::execute(&plan).await?;
    let report = report::Report {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        started_unix_s: started,
        duration_s: plan.settings.duration.as_secs_f64(),
        rounds: plan.rounds,
        persistence: common.persistence,
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        transport: if common.tls {
            "mutual TLS".to_string()
        } else {
            "plain TCP".to_string()
        },
        open_files,
        results,
    };
    let dir = common
        .results
        .clone()
        .unwrap_or_else(|| plan.peers.root.join("bench").join("results"));
    let paths = report::write_all(&dir, kind, &report)?;
    println!("{}", report::markdown(&report));
    for p in paths {
        println!("wrote {}", p.display());
    }
    Ok(())
}
