//! The `wardmq` command line: loads the configuration, starts the broker and
//! runs it until Ctrl-C or SIGTERM.

#![forbid(unsafe_code)]

#[allow(dead_code)] // wired into the admin server by the next change
mod admin;
mod certs_cmd;
mod config;
mod logging;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use tracing::{info, warn};
use wardmq_broker::server::Server;
use wardmq_broker::settings::Settings;

use crate::config::Config;

/// Exit code for anything the user must fix before wardmq can start: bad
/// flags (clap uses 2 as well), an unreadable or invalid config file.
const EXIT_USAGE: u8 = 2;

#[derive(Parser)]
#[command(
    name = "wardmq",
    version,
    about = "MQTT 3.1.1/5.0 broker with a built-in security defender"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker until Ctrl-C or SIGTERM.
    Serve(ServeArgs),
    /// Make the development PKI: a CA, the server certificate, devices.
    Certs(certs_cmd::CertsArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Configuration file (TOML). Without it the built-in defaults apply;
    /// config/wardmq.toml lists them all.
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory; overrides [storage] data_dir.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Plain MQTT/TCP listener as IP:PORT; overrides [listeners] tcp.
    /// Port 0 picks a free port.
    #[arg(long, value_name = "ADDR")]
    tcp: Option<SocketAddr>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Certs(args) => certs_cmd::run(args),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let mut config = match &args.config {
        Some(path) => match Config::load(path) {
            Ok(config) => config,
            Err(e) => {
                eprintln!("wardmq: {e}");
                return ExitCode::from(EXIT_USAGE);
            }
        },
        None => Config::default(),
    };
    if let Some(dir) = args.data {
        config.storage.data_dir = dir;
    }
    if let Some(addr) = args.tcp {
        config.listeners.tcp = addr.to_string();
    }
    let log = config.log.clone();
    // The file was valid on its own; what can fail here is a flag value
    // such as an empty --data.
    let settings = match config.into_settings() {
        Ok(settings) => settings,
        Err(problems) => {
            eprintln!("wardmq: invalid configuration:");
            for p in problems {
                eprintln!("  {p}");
            }
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Err(e) = logging::init(&log) {
        eprintln!("wardmq: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wardmq: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(settings))
}

async fn run(settings: Settings) -> ExitCode {
    info!(
        version = env!("CARGO_PKG_VERSION"),
        data_dir = %settings.data_dir.display(),
        "starting wardmq"
    );
    let server = match Server::start(settings).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("wardmq: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match server.tcp_addr() {
        Some(addr) => announce(addr),
        None => warn!("no listener is enabled; clients cannot connect"),
    }

    match shutdown_signal().await {
        Ok(signal) => info!(signal, "shutting down"),
        Err(e) => warn!(error = %e, "cannot wait for signals; shutting down"),
    }
    // A second Ctrl-C skips a shutdown that hangs (e.g. on a stuck disk).
    tokio::select! {
        () = server.shutdown() => {
            info!("stopped");
            ExitCode::SUCCESS
        }
        _ = tokio::signal::ctrl_c() => {
            eprintln!("wardmq: interrupted again; exiting without a clean shutdown");
            ExitCode::from(130)
        }
    }
}

/// Prints the stable, documented lines scripts and tests rely on, on
/// standard output whatever the log settings; the log gets its own event.
fn announce(addr: SocketAddr) {
    info!(%addr, "mqtt listener bound");
    let mut out = std::io::stdout().lock();
    // Nothing useful can be done if stdout is closed; the broker still runs.
    let _ = writeln!(out, "{}", listening_line(addr));
    let _ = writeln!(out, "{}", try_it_line(addr));
    let _ = out.flush();
}

fn listening_line(addr: SocketAddr) -> String {
    format!("wardmq: listening on mqtt://{addr}")
}

fn try_it_line(addr: SocketAddr) -> String {
    // A wildcard bind is reachable on loopback; clients cannot dial 0.0.0.0.
    let host = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!(
        "wardmq: try it: mosquitto_pub -h {host} -p {} -t test/hello -m hi",
        addr.port()
    )
}

#[cfg(unix)]
async fn shutdown_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.map(|()| "SIGINT"),
        _ = term.recv() => Ok("SIGTERM"),
    }
}

#[cfg(not(unix))]
async fn shutdown_signal() -> std::io::Result<&'static str> {
    tokio::signal::ctrl_c().await.map(|()| "Ctrl-C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announced_lines_use_the_bound_address() {
        let addr: SocketAddr = "127.0.0.1:40123".parse().expect("addr");
        assert_eq!(
            listening_line(addr),
            "wardmq: listening on mqtt://127.0.0.1:40123"
        );
        assert_eq!(
            try_it_line(addr),
            "wardmq: try it: mosquitto_pub -h 127.0.0.1 -p 40123 -t test/hello -m hi"
        );
        let v6: SocketAddr = "[::]:1883".parse().expect("addr");
        assert_eq!(listening_line(v6), "wardmq: listening on mqtt://[::]:1883");
        assert!(try_it_line(v6).contains("-h ::1 -p 1883"));
        let any: SocketAddr = "0.0.0.0:1883".parse().expect("addr");
        assert!(try_it_line(any).contains("-h 127.0.0.1 -p 1883"));
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
