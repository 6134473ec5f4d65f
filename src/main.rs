//! The `wardmq` command line: loads the configuration, starts the broker and
//! runs it until Ctrl-C or SIGTERM.

#![forbid(unsafe_code)]

mod admin;
mod certs_cmd;
mod config;
mod console;
mod defend;
mod logging;
mod metrics;
mod replay_cmd;
mod sys;

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use tracing::{info, warn};
use wardmq::pki;
use wardmq_broker::publisher::Publisher;
use wardmq_broker::registry::Registry;
use wardmq_broker::server::{Server, Services};
use wardmq_defender::catalog::Catalog;
use wardmq_defender::store::DefenderDb;

use crate::admin::{AdminServer, AppState, Credentials, Issuer, Origin};
use crate::config::{AdminSettings, Config, Parts};
use crate::metrics::broker::BrokerCounters;
use crate::metrics::Metrics;

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
    /// Defender tools: `replay` runs a metrics CSV through ML Detect.
    Defender(replay_cmd::DefenderArgs),
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
    /// Mutual-TLS device listener, `IP:PORT`; "" disables it.
    #[arg(long, value_name = "ADDR")]
    tls: Option<String>,
    /// Directory with server.pem/server.key (and the dev PKI).
    #[arg(long, value_name = "DIR")]
    certs: Option<PathBuf>,
    /// Admin HTTP API listener as IP:PORT, "" to disable; overrides
    /// [admin] listen. Port 0 picks a free port.
    #[arg(long, value_name = "ADDR")]
    admin: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args),
        Command::Certs(args) => certs_cmd::run(args),
        Command::Defender(args) => replay_cmd::run(args),
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
    if let Some(addr) = args.tls {
        config.listeners.tls = addr;
    }
    if let Some(dir) = args.certs {
        config.listeners.certs_dir = dir;
    }
    if let Some(addr) = args.admin {
        config.admin.listen = addr;
    }
    let log = config.log.clone();
    // The file was valid on its own; what can fail here is a flag value
    // such as an empty --data.
    let parts = match config.into_parts() {
        Ok(parts) => parts,
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
    runtime.block_on(run(parts))
}

