//! Starting the defender next to the broker: its store, its alert routing
//! and, once the broker runs, the broker's side of device reports.

use std::path::Path;
use std::sync::Arc;

use tracing::info;
use wardmq_broker::registry::Registry;
use wardmq_defender::detect::model::ViolationEvent;
use wardmq_defender::engine::{AlertSender, Defender};
use wardmq_defender::settings::DefenderSettings;
use wardmq_defender::store::DefenderDb;

/// Until alert sinks are configured: every event that would be sent is
/// logged, so nothing is silently lost.
struct LogAlerts;

impl AlertSender for LogAlerts {
    fn send(&self, target_arn: &str, event: &ViolationEvent) {
        tracing::warn!(
            target_arn,
            thing = %event.thing_name,
            profile = %event.security_profile_name,
            behavior = %event.behavior.name,
            event = ?event.violation_event_type,
            "alert"
        );
    }
}

/// Opens `defender.redb` in `data_dir` and starts the defender, or `None`
/// when it is disabled.
pub fn start(
    settings: DefenderSettings,
    data_dir: &Path,
    registry: &Registry,
) -> Result<Option<Defender>, String> {
    if !settings.enabled {
        info!("defender disabled");
        return Ok(None);
    }
    let db =
        DefenderDb::open(data_dir).map_err(|e| format!("cannot open the defender store: {e}"))?;
    let defender = Defender::start(settings, db, Some(registry.clone()), Arc::new(LogAlerts))
        .map_err(|e| format!("cannot start the defender: {e}"))?;
    Ok(Some(defender))
}
