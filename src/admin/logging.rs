//! v2 logging: SetV2LoggingOptions, GetV2LoggingOptions,
//! SetV2LoggingLevel, ListV2LoggingLevels, DeleteV2LoggingLevel.

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use wardmq_broker::registry::{LogLevel, LogTarget, LogTargetType, LoggingOptions};

use super::error::{empty, ok, ApiError, ApiResult};
use super::request::{blocking, body, enum_field, Query};
use super::server::Shared;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/v2LoggingOptions",
            get(get_logging_options).post(set_logging_options),
        )
        .route(
            "/v2LoggingLevel",
            get(list_logging_levels)
                .post(set_logging_level)
                .delete(delete_logging_level),
        )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct OptionsIn {
    role_arn: Option<String>,
    default_log_level: Option<String>,
    disable_all_logs: Option<bool>,
    event_configurations: Option<Vec<Value>>,
}

/// Unset members keep their current values, so a call that only sets
/// `disableAllLogs` does not reset the level.
async fn set_logging_options(State(state): State<Shared>, raw: Bytes) -> ApiResult {
    let input: OptionsIn = body(&raw)?;
    if input.event_configurations.is_some_and(|e| !e.is_empty()) {
        return Err(ApiError::invalid(
            "eventConfigurations: per-event logging is not supported",
        ));
    }
    let mut options = state.registry.logging_options();
    if let Some(level) = &input.default_log_level {
        options.default_log_level = enum_field("defaultLogLevel", level)?;
    }
    if let Some(disable) = input.disable_all_logs {
        options.disable_all_logs = disable;
    }
    if input.role_arn.is_some() {
        options.role_arn = input.role_arn;
    }
    let registry = state.registry.clone();
    blocking(move || registry.set_logging_options(options)).await?;
    Ok(empty())
}

async fn get_logging_options(State(state): State<Shared>, q: Query) -> ApiResult {
    q.bool("verbose")?;
    let LoggingOptions {
        role_arn,
        default_log_level,
        disable_all_logs,
    } = state.registry.logging_options();
    Ok(ok(json!({
        "roleArn": role_arn,
        "defaultLogLevel": default_log_level.as_str(),
        "disableAllLogs": disable_all_logs,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TargetIn {
    target_type: String,
    target_name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LevelIn {
    log_target: TargetIn,
    log_level: String,
}

async fn set_logging_level(State(state): State<Shared>, raw: Bytes) -> ApiResult {
    let input: LevelIn = body(&raw)?;
    let target = LogTarget {
        target_type: enum_field("logTarget.targetType", &input.log_target.target_type)?,
        target_name: input.log_target.target_name,
    };
    let level: LogLevel = enum_field("logLevel", &input.log_level)?;
    let registry = state.registry.clone();
    blocking(move || registry.set_log_level(target, level)).await?;
    Ok(empty())
}

async fn list_logging_levels(State(state): State<Shared>, q: Query) -> ApiResult {
    let target_type = q.enumeration::<LogTargetType>("targetType")?;
    let page = state
        .registry
        .list_log_levels(target_type, &q.token_page()?)?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(|(t, level)| {
            json!({
                "logTarget": {
                    "targetType": t.target_type.as_str(),
                    "targetName": t.target_name,
                },
                "logLevel": level.as_str(),
            })
        })
        .collect();
    Ok(ok(json!({
        "logTargetConfigurations": items,
        "nextToken": page.next_token,
    })))
}

async fn delete_logging_level(State(state): State<Shared>, q: Query) -> ApiResult {
    let target_type: LogTargetType = enum_field("targetType", q.required("targetType")?)?;
    // The model requires targetName even for DEFAULT; an empty one means
    // "no name", which is how the DEFAULT target is stored.
    let target_name = q.required("targetName")?.to_owned();
    let target = LogTarget {
        target_type,
        target_name: (!target_name.is_empty() && target_type != LogTargetType::Default)
            .then_some(target_name),
    };
    let registry = state.registry.clone();
    blocking(move || registry.delete_log_level(target)).await?;
    Ok(empty())
}
