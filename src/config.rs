//! The configuration file: one serde tree mirroring `config/wardmq.toml`,
//! a validation pass that reports every problem at once, and the conversion
//! into the broker's already-checked `Settings`.
//!
//! Numbers are read as `i64` (TOML's own integer type) and range-checked in
//! `validate`, and enums as strings, so that a bad value becomes one more
//! line in the report instead of a serde error that hides everything after it.

use std::fmt;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::de::{DeTable, DeValue};
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use wardmq_broker::authz::Policy;
use wardmq_broker::scope::Scope;
use wardmq_broker::settings::{Limits, QueueFullPolicy, Settings, TlsSettings};
use wardmq_defender::alerts::sink_name;
use wardmq_defender::ml::ModelGate;
use wardmq_defender::settings::{
    AlertSinkKind, AlertSinkSettings, BrokerLimits, BrokerProfileSettings, DefenderSettings,
};

/// The largest packet MQTT can frame: a four-byte Remaining Length.
const MQTT_MAX_PACKET_SIZE: i64 = 268_435_455;
/// MQTT requires every server to accept client IDs of 1 to 23 characters.
const MQTT_MIN_CLIENT_ID_LEN: i64 = 23;
/// Highest connection rate or burst accepted (a bucket, not a buffer:
/// larger would only mean "off", which 0 says for rates).
const MAX_CONNECTION_RATE: i64 = 1_000_000;

#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub storage: StorageConfig,
    pub listeners: ListenersConfig,
    pub limits: LimitsConfig,
    pub log: LogConfig,
    pub aws: AwsConfig,
    pub admin: AdminConfig,
    pub console: ConsoleConfig,
    pub defender: DefenderConfig,
    pub monitoring: MonitoringConfig,
}

/// `[monitoring]`: the `$SYS/` topics and the Prometheus endpoint.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitoringConfig {
    /// Seconds between `$SYS/` updates (Mosquitto's key); 0 turns them off.
    pub sys_interval: i64,
    /// Bearer token `/metrics` requires; empty leaves it open.
    pub metrics_token: String,
}

impl Default for MonitoringConfig {
    fn default() -> Self {
        MonitoringConfig {
            sys_interval: 10,
            metrics_token: String::new(),
        }
    }
}

/// `[monitoring]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitoringSettings {
    /// `None`: no `$SYS/` topics.
    pub sys_interval: Option<Duration>,
    pub metrics_token: Option<String>,
}

/// The web console on the admin listener (`src/console`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    pub enabled: bool,
    pub user: String,
    /// File holding the password; empty means `console-password` in the
    /// data directory, generated on first start.
    pub password_file: PathBuf,
    pub session_minutes: i64,
    /// Marks the session cookie `Secure` (behind a TLS-terminating proxy).
    pub cookie_secure: bool,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            enabled: true,
            user: "admin".to_owned(),
            password_file: PathBuf::new(),
            session_minutes: 480,
            cookie_secure: false,
        }
    }
}

/// The console's checked settings; `None` in [`AdminSettings`] when off.
#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleSettings {
    pub user: String,
    pub password_file: PathBuf,
    pub session: Duration,
    pub cookie_secure: bool,
}

/// The defender (`DefenderSettings`); durations in whole seconds or days.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DefenderConfig {
    pub enabled: bool,
    pub datapoint_seconds: i64,
    pub report_min_interval_secs: i64,
    pub metric_retention_days: i64,
    pub violation_retention_days: i64,
    pub invalidate_after_secs: i64,
    pub statistical_min_devices: i64,
    pub ml_min_days: i64,
    pub ml_min_datapoints: i64,
    pub ml_max_failed_builds: i64,
    pub ml_fast_start_days: i64,
    pub ml_period_seconds: i64,
    pub alert_sinks: Vec<AlertSinkConfig>,
    pub broker_profile: BrokerProfileConfig,
}

/// `[defender.broker_profile]`: per-period maxima, 0 turns a rule off.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerProfileConfig {
    pub alert_target_arn: String,
    pub per_ip_connection_attempts: i64,
    pub per_ip_tls_failures: i64,
    pub per_ip_connect_failures: i64,
    pub per_ip_authorization_failures: i64,
    pub broker_connection_attempts: i64,
    pub broker_tls_failures: i64,
    pub broker_connect_failures: i64,
    pub broker_authorization_failures: i64,
    pub broker_messages_dropped: i64,
}

impl Default for BrokerProfileConfig {
    fn default() -> Self {
        let d = BrokerProfileSettings::default();
        let n = |v: Option<u64>| v.map_or(0, wide);
        BrokerProfileConfig {
            alert_target_arn: String::new(),
            per_ip_connection_attempts: n(d.per_ip.connection_attempts),
            per_ip_tls_failures: n(d.per_ip.tls_failures),
            per_ip_connect_failures: n(d.per_ip.connect_failures),
            per_ip_authorization_failures: n(d.per_ip.authorization_failures),
            broker_connection_attempts: n(d.broker.connection_attempts),
            broker_tls_failures: n(d.broker.tls_failures),
            broker_connect_failures: n(d.broker.connect_failures),
            broker_authorization_failures: n(d.broker.authorization_failures),
            broker_messages_dropped: n(d.broker_messages_dropped),
        }
    }
}

