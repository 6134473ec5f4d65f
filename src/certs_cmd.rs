//! `wardmq certs ...`: makes the dev PKI and device certificates, writing
//! files under the certs directory and registering them in the data
//! directory's registry. The broker must not be running on the same data
//! directory: the registry file is opened exclusively.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use wardmq::pki;
use wardmq_broker::registry::{CaCertificateStatus, Registry};
use wardmq_broker::settings::Settings;

#[derive(Args)]
pub struct CertsArgs {
    #[command(subcommand)]
    command: CertsCommand,
}

#[derive(Subcommand)]
enum CertsCommand {
    /// Create the dev CA and the TLS server certificate, and register the
    /// CA. Existing files are kept.
    Init(InitArgs),
    /// Issue a device certificate signed by the dev CA and register it with
    /// a thing of the same name and the default device policy.
    Device(DeviceArgs),
}

#[derive(Args)]
struct Common {
    /// Directory of the dev PKI files.
    #[arg(long, value_name = "DIR", default_value = "certs")]
    dir: PathBuf,
    /// Data directory holding registry.redb (default: the broker's default
    /// data directory).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

#[derive(Args)]
struct InitArgs {
    #[command(flatten)]
    common: Common,
    /// Extra DNS name or IP address for the server certificate, besides
    /// localhost, 127.0.0.1 and ::1. Repeatable.
    #[arg(long = "host", value_name = "NAME")]
    hosts: Vec<String>,
    /// Make a new CA and server certificate even if files exist. Devices
    /// issued by the old CA stop verifying against the new ca.pem.
    #[arg(long)]
    force: bool,
}

#[derive(Args)]
struct DeviceArgs {
    /// Thing name, also the certificate's common name and the client ID the
    /// device must use.
    name: String,
    #[command(flatten)]
    common: Common,
    /// Issue a new certificate even if the device's files exist.
    #[arg(long)]
    force: bool,
}

pub fn run(args: CertsArgs) -> ExitCode {
    let result = match args.command {
        CertsCommand::Init(a) => init(a),
        CertsCommand::Device(a) => device(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wardmq: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn open_registry(data: Option<PathBuf>) -> anyhow::Result<Registry> {
    let data = data.unwrap_or_else(|| Settings::default().data_dir);
    std::fs::create_dir_all(&data)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", data.display()))?;
    let path = pki::registry_path(&data);
    Registry::open(&path, pki::default_scope()).map_err(|e| {
        anyhow::anyhow!(
            "cannot open the registry {}: {e} (is wardmq serve running on it?)",
            path.display()
        )
    })
}

fn init(args: InitArgs) -> anyhow::Result<()> {
    let registry = open_registry(args.common.data)?;
    let report = pki::init(&args.common.dir, &registry, &args.hosts, args.force)?;
    let p = &report.paths;
    let verb = |created: bool| if created { "wrote" } else { "kept " };
    println!("{} {}", verb(report.ca_created), p.ca_cert.display());
    println!("{} {}", verb(report.ca_created), p.ca_key.display());
    println!(
        "{} {}",
        verb(report.server_created),
        p.server_cert.display()
    );
    println!("{} {}", verb(report.server_created), p.server_key.display());
    if !report.server_created && !args.hosts.is_empty() {
        println!("note: server.pem was kept, so --host had no effect; add --force to reissue it");
    }
    println!(
        "CA {} registered, status {}",
        report.ca_id,
        report.ca_status.as_str()
    );
    if report.ca_status != CaCertificateStatus::Active {
        println!("note: devices issued by this CA cannot connect until it is ACTIVE again");
    }
    println!(
        "next: wardmq certs device NAME --dir {}",
        args.common.dir.display()
    );
    Ok(())
}

fn device(args: DeviceArgs) -> anyhow::Result<()> {
    let registry = open_registry(args.common.data)?;
    let dir: &Path = &args.common.dir;
    let report = pki::device(dir, &registry, &args.name, args.force)?;
    let verb = if report.created { "wrote" } else { "kept " };
    println!("{verb} {}", report.files.cert.display());
    println!("{verb} {}", report.files.key.display());
    println!(
        "certificate {} ACTIVE, attached to thing {} with policy {}",
        report.certificate_id,
        args.name,
        pki::DEFAULT_POLICY_NAME
    );
    println!("try it (with the TLS listener on):");
    println!(
        "  {}",
        report.files.mosquitto_pub(
            &pki::PkiPaths::new(dir).ca_cert,
            "localhost",
            pki::DEFAULT_TLS_PORT
        )
    );
    Ok(())
}
