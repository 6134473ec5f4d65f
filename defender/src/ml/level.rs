//! Confidence levels. A behaviour at confidence C alarms when the level a
//! datapoint reaches is at least C: HIGH is the least sensitive.

use serde::{Deserialize, Serialize};

use crate::detect::model::ConfidenceLevel;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Low,
    Medium,
    High,
}

impl Level {
    pub const ALL: [Level; 3] = [Level::Low, Level::Medium, Level::High];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Low => "LOW",
            Level::Medium => "MEDIUM",
            Level::High => "HIGH",
        }
    }

    pub fn index(self) -> usize {
        match self {
            Level::Low => 0,
            Level::Medium => 1,
            Level::High => 2,
        }
    }

    /// The level a score reaches, given the thresholds for LOW, MEDIUM, HIGH.
    pub fn of_score(score: f64, thresholds: [f64; 3]) -> Option<Level> {
        Level::ALL
            .iter()
            .rev()
            .find(|l| score >= thresholds[l.index()])
            .copied()
    }
}

impl From<ConfidenceLevel> for Level {
    fn from(c: ConfidenceLevel) -> Self {
        match c {
            ConfidenceLevel::Low => Level::Low,
            ConfidenceLevel::Medium => Level::Medium,
            ConfidenceLevel::High => Level::High,
        }
    }
}

impl From<Level> for ConfidenceLevel {
    fn from(l: Level) -> Self {
        match l {
            Level::Low => ConfidenceLevel::Low,
            Level::Medium => ConfidenceLevel::Medium,
            Level::High => ConfidenceLevel::High,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_to_level() {
        let t = [4.0, 6.0, 8.0];
        assert_eq!(Level::of_score(3.9, t), None);
        assert_eq!(Level::of_score(4.0, t), Some(Level::Low));
        assert_eq!(Level::of_score(7.0, t), Some(Level::Medium));
        assert_eq!(Level::of_score(80.0, t), Some(Level::High));
        assert!(Level::High > Level::Low);
    }
}