impl BrokerProfileConfig {
    fn build(&self, c: &mut Checker, sinks: &[AlertSinkSettings]) -> BrokerProfileSettings {
        let arn = &self.alert_target_arn;
        if !arn.is_empty() && !sink_name(arn).is_some_and(|n| sinks.iter().any(|s| s.name == n)) {
            c.fail(
                "defender.broker_profile.alert_target_arn",
                format!("`{arn}` is not arn:aws:sns:REGION:ACCOUNT:NAME of a declared alert sink"),
            );
        }
        let mut max = |key: &str, v: i64| {
            let v: u64 = c.int(&format!("defender.broker_profile.{key}"), v, 0..=i64::MAX);
            (v > 0).then_some(v)
        };
        BrokerProfileSettings {
            per_ip: BrokerLimits {
                connection_attempts: max(
                    "per_ip_connection_attempts",
                    self.per_ip_connection_attempts,
                ),
                tls_failures: max("per_ip_tls_failures", self.per_ip_tls_failures),
                connect_failures: max("per_ip_connect_failures", self.per_ip_connect_failures),
                authorization_failures: max(
                    "per_ip_authorization_failures",
                    self.per_ip_authorization_failures,
                ),
            },
            broker: BrokerLimits {
                connection_attempts: max(
                    "broker_connection_attempts",
                    self.broker_connection_attempts,
                ),
                tls_failures: max("broker_tls_failures", self.broker_tls_failures),
                connect_failures: max("broker_connect_failures", self.broker_connect_failures),
                authorization_failures: max(
                    "broker_authorization_failures",
                    self.broker_authorization_failures,
                ),
            },
            broker_messages_dropped: max("broker_messages_dropped", self.broker_messages_dropped),
            alert_target_arn: (!self.alert_target_arn.is_empty())
                .then(|| self.alert_target_arn.clone()),
        }
    }
}

/// One `[[defender.alert_sinks]]` table.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSinkConfig {
    pub name: String,
    /// `webhook`, `mqtt` or `log`.
    pub kind: String,
    #[serde(default)]
    pub url: String,
    #[serde(default)]
    pub secret: String,
    #[serde(default)]
    pub topic: String,
    #[serde(default = "default_sink_queue")]
    pub queue: i64,
    #[serde(default = "default_sink_attempts")]
    pub attempts: i64,
    #[serde(default = "default_sink_timeout")]
    pub timeout_secs: i64,
}

fn default_sink_queue() -> i64 {
    10_000
}
fn default_sink_attempts() -> i64 {
    5
}
fn default_sink_timeout() -> i64 {
    5
}

/// The region and account the broker presents in every ARN.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AwsConfig {
    pub region: String,
    pub account: String,
}

/// The admin HTTP API.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// `IP:PORT`; the empty string disables the API.
    pub listen: String,
    /// Shared-credentials file; empty means `admin-credentials` in the
    /// data directory.
    pub credentials_file: PathBuf,
    /// CA certificate and key CreateKeysAndCertificate signs with; the
    /// operation is refused when both files are absent.
    pub issuer_cert: PathBuf,
    pub issuer_key: PathBuf,
}

/// The admin API's settings, checked (the binary owns them: the broker
/// core knows nothing of HTTP).
#[derive(Debug, Clone, PartialEq)]
pub struct AdminSettings {
    pub listen: Option<SocketAddr>,
    pub credentials_file: PathBuf,
    pub issuer_cert: PathBuf,
    pub issuer_key: PathBuf,
    pub console: Option<ConsoleSettings>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Relative paths are relative to the working directory.
    pub data_dir: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenersConfig {
    /// `IP:PORT`; the empty string disables the listener.
    pub tcp: String,
    /// Mutual-TLS device listener, `IP:PORT`; the empty string disables it.
    pub tls: String,
    /// Holds `server.pem` and `server.key`; the dev PKI is created here on
    /// first start if it holds no `ca.pem`.
    pub certs_dir: PathBuf,
    pub tls_handshake_timeout_secs: i64,
    /// CRL files by the id of the CA that issued them.
    pub crl: Vec<CrlConfig>,
    /// Policy document (JSON) for plain-TCP clients.
    pub anonymous_policy: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrlConfig {
    /// The registered CA's certificate id (64 hex digits).
    pub ca_id: String,
    /// PEM or DER; reloaded when it changes.
    pub file: PathBuf,
}

/// Mirrors `wardmq_broker::settings::Limits`; durations in whole seconds.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    pub max_connections: i64,
    pub max_packet_size: i64,
    pub receive_maximum: i64,
    pub max_keep_alive: i64,
    pub topic_alias_maximum: i64,
    pub max_inflight: i64,
    pub max_queued_messages: i64,
    pub max_queued_bytes: i64,
    pub queue_full_policy: String,
    pub max_session_expiry_secs: i64,
    pub connect_timeout_secs: i64,
    pub max_client_id_len: i64,
    pub connection_rate_per_ip: i64,
    pub connection_burst_per_ip: i64,
    pub connection_rate: i64,
    pub connection_burst: i64,
    pub max_subscriptions_per_client: i64,
    pub max_topic_len: i64,
    pub max_topic_levels: i64,
    pub max_retained_messages: i64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// A tracing `EnvFilter` directive; `RUST_LOG` overrides it.
    pub level: String,
    /// `text` or `json`.
    pub format: String,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            data_dir: Settings::default().data_dir,
        }
    }
}

impl Default for ListenersConfig {
    fn default() -> Self {
        ListenersConfig {
            // Plain TCP is for development and tests: off unless asked for.
            tcp: String::new(),
            tls: "0.0.0.0:8883".to_owned(),
            certs_dir: PathBuf::from("certs"),
            tls_handshake_timeout_secs: 10,
            crl: Vec::new(),
            anonymous_policy: wardmq_broker::settings::DEV_ANONYMOUS_POLICY.to_owned(),
        }
    }
}

// The broker's defaults are the single source; the annotated file is tested
// against them, so the three cannot drift apart.
impl Default for LimitsConfig {
    fn default() -> Self {
        let l = Limits::default();
        LimitsConfig {
            max_connections: wide(l.max_connections),
            max_packet_size: l.max_packet_size.into(),
            receive_maximum: l.receive_maximum.into(),
            max_keep_alive: l.max_keep_alive.into(),
            topic_alias_maximum: l.topic_alias_maximum.into(),
            max_inflight: l.max_inflight.into(),
            max_queued_messages: wide(l.max_queued_messages),
            max_queued_bytes: wide(l.max_queued_bytes),
            queue_full_policy: policy_name(l.queue_full_policy).to_owned(),
            max_session_expiry_secs: wide(l.max_session_expiry.as_secs()),
            connect_timeout_secs: wide(l.connect_timeout.as_secs()),
            max_client_id_len: wide(l.max_client_id_len),
            connection_rate_per_ip: l.connection_rate_per_ip.into(),
            connection_burst_per_ip: l.connection_burst_per_ip.into(),
            connection_rate: l.connection_rate.into(),
            connection_burst: l.connection_burst.into(),
            max_subscriptions_per_client: wide(l.max_subscriptions_per_client),
            max_topic_len: wide(l.max_topic_len),
            max_topic_levels: wide(l.max_topic_levels),
            max_retained_messages: wide(l.max_retained_messages),
        }
    }
}