async fn run(parts: Parts) -> ExitCode {
    let Parts {
        settings,
        admin,
        defender,
        monitoring,
    } = parts;
    info!(
        version = env!("CARGO_PKG_VERSION"),
        data_dir = %settings.data_dir.display(),
        "starting wardmq"
    );
    catch_file_size_signal();
    if let Err(e) = std::fs::create_dir_all(&settings.data_dir) {
        eprintln!(
            "wardmq: cannot create data directory {}: {e}",
            settings.data_dir.display()
        );
        return ExitCode::FAILURE;
    }
    let registry_path = settings.data_dir.join("registry.redb");
    let registry = match Registry::open(&registry_path, settings.scope.clone()) {
        Ok(registry) => registry,
        Err(e) => {
            eprintln!(
                "wardmq: cannot open the registry {}: {e}",
                registry_path.display()
            );
            return ExitCode::FAILURE;
        }
    };
    // One handle per process: redb locks the file, so everything of the
    // defender that needs `defender.redb` shares this one.
    let defender_db = match DefenderDb::open(&settings.data_dir) {
        Ok(db) => db,
        Err(e) => {
            eprintln!(
                "wardmq: cannot open the defender store in {}: {e}",
                settings.data_dir.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let catalog = match Catalog::open(&defender_db, registry.clone()) {
        Ok(catalog) => catalog,
        Err(e) => {
            eprintln!(
                "wardmq: cannot load the Detect configuration from {}: {e}",
                defender_db.path().display()
            );
            return ExitCode::FAILURE;
        }
    };
    let region = settings.scope.region.clone();
    // On a fresh checkout the device listener has no certificates yet: make
    // the dev PKI (CA, server certificate, a demo device) so it can start.
    let dev_pki = match settings.tls.as_ref().and_then(|t| t.cert_chain.parent()) {
        Some(certs_dir) => match pki::ensure_dev_pki(certs_dir, &registry) {
            Ok(dev) => Some(dev),
            Err(e) => {
                eprintln!("wardmq: cannot prepare the dev PKI: {e:#}");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    let publisher = Publisher::new();
    let crls = settings
        .tls
        .as_ref()
        .map(|t| t.crls.clone())
        .unwrap_or_default();
    let defender = match defend::start(
        defender,
        defender_db,
        &catalog,
        &registry,
        publisher.clone(),
        crls,
    ) {
        Ok(defender) => defender,
        Err(e) => {
            eprintln!("wardmq: {e}");
            return ExitCode::FAILURE;
        }
    };
    let counters = Arc::new(BrokerCounters::default());
    let mut metrics = Metrics::new(counters.clone(), publisher.clone());
    let mut services = Services {
        registry: Some(registry.clone()),
        publisher,
        observer: counters.clone(),
        ..Services::default()
    };
    if let Some(d) = &defender {
        services.observer = Arc::new(wardmq_defender::audit::Both::new(
            d.observer(),
            services.observer,
        ));
        services.interceptor = Some(Arc::new(d.defender.clone()));
        metrics = metrics.with_defender(d);
    }
    // The console's overview samples the same counters `/metrics` reads.
    let traffic = Arc::new(console::traffic::Traffic::new(counters.clone()));
    let metrics = Arc::new(metrics);
    let server = match Server::start_with(settings, services).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("wardmq: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(addr) = server.tls_addr() {
        announce_tls(addr, dev_pki.as_ref());
    }
    if let Some(addr) = server.tcp_addr() {
        announce(addr);
    }
    if server.tls_addr().is_none() && server.tcp_addr().is_none() {
        warn!("no listener is enabled; clients cannot connect");
    }

    if let Some(interval) = monitoring.sys_interval {
        sys::start(metrics.clone(), interval);
    }
    let admin_server = match start_admin(
        &admin,
        registry,
        catalog,
        defender.clone(),
        &region,
        Watchers {
            traffic,
            metrics,
            metrics_token: monitoring.metrics_token.clone(),
        },
    )
    .await
    {
        Ok(admin_server) => admin_server,
        Err(e) => {
            eprintln!("wardmq: cannot start the admin API: {e}");
            server.shutdown().await;
            return ExitCode::FAILURE;
        }
    };

    match shutdown_signal().await {
        Ok(signal) => info!(signal, "shutting down"),
        Err(e) => warn!(error = %e, "cannot wait for signals; shutting down"),
    }
    if let Some(admin_server) = admin_server {
        admin_server.shutdown().await;
    }
    // A second Ctrl-C skips a shutdown that hangs (e.g. on a stuck disk).
    tokio::select! {
        () = server.shutdown() => {
            if let Some(d) = defender {
                // Saves the alarm book; a blocking join, off the runtime.
                let _ = tokio::task::spawn_blocking(move || d.shutdown()).await;
            }
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
fn announce_tls(addr: SocketAddr, dev: Option<&pki::DevPki>) {
    info!(%addr, "mqtts listener bound");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "wardmq: listening on mqtts://{addr} (mutual TLS)");
    if let Some(line) = dev.and_then(|d| d.try_it(addr.port())) {
        let _ = writeln!(out, "wardmq: try it: {line}");
    }
    let _ = out.flush();
}

fn announce(addr: SocketAddr) {
    info!(%addr, "mqtt listener bound");
    let mut out = std::io::stdout().lock();
    // Nothing useful can be done if stdout is closed; the broker still runs.
    let _ = writeln!(out, "{}", listening_line(addr));
    let _ = writeln!(out, "{}", try_it_line(addr));
    let _ = out.flush();
}

/// What the admin listener shows besides the API: the console's traffic
/// view and `/metrics`.
struct Watchers {
    traffic: Arc<console::traffic::Traffic>,
    metrics: Arc<Metrics>,
    metrics_token: Option<String>,
}

/// Starts the admin API unless it is disabled, creating its credentials
/// file on first start and announcing where it is.
async fn start_admin(
    admin: &AdminSettings,
    registry: Registry,
    catalog: Catalog,
    defender: Option<defend::Defend>,
    region: &str,
    watchers: Watchers,
) -> Result<Option<AdminServer>, String> {
    let Watchers {
        traffic,
        metrics,
        metrics_token,
    } = watchers;
    let Some(listen) = admin.listen else {
        info!("admin API disabled");
        return Ok(None);
    };
    let path = &admin.credentials_file;
    let (credentials, origin) = Credentials::load_or_create(path)?;
    let issuer = Issuer::load(&admin.issuer_cert, &admin.issuer_key)?;
    if issuer.is_none() {
        info!(
            cert = %admin.issuer_cert.display(),
            "no issuing CA; CreateKeysAndCertificate is refused"
        );
    }
    let mut console_password = None;
    let console = match &admin.console {
        Some(c) => {
            let (console, generated) = console::Console::open(
                c.user.clone(),
                &c.password_file,
                c.session,
                c.cookie_secure,
                traffic,
            )?;
            console_password = generated.map(|p| (c.user.clone(), c.password_file.clone(), p));
            Some(Arc::new(console))
        }
        None => None,
    };
    let state = AppState {
        console,
        registry,
        credentials,
        issuer,
        audit: defender.as_ref().map(|d| d.audit.clone()),
        mitigation: defender.as_ref().map(|d| d.mitigation.clone()),
        defender: defender.map(|d| d.defender),
        catalog: Some(catalog),
        metrics: Some(metrics),
        metrics_token,
        auth_failures: Default::default(),
    };
    let server = AdminServer::start(listen, state)
        .await
        .map_err(|e| format!("cannot bind {listen}: {e}"))?;
    let addr = server.addr();
    info!(%addr, "admin API bound");
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", admin_line(addr));
    if origin == Origin::Created {
        let _ = writeln!(out, "{}", credentials_line(path, addr, region));
    }
    if admin.console.is_some() {
        let _ = writeln!(
            out,
            "wardmq: console on http://{}/console/",
            reachable(addr)
        );
    }
    if let Some((user, file, password)) = console_password {
        // Shown this once; the file keeps it (0600) for later.
        let _ = writeln!(
            out,
            "wardmq: console login: user {user}, password {password} (kept in {})",
            file.display()
        );
    }
    let _ = out.flush();
    Ok(Some(server))
}

fn admin_line(addr: SocketAddr) -> String {
    format!("wardmq: admin API on http://{}", reachable(addr))
}

fn credentials_line(path: &std::path::Path, addr: SocketAddr, region: &str) -> String {
    let path = path.display();
    format!(
        "wardmq: admin credentials in {path}; try: AWS_SHARED_CREDENTIALS_FILE={path} \
         aws iot list-things --endpoint-url http://{} --region {region}",
        reachable(addr)
    )
}

/// The address a client on this host dials: a wildcard bind is reachable
/// on loopback, and nobody can dial 0.0.0.0.
fn reachable(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
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

/// A file-size limit (`ulimit -f`) must surface as a write error that the
/// stores report and survive, as a full disk does, not kill the broker:
/// SIGXFSZ's default action terminates it. tokio never uninstalls a
/// handler, so the stream need not be kept.
#[cfg(unix)]
fn catch_file_size_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    if let Err(e) = signal(SignalKind::from_raw(libc::SIGXFSZ)) {
        warn!(error = %e, "cannot catch SIGXFSZ; a file-size limit would kill the broker");
    }
}

#[cfg(not(unix))]
fn catch_file_size_signal() {}

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
    fn admin_lines() {
        let addr: SocketAddr = "0.0.0.0:9080".parse().expect("addr");
        assert_eq!(
            admin_line(addr),
            "wardmq: admin API on http://127.0.0.1:9080"
        );
        assert_eq!(
            credentials_line(std::path::Path::new("data/k"), addr, "us-east-1"),
            "wardmq: admin credentials in data/k; try: AWS_SHARED_CREDENTIALS_FILE=data/k \
             aws iot list-things --endpoint-url http://127.0.0.1:9080 --region us-east-1"
        );
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
