//! Starting the defender next to the broker: its store, its alert routing,
//! the audit and, once the broker runs, the broker's side of device reports.

use std::sync::Arc;
use std::time::Duration;

use std::path::PathBuf;
use tracing::info;

use wardmq_broker::codec::QoS;
use wardmq_broker::observer::Observer;
use wardmq_broker::publisher::Publisher;
use wardmq_broker::registry::Registry;
use wardmq_defender::alerts::{sink_name, sns_message, AlertRouter, SendOutcome};
use wardmq_defender::audit::{Audit, AuditSettings, Notify};
use wardmq_defender::catalog::Catalog;
use wardmq_defender::detect::model::ViolationEvent;
use wardmq_defender::engine::{AlertSender, Defender, DetectConfig};
use wardmq_defender::mitigation::{Mitigation, SnsPublish};
use wardmq_defender::settings::DefenderSettings;
use wardmq_defender::store::DefenderDb;

/// Routes violation events to the sink their profile's alert target
/// names, as SNS-shaped JSON.
struct Alerts(Arc<AlertRouter>);

impl AlertSender for Alerts {
    fn send(&self, target_arn: &str, event: &ViolationEvent) {
        match sink_name(target_arn) {
            Some(sink) => {
                self.0.send(sink, sns_message(event).into());
            }
            None => tracing::warn!(target_arn, "alert target is not an SNS ARN; alert dropped"),
        }
    }
}

/// The defender, its audit and its mitigation, running.
#[derive(Clone)]
pub struct Defend {
    pub defender: Defender,
    pub audit: Audit,
    /// Where alerts go; its per-sink counts are exported as metrics.
    pub alerts: Arc<AlertRouter>,
    pub mitigation: Mitigation,
}

impl Defend {
    /// The broker's observer: the defender's counters and the audit's
    /// connection log.
    pub fn observer(&self) -> Arc<dyn Observer> {
        Arc::new(wardmq_defender::audit::Both::new(
            self.defender.observer(),
            self.audit.connection_log(),
        ))
    }

    /// Stops both workers (blocking joins: call off the runtime).
    pub fn shutdown(&self) {
        self.mitigation.shutdown();
        self.audit.shutdown();
        self.defender.shutdown();
    }
}

/// Starts the defender on `db`, evaluating what `catalog` holds, and the
/// audit (which reads `crls`, the device listener's CRL files), or `None`
/// when the defender is disabled.
pub fn start(
    settings: DefenderSettings,
    db: DefenderDb,
    catalog: &Catalog,
    registry: &Registry,
    publisher: Publisher,
    crls: Vec<(String, PathBuf)>,
) -> Result<Option<Defend>, String> {
    if !settings.enabled {
        info!("defender disabled");
        return Ok(None);
    }
    let router = Arc::new(
        AlertRouter::new(
            &settings.alert_sinks,
            Arc::new(move |topic: &str, body: Vec<u8>| {
                if let Err(e) = publisher.publish(topic, body, QoS::AtLeastOnce, false) {
                    tracing::warn!(topic, error = ?e, "MQTT alert not published");
                }
            }),
        )
        .map_err(|e| format!("invalid alert sink: {e}"))?,
    );
    let audit_settings = AuditSettings {
        crls,
        alert_sinks: Some(
            settings
                .alert_sinks
                .iter()
                .map(|s| s.name.clone())
                .collect(),
        ),
        ..AuditSettings::default()
    };
    let notify_router = router.clone();
    // Audit notifications go to the sink the SNS target ARN names, like
    // violation alerts.
    let notify: Notify =
        Arc::new(
            move |target_arn: &str, body: Vec<u8>| match sink_name(target_arn) {
                Some(sink) => {
                    notify_router.send(sink, body.into());
                }
                None => {
                    tracing::warn!(
                        target_arn,
                        "audit notification target is not an SNS ARN; dropped"
                    )
                }
            },
        );
    let audit = Audit::open(&db, registry.clone(), audit_settings, Some(notify))
        .map_err(|e| format!("cannot start the audit: {e}"))?;
    let sinks: Vec<String> = settings
        .alert_sinks
        .iter()
        .map(|s| s.name.clone())
        .collect();
    let sns_router = router.clone();
    // PUBLISH_FINDING_TO_SNS goes to the sink its topic ARN names.
    let sns: SnsPublish = Arc::new(move |topic_arn: &str, body: Vec<u8>| {
        let sink = sink_name(topic_arn).ok_or_else(|| format!("{topic_arn} is not an SNS ARN"))?;
        match sns_router.send(sink, body.into()) {
            SendOutcome::Queued => Ok(()),
            SendOutcome::Dropped => Err(format!("alert sink {sink} is full; message dropped")),
            SendOutcome::UnknownSink => Err(format!("no alert sink named {sink}")),
        }
    });
    let mitigation = Mitigation::open(&db, registry.clone(), Some(audit.clone()), sns, Some(sinks))
        .map_err(|e| format!("cannot start the mitigation: {e}"))?;
    let alerts = Arc::new(Alerts(router.clone()));
    let defender = Defender::start(settings, db, Some(registry.clone()), alerts)
        .map_err(|e| format!("cannot start the defender: {e}"))?;
    mitigation.attach_defender(&defender);
    follow(defender.clone(), catalog.clone());
    Ok(Some(Defend {
        defender,
        audit,
        alerts: router,
        mitigation,
    }))
}

/// How often the catalog is checked for changes: an API write reaches
/// evaluation within this time.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(100);

/// Hands every new catalog generation to the defender. Comparing the
/// generation is one atomic load, so polling costs nothing measurable.
fn follow(defender: Defender, catalog: Catalog) {
    let mut seen = None;
    let mut apply = move || {
        let snapshot = catalog.snapshot();
        if seen != Some(snapshot.generation) {
            seen = Some(snapshot.generation);
            defender.set_config(&DetectConfig::from_snapshot(&snapshot));
        }
    };
    apply();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(FOLLOW_INTERVAL);
        loop {
            tick.tick().await;
            apply();
        }
    });
}