impl Default for AwsConfig {
    fn default() -> Self {
        let scope = Settings::default().scope;
        AwsConfig {
            region: scope.region,
            account: scope.account,
        }
    }
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            listen: "127.0.0.1:9080".to_owned(),
            credentials_file: PathBuf::new(),
            issuer_cert: PathBuf::from("certs/ca.pem"),
            issuer_key: PathBuf::from("certs/ca.key"),
        }
    }
}

impl Default for DefenderConfig {
    fn default() -> Self {
        let d = DefenderSettings::default();
        DefenderConfig {
            enabled: d.enabled,
            datapoint_seconds: wide(d.datapoint_period.as_secs()),
            report_min_interval_secs: wide(d.report_min_interval.as_secs()),
            metric_retention_days: wide(d.metric_retention.as_secs() / DAY),
            violation_retention_days: wide(d.violation_retention.as_secs() / DAY),
            invalidate_after_secs: wide(d.invalidate_after.as_secs()),
            statistical_min_devices: wide(d.statistical_min_devices),
            ml_min_days: wide(d.ml_gate.min_days),
            ml_min_datapoints: wide(d.ml_gate.min_datapoints),
            ml_max_failed_builds: wide(d.ml_gate.max_failed_builds),
            ml_fast_start_days: wide(d.ml_gate.fast_start_days),
            ml_period_seconds: d.ml_period_secs,
            alert_sinks: Vec::new(),
            broker_profile: BrokerProfileConfig::default(),
        }
    }
}

const DAY: u64 = 24 * 3600;

/// AWS region names: a geography, one or more words, a number
/// (`us-east-1`, `us-gov-west-1`, `ap-southeast-2`).
fn valid_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    parts.len() >= 3
        && parts[..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts[parts.len() - 1].bytes().all(|b| b.is_ascii_digit())
        && !parts[parts.len() - 1].is_empty()
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_owned(),
            format: "text".to_owned(),
        }
    }
}

fn wide<T: TryInto<i64>>(v: T) -> i64 {
    v.try_into().unwrap_or(i64::MAX)
}

fn policy_name(p: QueueFullPolicy) -> &'static str {
    match p {
        QueueFullPolicy::DropNew => "drop_new",
        QueueFullPolicy::DropOldest => "drop_oldest",
    }
}

/// One thing wrong with a configuration, named by its dotted key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key (`limits.max_inflight`); empty when the problem has none,
    /// e.g. a TOML syntax error.
    pub key: String,
    pub message: String,
    /// 1-based line in the file, when the problem comes from one.
    pub line: Option<usize>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if !self.key.is_empty() {
            write!(f, "{}: ", self.key)?;
        }
        f.write_str(&self.message)
    }
}

