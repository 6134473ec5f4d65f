//! The dev PKI on disk and in the registry: `certs/` holds the CA, the
//! server certificate and `devices/`; the registry knows the CA, each
//! device certificate, its thing and the default device policy. Every step
//! is idempotent, so `wardmq certs ...` and `wardmq serve` can run it again
//! on a half-made PKI and finish it.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use wardmq_broker::registry::{CaCertificateStatus, CertificateStatus, Registry, RegistryError};

use super::issue::{self, CertOptions, Issuer};

/// The policy every device made here gets: its own client ID, topics and
/// Device Defender topics, nothing else.
pub const DEFAULT_POLICY_NAME: &str = "wardmq-device-default";
pub const DEFAULT_POLICY_DOCUMENT: &str = include_str!("../../config/policies/device-default.json");

/// The device `wardmq serve` creates on a fresh checkout.
pub const DEMO_DEVICE: &str = "demo-device";

/// Port of the TLS listener in the printed commands.
// TODO(tls listener): take the bound port from the listener once it lands.
pub const DEFAULT_TLS_PORT: u16 = 8883;

/// Where the dev PKI's files live inside a certs directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PkiPaths {
    pub dir: PathBuf,
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    /// The server certificate followed by the CA certificate.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub devices: PathBuf,
}

impl PkiPaths {
    pub fn new(dir: &Path) -> PkiPaths {
        PkiPaths {
            dir: dir.to_owned(),
            ca_cert: dir.join("ca.pem"),
            ca_key: dir.join("ca.key"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            devices: dir.join("devices"),
        }
    }

    pub fn device(&self, name: &str) -> DeviceFiles {
        DeviceFiles {
            name: name.to_owned(),
            cert: self.devices.join(format!("{name}.pem")),
            key: self.devices.join(format!("{name}.key")),
        }
    }

    /// The dev CA, read from `ca.pem` and `ca.key`.
    pub fn load_ca(&self) -> Result<Issuer> {
        let cert = read(&self.ca_cert)?;
        let key = read(&self.ca_key)?;
        Issuer::from_pem(&cert, &key)
            .with_context(|| format!("cannot use {} as the CA", self.ca_cert.display()))
    }
}

/// One device's certificate and key files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceFiles {
    pub name: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl DeviceFiles {
    /// A command that publishes as this device, ready to paste.
    pub fn mosquitto_pub(&self, ca_cert: &Path, host: &str, port: u16) -> String {
        format!(
            "mosquitto_pub --cafile {} --cert {} --key {} -h {host} -p {port} -i {name} -t {name}/hello -m hi",
            ca_cert.display(),
            self.cert.display(),
            self.key.display(),
            name = self.name,
        )
    }
}

/// What `init` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitReport {
    pub paths: PkiPaths,
    /// The CA files were written now (not kept from an earlier run).
    pub ca_created: bool,
    pub server_created: bool,
    /// The CA's certificateId in the registry.
    pub ca_id: String,
    /// Its status there (ACTIVE unless an operator changed it).
    pub ca_status: CaCertificateStatus,
}

/// `wardmq certs init`: the CA and the server certificate, kept if they
/// exist (unless `force`), and the CA registered ACTIVE.
pub fn init(dir: &Path, registry: &Registry, hosts: &[String], force: bool) -> Result<InitReport> {
    let paths = PkiPaths::new(dir);
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;

    let ca_exists = paths.ca_cert.exists() || paths.ca_key.exists();
    let (ca, ca_created) = if ca_exists && !force {
        (
            paths.load_ca().context("use --force to make a new CA")?,
            false,
        )
    } else {
        let ca = Issuer::generate(issue::CA_COMMON_NAME)?;
        // Key first: a crash between the two leaves a key without a
        // certificate, which the next run reports, never the reverse.
        write_secret(&paths.ca_key, &ca.key_pem())?;
        write_public(&paths.ca_cert, ca.cert_pem())?;
        (ca, true)
    };

    // A new CA invalidates the old server certificate.
    let server_exists = paths.server_cert.exists() && paths.server_key.exists();
    let server_created = ca_created || force || !server_exists;
    if server_created {
        let server = issue::issue_server_cert(&ca, hosts)?;
        write_secret(&paths.server_key, &server.key_pem)?;
        let chain = format!("{}{}", server.cert_pem, ca.cert_pem());
        write_public(&paths.server_cert, &chain)?;
    }

    let (ca_id, ca_status) = register_ca(registry, ca.cert_pem())?;
    Ok(InitReport {
        paths,
        ca_created,
        server_created,
        ca_id,
        ca_status,
    })
}

