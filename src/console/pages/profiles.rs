//! Security profiles: their behaviours, targets and model status, and an
//! editor that goes through the catalog's own validation (the one
//! UpdateSecurityProfile uses), so the console cannot store what the API
//! would refuse.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use wardmq_defender::catalog::{Catalog, ProfileMembers, ProfileUpdate};
use wardmq_defender::detect::model::{Behavior, SecurityProfile};
use wardmq_defender::engine::ModelSummary;

use crate::console::layout::{self, csrf, text, time_json};
use crate::console::session::{checked_form, urlencode, Authed, Params};
use crate::console::{blocking, Ctx};

/// The ML models of one profile (or all, with `None`) as
/// GetBehaviorModelTrainingSummaries reports them; empty without Detect.
/// Off the runtime: the models' lock is held while a period is judged.
async fn models(ctx: &Ctx, profile: Option<String>) -> Vec<ModelSummary> {
    let Some(d) = ctx.app.defender.clone() else {
        return Vec::new();
    };
    blocking(move || Ok::<_, String>(d.model_summaries(profile.as_deref())))
        .await
        .unwrap_or_default()
}

/// A model's status and how much of its training data is collected.
fn model_cell(m: &ModelSummary) -> Markup {
    html! {
        span class=(format!("pill {}", m.status.as_str())) { (m.status.as_str()) }
        " "
        span class="small" title="datapointsCollectionPercentage" {
            (format!("{:.1}", m.datapoints_collection_percentage)) "% collected"
        }
    }
}

fn catalog(ctx: &Ctx) -> Result<Catalog, Response> {
    ctx.app.catalog.clone().ok_or_else(|| {
        layout::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Device Defender Detect is not enabled on this server",
        )
    })
}

pub async fn list(State(ctx): State<Ctx>, auth: Authed) -> Response {
    let c = match catalog(&ctx) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let snap = c.snapshot();
    let all_models = models(&ctx, None).await;
    let body = html! {
        @if snap.profiles.is_empty() {
            p class="muted" { "No security profiles. Create one with " code { "aws iot create-security-profile" } "." }
        } @else {
            table {
                thead { tr { th { "Profile" } th { "Description" } th class="num" { "Behaviours" } th { "Targets" } th { "ML model" } } }
                tbody { @for (name, p) in &snap.profiles { tr {
                    td { a href=(format!("/console/profiles/{}", urlencode(name))) { (name) } }
                    td { (p.security_profile_description.as_deref().unwrap_or("")) }
                    td class="num" { (p.behaviors.as_ref().map_or(0, Vec::len)) }
                    td class="small" { @for t in snap.targets_of(name) { code { (t.arn(c.scope())) } br; } }
                    td class="models" {
                        @let mine: Vec<&ModelSummary> = all_models.iter().filter(|m| &m.profile == name).collect();
                        @if mine.is_empty() { span class="muted" { "—" } }
                        @for m in mine { div { span class="small" { (m.behavior) ": " } (model_cell(m)) } }
                    }
                } } }
            }
        }
    };
    layout::page("Security profiles", &auth, "/console/profiles", body)
}

pub async fn detail(
    State(ctx): State<Ctx>,
    auth: Authed,
    Path(name): Path<String>,
    Params(q): Params,
) -> Response {
    let c = match catalog(&ctx) {
        Ok(c) => c,
        Err(r) => return r,
    };
    match c.security_profile(&name) {
        Ok(p) => {
            let m = models(&ctx, Some(name.clone())).await;
            render(&c, &auth, &p, &m, None, &q)
        }
        Err(e) => layout::error(StatusCode::NOT_FOUND, &e.to_string()),
    }
}