#[derive(Debug)]
pub enum LoadError {
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Read { path, source } => {
                write!(f, "cannot read config file {}: {source}", path.display())
            }
            LoadError::Invalid { path, problems } => {
                write!(f, "invalid configuration in {}:", path.display())?;
                for p in problems {
                    write!(f, "\n  {p}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for LoadError {}

impl Config {
    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Config, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text).map_err(|problems| LoadError::Invalid {
            path: path.to_owned(),
            problems,
        })
    }

    /// Parses and validates TOML text, reporting every problem found.
    pub fn parse(text: &str) -> Result<Config, Vec<Problem>> {
        let mut root = match DeTable::parse(text) {
            Ok(root) => root,
            // After a syntax error the rest of the document means nothing.
            Err(e) => {
                return Err(vec![Problem {
                    key: String::new(),
                    message: e.message().to_owned(),
                    line: e.span().map(|s| line_of(text, s.start)),
                }])
            }
        };
        let mut problems = Vec::new();
        // serde stops at the first unknown key or mistyped value; drop the
        // offending entry and go again, so every such key is reported. Each
        // round removes one entry, so this ends.
        let config = loop {
            match Config::deserialize(toml::de::Deserializer::from(root.clone())) {
                Ok(config) => break config,
                Err(e) => {
                    let key = e
                        .span()
                        .and_then(|span| remove_entry_at(root.get_mut(), span.start, ""));
                    problems.push(Problem {
                        key: key.clone().unwrap_or_default(),
                        message: e.message().to_owned(),
                        line: e.span().map(|s| line_of(text, s.start)),
                    });
                    if key.is_none() {
                        return Err(problems);
                    }
                }
            }
        };
        for mut p in config.check() {
            p.line = key_offset(root.get_ref(), &p.key).map(|at| line_of(text, at));
            problems.push(p);
        }
        // Read top to bottom, like the file; problems with no line last.
        problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(problems)
        }
    }

    /// Every problem with this configuration, each as `key: message`.
    pub fn validate(&self) -> Vec<String> {
        self.check().iter().map(ToString::to_string).collect()
    }

    /// The broker settings this configuration describes, or every problem.
    #[cfg(test)]
    pub fn into_settings(self) -> Result<Settings, Vec<String>> {
        self.into_parts().map(|p| p.settings)
    }

    /// The broker settings and the admin API settings, or every problem.
    pub fn into_parts(self) -> Result<Parts, Vec<String>> {
        let problems = self.validate();
        if problems.is_empty() {
            Ok(self.build().0)
        } else {
            Err(problems)
        }
    }

    fn check(&self) -> Vec<Problem> {
        self.build().1
    }

    /// Validation and conversion are one pass, so nothing can be converted
    /// that was not checked. The settings are meaningless if any problem is
    /// returned.
    fn build(&self) -> (Parts, Vec<Problem>) {
        let mut c = Checker::default();

        if self.storage.data_dir.as_os_str().is_empty() {
            c.fail("storage.data_dir", "must not be empty");
        }

        let tcp = if self.listeners.tcp.is_empty() {
            None
        } else {
            match self.listeners.tcp.parse::<SocketAddr>() {
                Ok(addr) => Some(addr),
                Err(_) => {
                    c.fail(
                        "listeners.tcp",
                        format!(
                            "`{}` is not an IP address with a port, e.g. \"127.0.0.1:1883\" \
                             (host names are not resolved; \"\" disables the listener)",
                            self.listeners.tcp
                        ),
                    );
                    None
                }
            }
        };

        let tls_addr = if self.listeners.tls.is_empty() {
            None
        } else {
            match self.listeners.tls.parse::<SocketAddr>() {
                Ok(addr) => Some(addr),
                Err(_) => {
                    c.fail(
                        "listeners.tls",
                        format!(
                            "`{}` is not an IP address with a port, e.g. \"0.0.0.0:8883\" \
                             (\"\" disables the listener)",
                            self.listeners.tls
                        ),
                    );
                    None
                }
            }
        };
        let handshake_secs: u64 = c.int(
            "listeners.tls_handshake_timeout_secs",
            self.listeners.tls_handshake_timeout_secs,
            1..=600,
        );
        if self.listeners.certs_dir.as_os_str().is_empty() {
            c.fail("listeners.certs_dir", "must not be empty");
        }
        let mut crls = Vec::new();
        for (i, crl) in self.listeners.crl.iter().enumerate() {
            let id = crl.ca_id.to_ascii_lowercase();
            if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                c.fail(
                    &format!("listeners.crl[{i}].ca_id"),
                    "must be a CA certificate id (64 hex digits)",
                );
            }
            crls.push((id, crl.file.clone()));
        }
        let tls = tls_addr.map(|addr| TlsSettings {
            addr,
            cert_chain: self.listeners.certs_dir.join("server.pem"),
            key: self.listeners.certs_dir.join("server.key"),
            crls,
            handshake_timeout: Duration::from_secs(handshake_secs),
        });
        if let Err(e) = Policy::parse("anonymous", &self.listeners.anonymous_policy) {
            for problem in e.problems() {
                c.fail("listeners.anonymous_policy", problem.clone());
            }
        }

        let l = &self.limits;
        let u16_max = i64::from(u16::MAX);
        let limits = Limits {
            max_connections: c.int("limits.max_connections", l.max_connections, 1..=i64::MAX),
            max_packet_size: c.int(
                "limits.max_packet_size",
                l.max_packet_size,
                1..=MQTT_MAX_PACKET_SIZE,
            ),
            receive_maximum: c.int("limits.receive_maximum", l.receive_maximum, 1..=u16_max),
            max_keep_alive: c.int("limits.max_keep_alive", l.max_keep_alive, 0..=u16_max),
            topic_alias_maximum: c.int(
                "limits.topic_alias_maximum",
                l.topic_alias_maximum,
                0..=u16_max,
            ),
            max_inflight: c.int("limits.max_inflight", l.max_inflight, 1..=u16_max),
            max_queued_messages: c.int(
                "limits.max_queued_messages",
                l.max_queued_messages,
                1..=i64::MAX,
            ),
            max_queued_bytes: c.int("limits.max_queued_bytes", l.max_queued_bytes, 1..=i64::MAX),
            queue_full_policy: match l.queue_full_policy.as_str() {
                "drop_new" => QueueFullPolicy::DropNew,
                "drop_oldest" => QueueFullPolicy::DropOldest,
                other => {
                    c.fail(
                        "limits.queue_full_policy",
                        format!("`{other}` is not one of \"drop_new\", \"drop_oldest\""),
                    );
                    QueueFullPolicy::DropNew
                }
            },
            max_session_expiry: Duration::from_secs(c.int(
                "limits.max_session_expiry_secs",
                l.max_session_expiry_secs,
                1..=i64::from(u32::MAX),
            )),
            connect_timeout: Duration::from_secs(c.int(
                "limits.connect_timeout_secs",
                l.connect_timeout_secs,
                1..=3600,
            )),
            max_client_id_len: c.int(
                "limits.max_client_id_len",
                l.max_client_id_len,
                MQTT_MIN_CLIENT_ID_LEN..=u16_max,
            ),
            connection_rate_per_ip: c.int(
                "limits.connection_rate_per_ip",
                l.connection_rate_per_ip,
                0..=MAX_CONNECTION_RATE,
            ),
            connection_burst_per_ip: c.int(
                "limits.connection_burst_per_ip",
                l.connection_burst_per_ip,
                1..=MAX_CONNECTION_RATE,
            ),
            connection_rate: c.int(
                "limits.connection_rate",
                l.connection_rate,
                0..=MAX_CONNECTION_RATE,
            ),
            connection_burst: c.int(
                "limits.connection_burst",
                l.connection_burst,
                1..=MAX_CONNECTION_RATE,
            ),
            max_subscriptions_per_client: c.int(
                "limits.max_subscriptions_per_client",
                l.max_subscriptions_per_client,
                1..=i64::MAX,
            ),
            max_topic_len: c.int("limits.max_topic_len", l.max_topic_len, 1..=u16_max),
            max_topic_levels: c.int("limits.max_topic_levels", l.max_topic_levels, 1..=u16_max),
            max_retained_messages: c.int(
                "limits.max_retained_messages",
                l.max_retained_messages,
                0..=i64::MAX,
            ),
        };
        // Cross-field rules only when both sides are in range, so one bad
        // value is reported once.
        if (1..=u16_max).contains(&l.max_inflight)
            && l.max_queued_messages >= 1
            && l.max_queued_messages < l.max_inflight
        {
            c.fail(
                "limits.max_queued_messages",
                format!(
                    "{} is less than limits.max_inflight ({}); the queue includes the in-flight window",
                    l.max_queued_messages, l.max_inflight
                ),
            );
        }
        if (1..=MQTT_MAX_PACKET_SIZE).contains(&l.max_packet_size)
            && l.max_queued_bytes >= 1
            && l.max_queued_bytes < l.max_packet_size
        {
            c.fail(
                "limits.max_queued_bytes",
                format!(
                    "{} is less than limits.max_packet_size ({}); a largest-size message could never be queued",
                    l.max_queued_bytes, l.max_packet_size
                ),
            );
        }

        if let Err(e) = check_log_level(&self.log.level) {
            c.fail("log.level", e);
        }
        if !matches!(self.log.format.as_str(), "text" | "json") {
            c.fail(
                "log.format",
                format!("`{}` is not one of \"text\", \"json\"", self.log.format),
            );
        }

        if !valid_region(&self.aws.region) {
            c.fail(
                "aws.region",
                format!(
                    "`{}` is not a region name such as \"us-east-1\"",
                    self.aws.region
                ),
            );
        }
        if self.aws.account.len() != 12 || !self.aws.account.bytes().all(|b| b.is_ascii_digit()) {
            c.fail(
                "aws.account",
                format!("`{}` is not a 12-digit account id", self.aws.account),
            );
        }

        let admin = &self.admin;
        let listen = if admin.listen.is_empty() {
            None
        } else {
            match admin.listen.parse::<SocketAddr>() {
                Ok(addr) => Some(addr),
                Err(_) => {
                    c.fail(
                        "admin.listen",
                        format!(
                            "`{}` is not an IP address with a port, e.g. \"127.0.0.1:9080\" \
                             (\"\" disables the admin API)",
                            admin.listen
                        ),
                    );
                    None
                }
            }
        };
        let credentials_file = if admin.credentials_file.as_os_str().is_empty() {
            self.storage.data_dir.join("admin-credentials")
        } else {
            admin.credentials_file.clone()
        };
        for (key, path) in [
            ("admin.issuer_cert", &admin.issuer_cert),
            ("admin.issuer_key", &admin.issuer_key),
        ] {
            if path.as_os_str().is_empty() {
                c.fail(key, "must not be empty");
            }
        }

        let settings = Settings {
            data_dir: self.storage.data_dir.clone(),
            tcp,
            tls,
            anonymous_policies: vec![self.listeners.anonymous_policy.clone()],
            limits,
            scope: Scope::new(self.aws.region.clone(), self.aws.account.clone()),
        };
        let console = &self.console;
        if console.enabled && console.user.is_empty() {
            c.fail("console.user", "must not be empty");
        }
        let session_minutes: u64 = c.int(
            "console.session_minutes",
            console.session_minutes,
            1..=43_200,
        );
        let console = console.enabled.then(|| ConsoleSettings {
            user: console.user.clone(),
            password_file: if console.password_file.as_os_str().is_empty() {
                self.storage.data_dir.join("console-password")
            } else {
                console.password_file.clone()
            },
            session: Duration::from_secs(session_minutes * 60),
            cookie_secure: console.cookie_secure,
        });
        let admin = AdminSettings {
            listen,
            credentials_file,
            issuer_cert: admin.issuer_cert.clone(),
            issuer_key: admin.issuer_key.clone(),
            console,
        };
        let defender = self.defender.build(&mut c);
        let sys_secs: u64 = c.int(
            "monitoring.sys_interval",
            self.monitoring.sys_interval,
            0..=86_400,
        );
        let token = &self.monitoring.metrics_token;
        if token.chars().any(|ch| !ch.is_ascii_graphic()) {
            c.fail(
                "monitoring.metrics_token",
                "must be printable ASCII without spaces (it travels in an HTTP header)",
            );
        }
        let monitoring = MonitoringSettings {
            sys_interval: (sys_secs > 0).then(|| Duration::from_secs(sys_secs)),
            metrics_token: (!token.is_empty()).then(|| token.clone()),
        };
        let parts = Parts {
            settings,
            admin,
            defender,
            monitoring,
        };
        (parts, c.problems)
    }
}