/// What `device` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceReport {
    pub files: DeviceFiles,
    /// The files were written now (not kept from an earlier run).
    pub created: bool,
    pub certificate_id: String,
    pub certificate_arn: String,
}

/// `wardmq certs device NAME`: a certificate for thing `name` signed by the
/// dev CA, registered ACTIVE, attached to the thing (created if needed) and
/// given the default device policy. Existing files are kept unless `force`.
pub fn device(dir: &Path, registry: &Registry, name: &str, force: bool) -> Result<DeviceReport> {
    check_thing_name(name)?;
    let paths = PkiPaths::new(dir);
    if !paths.ca_cert.exists() {
        bail!(
            "{} does not exist; run `wardmq certs init` first",
            paths.ca_cert.display()
        );
    }
    let ca = paths.load_ca()?;
    // Registering the device needs its CA registered; a registry in another
    // data dir than the one `init` used would otherwise fail here.
    register_ca(registry, ca.cert_pem())?;

    let files = paths.device(name);
    let exists = files.cert.exists() && files.key.exists();
    let created = force || !exists;
    let cert_pem = if created {
        fs::create_dir_all(&paths.devices)
            .with_context(|| format!("cannot create {}", paths.devices.display()))?;
        let issued = issue::issue_device_cert(&ca, name, &CertOptions::default())?;
        write_secret(&files.key, &issued.key_pem)?;
        write_public(&files.cert, &issued.cert_pem)?;
        issued.cert_pem
    } else {
        read(&files.cert)?
    };

    let certificate_id = register_device_cert(registry, &cert_pem, ca.cert_pem())?;
    let certificate_arn = registry.scope().cert_arn(&certificate_id);
    match registry.create_thing(name, None, BTreeMap::new()) {
        // A thing made elsewhere with attributes is still this device's.
        Ok(_) | Err(RegistryError::ResourceAlreadyExists { .. }) => {}
        Err(e) => return Err(e).context(format!("cannot create thing {name}")),
    }
    registry
        .attach_thing_principal(name, &certificate_arn)
        .with_context(|| format!("cannot attach the certificate to thing {name}"))?;
    ensure_default_policy(registry)?;
    registry
        .attach_policy(DEFAULT_POLICY_NAME, &certificate_arn)
        .with_context(|| format!("cannot attach policy {DEFAULT_POLICY_NAME}"))?;
    Ok(DeviceReport {
        files,
        created,
        certificate_id,
        certificate_arn,
    })
}

/// What `ensure_dev_pki` found or made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevPki {
    pub paths: PkiPaths,
    /// The PKI was created by this call (a fresh checkout).
    pub created: bool,
    /// The demo device, if its files exist.
    pub demo_device: Option<DeviceFiles>,
}

impl DevPki {
    /// The `mosquitto_pub` line to print at startup, if there is a demo device.
    pub fn try_it(&self, port: u16) -> Option<String> {
        self.demo_device
            .as_ref()
            .map(|d| d.mosquitto_pub(&self.paths.ca_cert, "localhost", port))
    }
}

