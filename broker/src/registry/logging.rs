//! Logging options v2 and per-target log levels (SetV2LoggingOptions,
//! SetV2LoggingLevel, ListV2LoggingLevels, DeleteV2LoggingLevel). The
//! broker's logger reads these to pick a level per connection.
//!
//! AWS rules applied: the levels are DEBUG|INFO|ERROR|WARN|DISABLED; a
//! target is one of DEFAULT|THING_GROUP|CLIENT_ID|SOURCE_IP|PRINCIPAL_ID
//! and needs a name unless DEFAULT; a THING_GROUP target must exist
//! (`InvalidRequest`: SetV2LoggingLevel has no ResourceNotFound); at most
//! 1000 targets (`LimitExceeded`, the AWS quota). Deleting a level that is
//! not set succeeds. Default options: level ERROR, logs enabled, no role
//! (the options AWS reports for a fresh account are unset; ERROR is what
//! its console suggests).

use serde::{Deserialize, Serialize};

use super::state::Op;
use super::{names, Change, Page, PageRequest, Registry, RegistryError, Result};

/// Maximum number of per-target log levels.
pub const MAX_LOG_TARGETS: usize = 1000;

/// AWS's `LogLevel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LogLevel {
    Debug,
    Info,
    Error,
    Warn,
    Disabled,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "DEBUG",
            Self::Info => "INFO",
            Self::Error => "ERROR",
            Self::Warn => "WARN",
            Self::Disabled => "DISABLED",
        }
    }
}

impl std::str::FromStr for LogLevel {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self> {
        [
            Self::Debug,
            Self::Info,
            Self::Error,
            Self::Warn,
            Self::Disabled,
        ]
        .into_iter()
        .find(|l| l.as_str() == s)
        .ok_or_else(|| RegistryError::invalid(format!("unknown log level {s:?}")))
    }
}

/// AWS's `LogTargetType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LogTargetType {
    Default,
    ThingGroup,
    ClientId,
    SourceIp,
    PrincipalId,
}

impl LogTargetType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "DEFAULT",
            Self::ThingGroup => "THING_GROUP",
            Self::ClientId => "CLIENT_ID",
            Self::SourceIp => "SOURCE_IP",
            Self::PrincipalId => "PRINCIPAL_ID",
        }
    }
}

impl std::str::FromStr for LogTargetType {
    type Err = RegistryError;
    fn from_str(s: &str) -> Result<Self> {
        [
            Self::Default,
            Self::ThingGroup,
            Self::ClientId,
            Self::SourceIp,
            Self::PrincipalId,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
        .ok_or_else(|| RegistryError::invalid(format!("unknown log target type {s:?}")))
    }
}

/// AWS's `LogTarget`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LogTarget {
    pub target_type: LogTargetType,
    pub target_name: Option<String>,
}

/// `GetV2LoggingOptionsResponse` (event configurations are not kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggingOptions {
    pub role_arn: Option<String>,
    pub default_log_level: LogLevel,
    pub disable_all_logs: bool,
}

impl Default for LoggingOptions {
    fn default() -> Self {
        Self {
            role_arn: None,
            default_log_level: LogLevel::Error,
            disable_all_logs: false,
        }
    }
}

fn token_key(t: &LogTarget) -> String {
    // Sorts like `LogTarget`'s derived order (type first, then name).
    format!(
        "{:02}/{}",
        t.target_type as u8,
        t.target_name.as_deref().unwrap_or("")
    )
}

impl Registry {
    /// `GetV2LoggingOptions`.
    pub fn logging_options(&self) -> LoggingOptions {
        self.read(|s| s.logging.clone())
    }

    /// `SetV2LoggingOptions`.
    pub fn set_logging_options(&self, options: LoggingOptions) -> Result<()> {
        if let Some(r) = &options.role_arn {
            if r.len() < 20 || r.len() > 2048 {
                return Err(RegistryError::invalid(
                    "roleArn must be 20 to 2048 characters long",
                ));
            }
        }
        self.write(|s, batch| {
            if s.logging != options {
                batch.op(Op::PutLogging(options));
                batch.event(Change::LoggingChanged);
            }
            Ok(())
        })
    }