/// The checked configuration, split by who uses it.
#[derive(Debug, Clone)]
pub struct Parts {
    pub settings: Settings,
    pub admin: AdminSettings,
    pub defender: DefenderSettings,
    pub monitoring: MonitoringSettings,
}

impl DefenderConfig {
    fn build(&self, c: &mut Checker) -> DefenderSettings {
        let secs = |c: &mut Checker, key: &str, v: i64, range: RangeInclusive<i64>| {
            Duration::from_secs(c.int(&format!("defender.{key}"), v, range))
        };
        let mut sinks = Vec::new();
        for (i, sink) in self.alert_sinks.iter().enumerate() {
            let key = |k: &str| format!("defender.alert_sinks[{i}].{k}");
            if sink.name.is_empty()
                || !sink
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                c.fail(
                    &key("name"),
                    "must be letters, digits, - and _ (the last part of the alert target ARN)",
                );
            } else if self.alert_sinks[..i].iter().any(|s| s.name == sink.name) {
                c.fail(&key("name"), format!("`{}` is declared twice", sink.name));
            }
            let kind = match sink.kind.as_str() {
                "webhook" => {
                    if !(sink.url.starts_with("http://") || sink.url.starts_with("https://")) {
                        c.fail(&key("url"), "a webhook needs an http:// or https:// URL");
                    }
                    if sink.secret.is_empty() {
                        c.fail(&key("secret"), "a webhook needs a secret to sign with");
                    }
                    Some(AlertSinkKind::Webhook {
                        url: sink.url.clone(),
                        secret: sink.secret.clone(),
                        attempts: c.int(&key("attempts"), sink.attempts, 1..=100),
                        timeout: Duration::from_secs(c.int(
                            &key("timeout_secs"),
                            sink.timeout_secs,
                            1..=300,
                        )),
                    })
                }
                "mqtt" => {
                    if !wardmq_broker::topic::valid_topic_name(&sink.topic) {
                        c.fail(
                            &key("topic"),
                            format!(
                                "`{}` is not a topic name (no wildcards, not empty)",
                                sink.topic
                            ),
                        );
                    }
                    Some(AlertSinkKind::Mqtt {
                        topic: sink.topic.clone(),
                    })
                }
                "log" => Some(AlertSinkKind::Log),
                other => {
                    c.fail(
                        &key("kind"),
                        format!("`{other}` is not webhook, mqtt or log"),
                    );
                    None
                }
            };
            let queue = c.int(&key("queue"), sink.queue, 1..=1_000_000);
            if let Some(kind) = kind {
                sinks.push(AlertSinkSettings {
                    name: sink.name.clone(),
                    kind,
                    queue,
                });
            }
        }
        DefenderSettings {
            enabled: self.enabled,
            datapoint_period: secs(c, "datapoint_seconds", self.datapoint_seconds, 1..=3600),
            report_min_interval: secs(
                c,
                "report_min_interval_secs",
                self.report_min_interval_secs,
                1..=86_400,
            ),
            metric_retention: Duration::from_secs(
                c.int::<u64>(
                    "defender.metric_retention_days",
                    self.metric_retention_days,
                    1..=365,
                ) * DAY,
            ),
            violation_retention: Duration::from_secs(
                c.int::<u64>(
                    "defender.violation_retention_days",
                    self.violation_retention_days,
                    1..=365,
                ) * DAY,
            ),
            invalidate_after: secs(
                c,
                "invalidate_after_secs",
                self.invalidate_after_secs,
                1..=30 * 86_400,
            ),
            statistical_min_devices: c.int(
                "defender.statistical_min_devices",
                self.statistical_min_devices,
                1..=1_000_000,
            ),
            broker_profile: self.broker_profile.build(c, &sinks),
            ml_gate: ModelGate {
                min_days: c.int("defender.ml_min_days", self.ml_min_days, 0..=365),
                min_datapoints: c.int(
                    "defender.ml_min_datapoints",
                    self.ml_min_datapoints,
                    0..=1_000_000_000,
                ),
                max_failed_builds: c.int(
                    "defender.ml_max_failed_builds",
                    self.ml_max_failed_builds,
                    0..=365,
                ),
                fast_start_days: c.int(
                    "defender.ml_fast_start_days",
                    self.ml_fast_start_days,
                    0..=365,
                ),
            },
            ml_period_secs: c.int(
                "defender.ml_period_seconds",
                self.ml_period_seconds,
                1..=86_400,
            ),
            alert_sinks: sinks,
        }
    }
}