/// For `wardmq serve` on a fresh checkout: if `certs_dir/ca.pem` is missing,
/// runs `init` and issues the device `demo-device`. It does the same
/// (keeping the files) when the dev CA exists but this registry has never
/// seen it, as with a new data directory. Otherwise it changes nothing.
/// `registry` is the one the broker serves from, so the demo device can
/// connect at once.
pub fn ensure_dev_pki(certs_dir: &Path, registry: &Registry) -> Result<DevPki> {
    let paths = PkiPaths::new(certs_dir);
    let created = !paths.ca_cert.exists();
    let unregistered =
        !created && paths.ca_key.exists() && !ca_registered(registry, &paths.ca_cert)?;
    if created || unregistered {
        init(certs_dir, registry, &[], false)?;
        device(certs_dir, registry, DEMO_DEVICE, false)?;
    }
    let demo = paths.device(DEMO_DEVICE);
    let demo_device = (demo.cert.exists() && demo.key.exists()).then_some(demo);
    Ok(DevPki {
        paths,
        created,
        demo_device,
    })
}

fn ca_registered(registry: &Registry, ca_cert: &Path) -> Result<bool> {
    let pem = read(ca_cert)?;
    let der = CertificateDer::from_pem_slice(pem.as_bytes())
        .with_context(|| format!("{} holds no certificate", ca_cert.display()))?;
    let id = wardmq_broker::net::identity::certificate_id(der.as_ref());
    Ok(registry.ca_certificate(&id).is_some())
}

/// Registers the CA ACTIVE with auto-registration off; an already
/// registered CA keeps whatever status an operator gave it.
fn register_ca(registry: &Registry, ca_pem: &str) -> Result<(String, CaCertificateStatus)> {
    match registry.register_ca_certificate(ca_pem, true, false) {
        Ok(ca) => Ok((ca.id, ca.status)),
        Err(RegistryError::ResourceAlreadyExists { id, .. }) => {
            let status = registry
                .ca_certificate(&id)
                .map_or(CaCertificateStatus::Active, |c| c.status);
            Ok((id, status))
        }
        Err(e) => Err(e).context("cannot register the CA certificate"),
    }
}

fn register_device_cert(registry: &Registry, cert_pem: &str, ca_pem: &str) -> Result<String> {
    match registry.register_certificate(cert_pem, Some(ca_pem), Some(CertificateStatus::Active)) {
        Ok(cert) => Ok(cert.id),
        Err(RegistryError::ResourceAlreadyExists { id, .. }) => Ok(id),
        Err(e) => Err(e).context("cannot register the device certificate"),
    }
}

/// Creates the default policy once; an existing one is left alone, since
/// an operator may have given it new versions.
fn ensure_default_policy(registry: &Registry) -> Result<()> {
    if registry.policy(DEFAULT_POLICY_NAME).is_some() {
        return Ok(());
    }
    match registry.create_policy(DEFAULT_POLICY_NAME, DEFAULT_POLICY_DOCUMENT) {
        Ok(_) | Err(RegistryError::ResourceAlreadyExists { .. }) => Ok(()),
        Err(e) => Err(e).context(format!("cannot create policy {DEFAULT_POLICY_NAME}")),
    }
}

/// A thing name (`[a-zA-Z0-9:_-]`, 1 to 128) is also a safe file name:
/// no `/`, no `..`. Checked before any file is written.
fn check_thing_name(name: &str) -> Result<()> {
    let ok = (1..=128).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-'));
    if !ok {
        bail!("{name:?} is not a valid thing name: use 1 to 128 of a-z A-Z 0-9 : _ -");
    }
    Ok(())
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn write_public(path: &Path, contents: &str) -> Result<()> {
    write_atomic(path, contents, 0o644)
}

fn write_secret(path: &Path, contents: &str) -> Result<()> {
    write_atomic(path, contents, 0o600)
}

/// Writes through a temporary file created with `mode` and renamed over
/// `path`, so a key is never readable by others even for a moment and a
/// crash never leaves half a PEM.
fn write_atomic(path: &Path, contents: &str, mode: u32) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let _ = fs::remove_file(&tmp);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let result = options
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(contents.as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}