    /// `SetV2LoggingLevel`.
    pub fn set_log_level(&self, target: LogTarget, level: LogLevel) -> Result<()> {
        match (&target.target_type, &target.target_name) {
            (LogTargetType::Default, _) => {}
            (_, None) => {
                return Err(RegistryError::invalid(format!(
                    "log target type {} needs a targetName",
                    target.target_type.as_str()
                )))
            }
            (LogTargetType::ThingGroup, Some(n)) => names::group_name(n)?,
            (_, Some(n)) if n.is_empty() || n.len() > 256 => {
                return Err(RegistryError::invalid(
                    "targetName must be 1 to 256 characters long",
                ))
            }
            _ => {}
        }
        self.write(|s, batch| {
            if let (LogTargetType::ThingGroup, Some(n)) = (&target.target_type, &target.target_name)
            {
                if !s.groups.contains_key(n) {
                    return Err(RegistryError::invalid(format!(
                        "thing group {n} does not exist"
                    )));
                }
            }
            if s.log_levels.get(&target) == Some(&level) {
                return Ok(());
            }
            if !s.log_levels.contains_key(&target) && s.log_levels.len() >= MAX_LOG_TARGETS {
                return Err(RegistryError::LimitExceeded(format!(
                    "at most {MAX_LOG_TARGETS} log targets can be set"
                )));
            }
            batch.op(Op::PutLogLevel(target, level));
            batch.event(Change::LoggingChanged);
            Ok(())
        })
    }

    /// `DeleteV2LoggingLevel`.
    pub fn delete_log_level(&self, target: LogTarget) -> Result<()> {
        self.write(|s, batch| {
            if s.log_levels.contains_key(&target) {
                batch.op(Op::DeleteLogLevel(target));
                batch.event(Change::LoggingChanged);
            }
            Ok(())
        })
    }

    /// `ListV2LoggingLevels`, ordered by (target type, name), optionally
    /// of one target type.
    pub fn list_log_levels(
        &self,
        target_type: Option<LogTargetType>,
        page: &PageRequest,
    ) -> Result<Page<(LogTarget, LogLevel)>> {
        self.read(|s| {
            let items = s
                .log_levels
                .iter()
                .filter(|(t, _)| target_type.is_none_or(|ty| t.target_type == ty))
                .map(|(t, l)| (t.clone(), *l));
            super::page::paginate(items, |(t, _)| token_key(t), page)
        })
    }

    /// The log level the v2 targets set for one device, the most specific
    /// first: its client ID, its certificate (`PRINCIPAL_ID`), then its
    /// thing's groups (nearest first). `None` when no target names it;
    /// with no targets set this is one read of an empty map.
    pub fn device_log_level(
        &self,
        client_id: &str,
        principal_id: Option<&str>,
        thing: Option<&str>,
    ) -> Option<LogLevel> {
        let find = |s: &super::state::State, t: LogTargetType, name: &str| {
            s.log_levels
                .get(&LogTarget {
                    target_type: t,
                    target_name: Some(name.to_owned()),
                })
                .copied()
        };
        let (direct, groups) = self.read(|s| {
            if s.log_levels.is_empty() {
                return (None, false);
            }
            let direct = find(s, LogTargetType::ClientId, client_id)
                .or_else(|| principal_id.and_then(|p| find(s, LogTargetType::PrincipalId, p)));
            let groups = s
                .log_levels
                .keys()
                .any(|t| t.target_type == LogTargetType::ThingGroup);
            (direct, groups)
        });
        if direct.is_some() || !groups {
            return direct;
        }
        let groups = self.thing_groups_with_ancestors(thing?);
        self.read(|s| {
            groups
                .iter()
                .find_map(|g| find(s, LogTargetType::ThingGroup, g))
        })
    }
}