#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn fail(&mut self, key: &str, message: impl Into<String>) {
        self.problems.push(Problem {
            key: key.to_owned(),
            message: message.into(),
            line: None,
        });
    }

    /// The value converted to the broker's type, or the type's default after
    /// recording why it is out of range.
    fn int<T: TryFrom<i64> + Default>(
        &mut self,
        key: &str,
        value: i64,
        range: RangeInclusive<i64>,
    ) -> T {
        let (min, max) = (*range.start(), *range.end());
        if !range.contains(&value) {
            let expected = if max == i64::MAX {
                format!("must be at least {min}")
            } else {
                format!("must be between {min} and {max}")
            };
            self.fail(key, format!("{value} is out of range: {expected}"));
            return T::default();
        }
        T::try_from(value).unwrap_or_else(|_| {
            self.fail(key, format!("{value} is too large for this platform"));
            T::default()
        })
    }
}

/// EnvFilter reads a bare word as a target name enabled at every level, so a
/// misspelt level (`"inof"`) would silently turn logging off; bare words must
/// be levels here, and targets take the `target=level` form.
fn check_log_level(directives: &str) -> Result<(), String> {
    if directives.trim().is_empty() {
        return Err("must not be empty, e.g. \"info\" or \"info,wardmq_broker=debug\"".to_owned());
    }
    for d in directives.split(',').map(str::trim) {
        if !d.is_empty()
            && !d.contains('=')
            && !d.contains('[')
            && d.parse::<LevelFilter>().is_err()
        {
            return Err(format!(
                "`{d}` is not a level (trace, debug, info, warn, error, off); \
                 to filter a target write target=level"
            ));
        }
    }
    EnvFilter::builder()
        .parse(directives)
        .map(drop)
        .map_err(|e| format!("`{directives}` is not a valid filter: {e}"))
}

/// Removes the entry whose key or (non-table) value covers byte `at`,
/// returning its dotted key.
fn remove_entry_at(table: &mut DeTable<'_>, at: usize, prefix: &str) -> Option<String> {
    let mut hit = None;
    for (k, v) in table.iter_mut() {
        let path = join_key(prefix, k.get_ref());
        let is_table = matches!(v.get_ref(), DeValue::Table(_));
        if k.span().contains(&at) || (!is_table && v.span().contains(&at)) {
            hit = Some((k.clone(), path));
            break;
        }
        if let DeValue::Table(t) = v.get_mut() {
            if let Some(found) = remove_entry_at(t, at, &path) {
                return Some(found);
            }
        }
    }
    let (key, path) = hit?;
    table.remove(&key);
    Some(path)
}

/// Byte offset of a dotted key in the document, if the document sets it.
fn key_offset(table: &DeTable<'_>, dotted: &str) -> Option<usize> {
    let (first, rest) = match dotted.split_once('.') {
        Some((first, rest)) => (first, Some(rest)),
        None => (dotted, None),
    };
    let (k, v) = table.iter().find(|(k, _)| k.get_ref() == first)?;
    match (rest, v.get_ref()) {
        (None, _) => Some(k.span().start),
        (Some(rest), DeValue::Table(t)) => key_offset(t, rest),
        (Some(_), _) => None,
    }
}