/// The page; `edit` is a refused edit to show again with its error.
fn render(
    c: &Catalog,
    auth: &Authed,
    p: &SecurityProfile,
    models: &[ModelSummary],
    edit: Option<(&str, &str, &str)>,
    q: &HashMap<String, String>,
) -> Response {
    let name = &p.security_profile_name;
    let behaviours = p.behaviors.clone().unwrap_or_default();
    let pretty = serde_json::to_string_pretty(&behaviours).unwrap_or_default();
    let (desc, text_b, problem) = match edit {
        Some((d, b, e)) => (d.to_owned(), b.to_owned(), Some(e)),
        None => (
            p.security_profile_description.clone().unwrap_or_default(),
            pretty,
            None,
        ),
    };
    let snap = c.snapshot();
    let body = html! {
        (layout::flash(q))
        p { a href="/console/profiles" { "All profiles" } }
        table { tbody {
            tr { th { "ARN" } td { code { (p.security_profile_arn.as_deref().unwrap_or("")) } } }
            tr { th { "Description" } td { (p.security_profile_description.as_deref().unwrap_or("")) } }
            tr { th { "Version" } td { (p.version.unwrap_or(0)) } }
            tr { th { "Last modified" } td { (time_json(&serde_json::to_value(p).unwrap_or_default()["lastModifiedDate"])) } }
            tr { th { "Targets" } td { @for t in snap.targets_of(name) { code { (t.arn(c.scope())) } br; } } }
            tr { th { "Alert targets" } td { (text(&serde_json::to_value(&p.alert_targets).unwrap_or_default())) } }
        } }
        h2 { "Behaviours" }
        table {
            thead { tr { th { "Name" } th { "Metric" } th { "Dimension" } th { "Criteria" } th { "Alerts suppressed" } th { "ML model" } } }
            tbody { @for b in &behaviours {
                @let v = serde_json::to_value(b).unwrap_or_default();
                tr {
                    td { (b.name) }
                    td { (b.metric.as_deref().unwrap_or("—")) }
                    td class="small" { (text(&v["metricDimension"])) }
                    td class="small" { code { (text(&v["criteria"])) } }
                    td { (text(&v["suppressAlerts"])) }
                    td class="models" {
                        @match models.iter().find(|m| m.behavior == b.name) {
                            Some(m) => (model_cell(m)),
                            None => span class="muted" { "—" },
                        }
                    }
                }
            } }
        }
        h2 { "Edit" }
        @if let Some(e) = problem { p class="flash error" { (e) } }
        form class="edit" method="post" action=(format!("/console/profiles/{}", urlencode(name))) {
            (csrf(auth))
            input type="hidden" name="version" value=(p.version.unwrap_or(0));
            label { "Description" input type="text" name="description" value=(desc) maxlength="1000"; }
            label { "Behaviours (JSON, as in the API's " code { "behaviors" } ")"
                textarea name="behaviors" rows="16" spellcheck="false" { (text_b) } }
            button type="submit" { "Save" }
        }
    };
    let status = if problem.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut res = layout::page(
        &format!("Security profile {name}"),
        auth,
        "/console/profiles",
        body,
    );
    *res.status_mut() = status;
    res.into_response()
}

pub async fn update(
    State(ctx): State<Ctx>,
    auth: Authed,
    Path(name): Path<String>,
    raw: Bytes,
) -> Response {
    let f = match checked_form(&auth, &raw) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let c = match catalog(&ctx) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let current = match c.security_profile(&name) {
        Ok(p) => p,
        Err(e) => return layout::error(StatusCode::NOT_FOUND, &e.to_string()),
    };
    let desc = f.get("description").cloned().unwrap_or_default();
    let btext = f.get("behaviors").cloned().unwrap_or_default();
    let current_models = models(&ctx, Some(name.clone())).await;
    let refuse = |e: String| {
        render(
            &c,
            &auth,
            &current,
            &current_models,
            Some((&desc, &btext, &e)),
            &HashMap::new(),
        )
    };
    let behaviors: Vec<Behavior> = match serde_json::from_str(&btext) {
        Ok(b) => b,
        Err(e) => {
            return refuse(format!(
                "behaviours are not valid JSON for the API's behaviors list: {e}"
            ))
        }
    };
    let version = match f.get("version").map(|v| v.parse::<i64>()) {
        Some(Ok(v)) => Some(v),
        _ => return refuse("the form lacks the profile version; reload the page".to_owned()),
    };
    let update = ProfileUpdate {
        members: ProfileMembers {
            security_profile_description: Some(desc.clone()),
            behaviors: Some(behaviors),
            ..ProfileMembers::default()
        },
        expected_version: version,
        ..ProfileUpdate::default()
    };
    let (c2, n2) = (c.clone(), name.clone());
    match blocking(move || c2.update_security_profile(&n2, update)).await {
        Ok(_) => layout::after(
            &format!("/console/profiles/{}", urlencode(&name)),
            Ok("Saved.".to_owned()),
        ),
        Err(e) => refuse(e),
    }
}
