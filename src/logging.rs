//! Installs the process-wide tracing subscriber: text or JSON on standard
//! error, so standard output stays free for the few stable lines that
//! scripts and tests parse.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogConfig;

/// `RUST_LOG`, when set, replaces the configured level, as operators expect
/// from any Rust service.
pub fn init(log: &LogConfig) -> anyhow::Result<()> {
    let configured = || EnvFilter::try_new(&log.level);
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.trim().is_empty() => EnvFilter::try_new(&env).or_else(|e| {
            eprintln!(
                "wardmq: ignoring RUST_LOG={env:?} ({e}); using log.level {:?}",
                log.level
            );
            configured()
        })?,
        _ => configured()?,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes would litter log files and CI output.
        .with_ansi(std::io::stderr().is_terminal());
    let installed = if log.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    installed.map_err(|e| anyhow::anyhow!("cannot install the logger: {e}"))
}
