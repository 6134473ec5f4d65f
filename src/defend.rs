//! Starting the defender next to the broker: its store, its alert routing
//! and, once the broker runs, the broker's side of device reports.

use std::path::Path;
use std::sync::Arc;

use tracing::info;
use wardmq_broker::codec::QoS;
use wardmq_broker::publisher::Publisher;
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

/// Opens `defender.redb` in `data_dir` and starts the defender, or `None`
/// when it is disabled.
pub fn start(
    settings: DefenderSettings,
    data_dir: &Path,
    registry: &Registry,
    publisher: Publisher,
) -> Result<Option<Defender>, String> {
    if !settings.enabled {
        info!("defender disabled");
        return Ok(None);
    }
    let db =
        DefenderDb::open(data_dir).map_err(|e| format!("cannot open the defender store: {e}"))?;
    let router = AlertRouter::new(
        &settings.alert_sinks,
        Arc::new(move |topic: &str, body: Vec<u8>| {
            if let Err(e) = publisher.publish(topic, body, QoS::AtLeastOnce, false) {
                tracing::warn!(topic, error = ?e, "MQTT alert not published");
            }
        }),
    )
    .map_err(|e| format!("invalid alert sink: {e}"))?;
    let alerts = Arc::new(Alerts(router));
    let defender = Defender::start(settings, db, Some(registry.clone()), alerts)
        .map_err(|e| format!("cannot start the defender: {e}"))?;
    Ok(Some(defender))
}
