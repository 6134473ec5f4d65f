//! Starting the defender next to the broker: its store, its alert routing
//! and, once the broker runs, the broker's side of device reports.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use tracing::info;
use wardmq_broker::registry::Registry;
use wardmq_defender::alerts::{sink_name, sns_message, AlertRouter};
use wardmq_defender::detect::model::ViolationEvent;
use wardmq_defender::engine::{AlertSender, Defender};
use wardmq_defender::settings::DefenderSettings;
use wardmq_defender::store::DefenderDb;

/// Routes violation events to the sink their profile's alert target
/// names, as SNS-shaped JSON.
struct Alerts(AlertRouter);

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

/// The broker's publish function, set once the broker runs (MQTT alert
/// sinks need it; the defender starts first because the broker needs its
/// observer).
pub type LatePublish = Arc<OnceLock<Box<dyn Fn(&str, Vec<u8>) + Send + Sync>>>;

/// Opens `defender.redb` in `data_dir` and starts the defender, or `None`
/// when it is disabled.
pub fn start(
    settings: DefenderSettings,
    data_dir: &Path,
    registry: &Registry,
    publish: LatePublish,
) -> Result<Option<Defender>, String> {
    if !settings.enabled {
        info!("defender disabled");
        return Ok(None);
    }
    let db =
        DefenderDb::open(data_dir).map_err(|e| format!("cannot open the defender store: {e}"))?;
    let router = AlertRouter::new(
        &settings.alert_sinks,
        Arc::new(move |topic: &str, body: Vec<u8>| match publish.get() {
            Some(p) => p(topic, body),
            None => tracing::warn!(topic, "broker not running yet; MQTT alert dropped"),
        }),
    )
    .map_err(|e| format!("invalid alert sink: {e}"))?;
    let alerts = Arc::new(Alerts(router));
    let defender = Defender::start(settings, db, Some(registry.clone()), alerts)
        .map_err(|e| format!("cannot start the defender: {e}"))?;
    Ok(Some(defender))
}
