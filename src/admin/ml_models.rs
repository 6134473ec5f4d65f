//! ML Detect models: GetBehaviorModelTrainingSummaries.

use axum::extract::State;
use axum::routing::get;
use axum::Router;
use serde_json::json;

use super::error::{ok, ApiResult};
use super::request::{blocking, Query};
use super::security_profiles::catalog;
use super::server::Shared;
use super::violations::defender;

pub fn routes() -> Router<Shared> {
    Router::new().route(
        "/behavior-model-training/summaries",
        get(get_behavior_model_training_summaries),
    )
}

async fn get_behavior_model_training_summaries(State(state): State<Shared>, q: Query) -> ApiResult {
    let d = defender(&state)?;
    let profile = q.get("securityProfileName").map(str::to_owned);
    if let Some(name) = &profile {
        // An unknown profile is a 404, not an empty list.
        catalog(&state)?.security_profile(name)?;
    }
    let (max, token) = q.defender_page()?;
    let page =
        blocking(move || d.model_training_summaries(profile.as_deref(), max, token.as_deref()))
            .await?;
    let summaries: Vec<_> = page
        .items
        .iter()
        .map(|s| {
            json!({
                "securityProfileName": s.profile,
                "behaviorName": s.behavior,
                "trainingDataCollectionStartDate": s.training_data_collection_start,
                "modelStatus": s.status.as_str(),
                "datapointsCollectionPercentage": s.datapoints_collection_percentage,
                "lastModelRefreshDate": s.last_model_refresh,
            })
        })
        .collect();
    Ok(ok(json!({
        "summaries": summaries,
        "nextToken": page.next_token,
    })))
}
