//! Installs the process-wide tracing subscriber: text or JSON on standard
//! error, so standard output stays free for the few stable lines that
//! scripts and tests parse.

use std::io::IsTerminal;

use tracing_subscriber::filter::ParseError;
use tracing_subscriber::EnvFilter;

use crate::config::LogConfig;

/// `RUST_LOG`, when set, replaces the configured level, as operators expect
/// from any Rust service.
pub fn init(log: &LogConfig) -> anyhow::Result<()> {
    let configured = || with_device_activity(&log.level);
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.trim().is_empty() => with_device_activity(&env).or_else(|e| {
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

/// The target per-device activity is logged under (v2 log levels).
const DEVICE_TARGET: &str = "wardmq::device";

/// `directives`, with device activity let through at every level: the v2
/// log level an operator (or ENABLE_IOT_LOGGING) sets on a device is what
/// decides, and a DEBUG level must not vanish under a global `info`.
/// A filter that names the target itself keeps its own say.
fn with_device_activity(directives: &str) -> Result<EnvFilter, ParseError> {
    let filter = EnvFilter::try_new(directives)?;
    if directives.contains(DEVICE_TARGET) {
        return Ok(filter);
    }
    Ok(filter.add_directive(format!("{DEVICE_TARGET}=debug").parse()?))
}
