//! `wardmq defender replay`: runs a metrics CSV through ML Detect offline
//! (the library in `wardmq_defender::ml::replay`, the same detector and
//! alarm state machine `serve` uses) and writes the alarm events.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use wardmq_defender::ml::replay::{replay, ReplayOptions};

#[derive(Args)]
pub struct DefenderArgs {
    #[command(subcommand)]
    command: DefenderCommand,
}

#[derive(Subcommand)]
enum DefenderCommand {
    /// Replay a metrics CSV through ML Detect; alarm events as JSON lines.
    Replay(ReplayArgs),
}

#[derive(Args)]
struct ReplayArgs {
    /// Input CSV: `ts,device_id,profile,auth_failures,conn_attempts,
    /// disconnects,msgs_sent,msgs_received,msg_bytes_mean,msg_bytes_max`,
    /// sorted by ts.
    #[arg(long = "in", value_name = "FILE")]
    input: PathBuf,
    /// Output: one JSON object per alarm event per line.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Days of data before a model is ACTIVE (AWS: 14).
    #[arg(long, default_value_t = 14)]
    min_days: u32,
    /// Datapoints per profile and metric in the trailing window before a
    /// model is ACTIVE (AWS: 25,000).
    #[arg(long, default_value_t = 25_000)]
    min_datapoints: u64,
    /// Judge from this many days on, HIGH only, while the model is
    /// pending (0 = off).
    #[arg(long, default_value_t = 0)]
    fast_start_days: u32,
    /// consecutiveDatapointsToClear of the ML behaviours (1–10).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=10))]
    clear_after: u32,
}

pub fn run(args: DefenderArgs) -> ExitCode {
    match args.command {
        DefenderCommand::Replay(a) => run_replay(&a),
    }
}

fn run_replay(a: &ReplayArgs) -> ExitCode {
    let input = match File::open(&a.input) {
        Ok(f) => BufReader::new(f),
        Err(e) => {
            eprintln!("wardmq: cannot open {}: {e}", a.input.display());
            return ExitCode::from(2);
        }
    };
    let out = match File::create(&a.out) {
        Ok(f) => BufWriter::new(f),
        Err(e) => {
            eprintln!("wardmq: cannot create {}: {e}", a.out.display());
            return ExitCode::from(2);
        }
    };
    let mut opts = ReplayOptions::default();
    opts.detector.gate.min_days = a.min_days;
    opts.detector.gate.min_datapoints = a.min_datapoints;
    opts.detector.gate.fast_start_days = a.fast_start_days;
    opts.clear_after = a.clear_after;
    match replay(input, out, opts) {
        Ok(s) => {
            eprintln!(
                "wardmq: replayed {} rows in {} periods, {} alarm events",
                s.rows, s.periods, s.events
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wardmq: {}: {e}", a.input.display());
            ExitCode::FAILURE
        }
    }
}
