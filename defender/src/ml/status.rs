//! The model lifecycle (spec §8): PENDING_BUILD until the trailing window
//! holds enough days and datapoints, then ACTIVE, refreshed daily; a model
//! that keeps failing to build for 30 daily attempts is EXPIRED.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ModelStatus {
    PendingBuild,
    Active,
    Expired,
}

impl ModelStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelStatus::PendingBuild => "PENDING_BUILD",
            ModelStatus::Active => "ACTIVE",
            ModelStatus::Expired => "EXPIRED",
        }
    }
}

/// When a model may be used. AWS parity by default.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelGate {
    /// Days of data the trailing window must span (AWS: 14).
    pub min_days: u32,
    /// Datapoints the trailing window must hold (AWS: 25,000).
    pub min_datapoints: u64,
    /// Daily build attempts after which a model that never met the minimum
    /// is EXPIRED (AWS: 30).
    pub max_failed_builds: u32,
    /// Fast start: after this many days of data a model still pending
    /// already judges, HIGH only. 0 = off (AWS parity).
    pub fast_start_days: u32,
}

impl Default for ModelGate {
    fn default() -> Self {
        Self {
            min_days: 14,
            min_datapoints: 25_000,
            max_failed_builds: 30,
            fast_start_days: 0,
        }
    }
}

impl ModelGate {
    /// `datapointsCollectionPercentage`: the share of the datapoint minimum
    /// the trailing window holds, capped at 100.
    pub fn collection_percentage(&self, datapoints: u64) -> f64 {
        if self.min_datapoints == 0 {
            return 100.0;
        }
        // Precision loss is irrelevant for a percentage.
        #[allow(clippy::cast_precision_loss)]
        let pct = datapoints as f64 * 100.0 / self.min_datapoints as f64;
        pct.min(100.0)
    }

    /// Whether a window spanning `days` days with `datapoints` datapoints
    /// may build a model.
    pub fn ready(&self, days: u32, datapoints: u64) -> bool {
        days >= self.min_days && datapoints >= self.min_datapoints
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_minimum() {
        let g = ModelGate::default();
        // Spec case 26: 5 devices × 288 × 14 = 20,160 < 25,000; 7 → 28,224.
        assert!(!g.ready(14, 5 * 288 * 14));
        assert!(g.ready(14, 7 * 288 * 14));
        assert!(!g.ready(13, 7 * 288 * 14));
        assert!((g.collection_percentage(12_500) - 50.0).abs() < 1e-9);
        assert!((g.collection_percentage(99_999) - 100.0).abs() < 1e-9);
    }
}