fn join_key(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    let before = text.get(..offset).unwrap_or(text);
    before.matches('\n').count() + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<Problem> {
        match Config::parse(text) {
            Ok(c) => panic!("expected problems, parsed {c:?}"),
            Err(p) => p,
        }
    }

    fn keys(text: &str) -> Vec<String> {
        problems(text).into_iter().map(|p| p.key).collect()
    }

    #[test]
    fn defender_section_is_checked_and_every_sink_problem_listed() {
        let text = "[defender]\ndatapoint_seconds = 0\n\
                    [defender.broker_profile]\nalert_target_arn = \"arn:aws:sns:r:1:nope\"\n\
                    [[defender.alert_sinks]]\nname = \"a b\"\nkind = \"webhook\"\n\
                    [[defender.alert_sinks]]\nname = \"t\"\nkind = \"mqtt\"\ntopic = \"a/#\"\n\
                    [[defender.alert_sinks]]\nname = \"t\"\nkind = \"pager\"\n";
        let keys = keys(text);
        for k in [
            "defender.datapoint_seconds",
            "defender.broker_profile.alert_target_arn",
            "defender.alert_sinks[0].name",
            "defender.alert_sinks[0].url",
            "defender.alert_sinks[0].secret",
            "defender.alert_sinks[1].topic",
            "defender.alert_sinks[2].name",
            "defender.alert_sinks[2].kind",
        ] {
            assert!(keys.iter().any(|x| x == k), "{k} missing from {keys:?}");
        }
        let ok = "[defender]\ndatapoint_seconds = 1\n[[defender.alert_sinks]]\n\
                  name = \"hook\"\nkind = \"webhook\"\nurl = \"http://127.0.0.1:1/x\"\nsecret = \"s\"\n";
        let d = Config::parse(ok)
            .expect("valid")
            .into_parts()
            .expect("valid")
            .defender;
        assert_eq!(d.datapoint_period, Duration::from_secs(1));
        assert!((d.time_scale() - 1.0 / 300.0).abs() < 1e-12);
        assert_eq!(d.alert_sinks[0].queue, 10_000);
        assert!(matches!(
            d.alert_sinks[0].kind,
            AlertSinkKind::Webhook { attempts: 5, .. }
        ));
    }

    #[test]
    fn annotated_file_is_the_defaults() {
        let text = include_str!("../config/wardmq.toml");
        let config = Config::parse(text).unwrap_or_else(|p| panic!("config/wardmq.toml: {p:?}"));
        assert_eq!(config, Config::default());
        assert!(config.validate().is_empty());
    }

    #[test]
    fn defaults_match_the_broker_defaults() {
        let mut settings = Config::default()
            .into_settings()
            .unwrap_or_else(|p| panic!("defaults invalid: {p:?}"));
        // The one deliberate difference: the binary serves devices over
        // mutual TLS by default; the broker library has no certificates.
        let tls = settings.tls.take().expect("TLS on by default");
        assert_eq!(tls.addr.to_string(), "0.0.0.0:8883");
        assert_eq!(tls.cert_chain, PathBuf::from("certs/server.pem"));
        assert_eq!(
            format!("{settings:?}"),
            format!("{:?}", Settings::default())
        );
    }

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(Config::parse("").ok(), Some(Config::default()));
    }

    #[test]
    fn tls_crls_and_the_anonymous_policy_are_checked() {
        let problems = Config::parse(
            "[listeners]\ntls = \"127.0.0.1:0\"\nanonymous_policy = '{\"Version\":\"2012-10-17\"}'\n\
             [[listeners.crl]]\nca_id = \"nope\"\nfile = \"x.crl\"\n",
        )
        .expect_err("both problems reported");
        let text = format!("{problems:?}");
        assert!(text.contains("listeners.anonymous_policy"), "{text}");
        assert!(text.contains("listeners.crl[0].ca_id"), "{text}");
        let id = "ab".repeat(32);
        let config = Config::parse(&format!(
            "[listeners]\ntls = \"127.0.0.1:0\"\n[[listeners.crl]]\nca_id = \"{id}\"\nfile = \"x.crl\"\n"
        ))
        .expect("parses");
        let tls = config.into_settings().expect("valid").tls.expect("tls");
        assert_eq!(tls.crls, vec![(id, PathBuf::from("x.crl"))]);
    }

    #[test]
    fn empty_tcp_disables_the_listener_and_port_zero_is_allowed() {
        let off = Config::parse("[listeners]\ntcp = \"\"\n").expect("valid");
        assert_eq!(off.into_settings().expect("valid").tcp, None);
        let any = Config::parse("[listeners]\ntcp = \"[::1]:0\"\n").expect("valid");
        assert_eq!(
            any.into_settings().expect("valid").tcp,
            Some("[::1]:0".parse().expect("addr"))
        );
    }

    #[test]
    fn durations_and_policy_convert() {
        let text = "[limits]\nmax_session_expiry_secs = 60\nconnect_timeout_secs = 3\n\
                    queue_full_policy = \"drop_oldest\"\n";
        let s = Config::parse(text)
            .expect("valid")
            .into_settings()
            .expect("valid");
        assert_eq!(s.limits.max_session_expiry, Duration::from_secs(60));
        assert_eq!(s.limits.connect_timeout, Duration::from_secs(3));
        assert_eq!(s.limits.queue_full_policy, QueueFullPolicy::DropOldest);
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let text = "\
[storage]
data_dir = \"\"
[listeners]
tcp = \"localhost:1883\"
[limits]
max_conections = 5
max_inflight = 0
max_packet_size = 268435456
receive_maximum = \"lots\"
max_client_id_len = 22
queue_full_policy = \"drop_all\"
[log]
level = \"inof\"
format = \"yaml\"
colour = true
";
        let got = problems(text);
        let summary: Vec<(String, Option<usize>)> =
            got.iter().map(|p| (p.key.clone(), p.line)).collect();
        for expected in [
            ("limits.max_conections", 6),
            ("limits.receive_maximum", 9),
            ("log.colour", 15),
            ("storage.data_dir", 2),
            ("listeners.tcp", 4),
            ("limits.max_inflight", 7),
            ("limits.max_packet_size", 8),
            ("limits.max_client_id_len", 10),
            ("limits.queue_full_policy", 11),
            ("log.level", 13),
            ("log.format", 14),
        ] {
            assert!(
                summary.contains(&(expected.0.to_owned(), Some(expected.1))),
                "missing {expected:?} in {got:#?}"
            );
        }
        assert_eq!(got.len(), 11, "{got:#?}");
        let mut lines: Vec<usize> = got.iter().filter_map(|p| p.line).collect();
        lines.sort_unstable();
        assert_eq!(lines, got.iter().filter_map(|p| p.line).collect::<Vec<_>>());
        let unknown = got
            .iter()
            .find(|p| p.key == "limits.max_conections")
            .expect("unknown key reported");
        assert!(
            unknown.message.contains("unknown field `max_conections`"),
            "{unknown}"
        );
    }

    #[test]
    fn monitoring_section() {
        let m = Config::default()
            .into_parts()
            .expect("defaults valid")
            .monitoring;
        assert_eq!(m.sys_interval, Some(Duration::from_secs(10)));
        assert_eq!(m.metrics_token, None);
        let m = Config::parse("[monitoring]\nsys_interval = 0\nmetrics_token = \"t0k\"\n")
            .expect("valid")
            .into_parts()
            .expect("valid")
            .monitoring;
        assert_eq!(m.sys_interval, None);
        assert_eq!(m.metrics_token.as_deref(), Some("t0k"));
        let keys = keys("[monitoring]\nsys_interval = -1\nmetrics_token = \"a b\"\n");
        assert_eq!(
            keys,
            ["monitoring.sys_interval", "monitoring.metrics_token"]
        );
    }

    #[test]
    fn aws_and_admin_sections() {
        let Parts {
            settings: s,
            admin: a,
            ..
        } = Config::default().into_parts().expect("defaults valid");
        assert_eq!(s.scope, Scope::new("us-east-1", "123456789012"));
        assert_eq!(a.listen, Some("127.0.0.1:9080".parse().expect("addr")));
        assert_eq!(a.credentials_file, PathBuf::from("data/admin-credentials"));
        let text = "[aws]\nregion = \"eu-west-3\"\naccount = \"000000000042\"\n\
                    [admin]\nlisten = \"\"\ncredentials_file = \"/k\"\n";
        let Parts {
            settings: s,
            admin: a,
            ..
        } = Config::parse(text)
            .expect("valid")
            .into_parts()
            .expect("valid");
        assert_eq!(s.scope, Scope::new("eu-west-3", "000000000042"));
        assert_eq!(a.listen, None);
        assert_eq!(a.credentials_file, PathBuf::from("/k"));
        for region in ["us-gov-west-1", "ap-southeast-2"] {
            assert!(valid_region(region), "{region}");
        }
        for region in ["", "us", "us-east", "US-EAST-1", "us--1", "us-east-x"] {
            assert!(!valid_region(region), "{region}");
        }
        let bad = "[aws]\nregion = \"mars\"\naccount = \"12345\"\n\
                   [admin]\nlisten = \"localhost:80\"\nissuer_key = \"\"\n";
        assert_eq!(
            keys(bad),
            vec![
                "aws.region",
                "aws.account",
                "admin.listen",
                "admin.issuer_key"
            ]
        );
    }

    #[test]
    fn unknown_section_is_reported() {
        assert_eq!(keys("[tls]\ncert = \"x\"\n"), vec!["tls".to_owned()]);
    }

    #[test]
    fn syntax_error_names_its_line() {
        let got = problems("[limits]\nmax_inflight = = 3\n");
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].line, Some(2));
    }

    #[test]
    fn queue_must_hold_the_inflight_window_and_a_largest_packet() {
        let text = "[limits]\nmax_inflight = 100\nmax_queued_messages = 99\n\
                    max_packet_size = 2000\nmax_queued_bytes = 1999\n";
        assert_eq!(
            keys(text),
            vec!["limits.max_queued_messages", "limits.max_queued_bytes"]
        );
        // An out-of-range side is reported once, not again by the cross rule.
        assert_eq!(
            keys("[limits]\nmax_inflight = 0\nmax_queued_messages = 0\n"),
            vec!["limits.max_inflight", "limits.max_queued_messages"]
        );
    }

    #[test]
    fn limits_ranges() {
        for (key, bad) in [
            ("max_connections", "0"),
            ("max_packet_size", "0"),
            ("receive_maximum", "0"),
            ("receive_maximum", "65536"),
            ("max_keep_alive", "-1"),
            ("max_keep_alive", "65536"),
            ("topic_alias_maximum", "65536"),
            ("max_inflight", "65536"),
            ("max_queued_bytes", "0"),
            ("max_session_expiry_secs", "0"),
            ("max_session_expiry_secs", "4294967296"),
            ("connect_timeout_secs", "0"),
            ("max_client_id_len", "65536"),
        ] {
            let text = format!("[limits]\n{key} = {bad}\n");
            assert_eq!(keys(&text), vec![format!("limits.{key}")], "{key} = {bad}");
        }
        for (key, ok) in [
            ("max_keep_alive", "0"),
            ("topic_alias_maximum", "0"),
            ("max_packet_size", "268435455\nmax_queued_bytes = 268435455"),
            ("max_client_id_len", "23"),
        ] {
            let text = format!("[limits]\n{key} = {ok}\n");
            assert!(Config::parse(&text).is_ok(), "{key} = {ok}");
        }
    }

    #[test]
    fn log_levels() {
        for ok in [
            "info",
            "WARN",
            "off",
            "info,wardmq_broker=debug",
            "wardmq=trace",
        ] {
            assert!(check_log_level(ok).is_ok(), "{ok}");
        }
        for bad in ["", "inof", "wardmq=loud", "info,verbose"] {
            assert!(check_log_level(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn validate_names_each_key() {
        let mut c = Config::default();
        c.limits.max_inflight = 0;
        c.log.format = "xml".to_owned();
        let v = c.validate();
        assert_eq!(v.len(), 2, "{v:?}");
        assert!(v[0].starts_with("limits.max_inflight: "), "{v:?}");
        assert!(v[1].starts_with("log.format: "), "{v:?}");
    }
}
