//! The defender's settings, checked by the binary's config loader (the
//! `[defender]` section of `config/wardmq.toml`).

use std::time::Duration;

/// AWS's evaluation period for cloud-side metrics: five minutes.
pub const AWS_PERIOD: Duration = Duration::from_secs(300);

#[derive(Clone, Debug, PartialEq)]
pub struct DefenderSettings {
    /// Off: the broker counts nothing and answers no metrics report.
    pub enabled: bool,
    /// Length of one datapoint period. 300 s is AWS's; shorter periods
    /// compress the defender's whole timeline (see [`Self::time_scale`]).
    pub datapoint_period: Duration,
    /// Shortest interval between two accepted reports of one thing.
    pub report_min_interval: Duration,
    /// How long metric datapoints are kept for ListMetricValues.
    pub metric_retention: Duration,
    /// How long violation events are kept for ListViolationEvents.
    pub violation_retention: Duration,
    /// An alarm without data for this long is invalidated.
    pub invalidate_after: Duration,
    /// Devices a statistical threshold needs before it is computed.
    pub statistical_min_devices: usize,
    /// Where `alertTargets.SNS.alertTargetArn` can point.
    pub alert_sinks: Vec<AlertSinkSettings>,
    pub broker_profile: BrokerProfileSettings,
    /// When ML Detect models may be built and used.
    pub ml_gate: crate::ml::ModelGate,
    /// Data-clock seconds one datapoint period stands for: 300 (AWS), so a
    /// model's day is 288 periods whatever the real period. Larger values
    /// shorten the model's day (tests, demos).
    pub ml_period_secs: i64,
}

impl Default for DefenderSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            datapoint_period: AWS_PERIOD,
            report_min_interval: Duration::from_secs(300),
            metric_retention: crate::store::DEFAULT_METRIC_RETENTION,
            violation_retention: crate::store::DEFAULT_EVENT_RETENTION,
            invalidate_after: Duration::from_secs(2 * 24 * 3600),
            statistical_min_devices: 1,
            alert_sinks: Vec::new(),
            broker_profile: BrokerProfileSettings::default(),
            ml_gate: crate::ml::ModelGate::default(),
            ml_period_secs: 300,
        }
    }
}

/// The broker-level profile (our extension): what one source address, and
/// the whole broker, may do in one period before it is a violation, so
/// floods with no thing behind them raise alarms. `None` turns a rule off.
#[derive(Clone, Debug, PartialEq)]
pub struct BrokerProfileSettings {
    pub per_ip: BrokerLimits,
    pub broker: BrokerLimits,
    /// Messages the broker may drop in one period (all reasons: a slow
    /// subscriber's full queue, expiry, size, receive denied); broker-wide
    /// only, since a drop has no source address to blame.
    pub broker_messages_dropped: Option<u64>,
    /// The alert target ARN its events go to, if any.
    pub alert_target_arn: Option<String>,
}

/// Most events of each kind in one period that are still normal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BrokerLimits {
    pub connection_attempts: Option<u64>,
    pub tls_failures: Option<u64>,
    pub connect_failures: Option<u64>,
    pub authorization_failures: Option<u64>,
}

impl Default for BrokerProfileSettings {
    fn default() -> Self {
        // Per address: a device reconnecting every few seconds for a whole
        // period is still normal; a few dozen bad handshakes or refused
        // CONNECTs is somebody guessing. Broker-wide: only failures, since
        // healthy fleets of any size connect a lot.
        Self {
            per_ip: BrokerLimits {
                connection_attempts: Some(1000),
                tls_failures: Some(50),
                connect_failures: Some(50),
                authorization_failures: Some(500),
            },
            broker: BrokerLimits {
                connection_attempts: None,
                tls_failures: Some(1000),
                connect_failures: Some(1000),
                authorization_failures: None,
            },
            broker_messages_dropped: None,
            alert_target_arn: None,
        }
    }
}

impl DefenderSettings {
    /// How many real seconds one AWS second lasts: 1 at the default period,
    /// 1/300 with a 1 s period. A behaviour's `durationSeconds` spans
    /// `durationSeconds / 300` periods, and an `aws:disconnect-duration`
    /// minute lasts `60 × time_scale` seconds, so rules written for AWS
    /// mean the same at any period.
    pub fn time_scale(&self) -> f64 {
        self.datapoint_period.as_secs_f64() / AWS_PERIOD.as_secs_f64()
    }
}

/// One alert sink. A profile names it by the last part of its alert
/// target ARN: `arn:aws:sns:REGION:ACCOUNT:NAME`.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertSinkSettings {
    pub name: String,
    pub kind: AlertSinkKind,
    /// Alerts waiting to be delivered; beyond it new alerts are dropped
    /// (and counted).
    pub queue: usize,
}

#[derive(Clone, Debug, PartialEq)]
pub enum AlertSinkKind {
    /// POST of the SNS-shaped JSON, signed with HMAC-SHA256 of `secret`.
    Webhook {
        url: String,
        secret: String,
        /// Delivery attempts per alert, the first included.
        attempts: u32,
        timeout: Duration,
    },
    /// A QoS 1 publish on the broker itself.
    Mqtt { topic: String },
    /// A log line at WARN.
    Log,
}
