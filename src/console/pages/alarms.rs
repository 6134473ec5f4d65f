//! Alarms: open ones and their history, filtered by thing, profile and
//! verification state; each can be marked a true, benign or false positive
//! with a note.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use serde_json::Value;
use wardmq_defender::detect::model::VerificationState;
use wardmq_defender::store::ViolationFilter;

use super::data;
use crate::console::layout::{self, csrf, now_ms, text, time_json};
use crate::console::session::{checked_form, urlencode, Authed, Params};
use crate::console::{blocking, Ctx};

const STATES: [&str; 4] = [
    "TRUE_POSITIVE",
    "BENIGN_POSITIVE",
    "FALSE_POSITIVE",
    "UNKNOWN",
];

fn state(v: &str) -> Option<VerificationState> {
    serde_json::from_value(Value::String(v.to_owned())).ok()
}

fn nonempty<'a>(q: &'a HashMap<String, String>, k: &str) -> Option<&'a str> {
    q.get(k).map(|s| s.trim()).filter(|s| !s.is_empty())
}

pub async fn page(State(ctx): State<Ctx>, auth: Authed, Params(q): Params) -> Response {
    let Some(d) = ctx.app.defender.clone() else {
        return layout::page(
            "Alarms",
            &auth,
            "/console/alarms",
            html! { p { "The defender is disabled." } },
        );
    };
    let verification = match nonempty(&q, "state") {
        None => None,
        Some(s) => match state(s) {
            Some(v) => Some(v),
            None => {
                return layout::error(
                    StatusCode::BAD_REQUEST,
                    &format!("unknown verification state {s:?}"),
                )
            }
        },
    };
    let hours: u64 = match nonempty(&q, "hours").map(str::parse::<u64>) {
        None => 24,
        Some(Ok(h)) if (1..=336).contains(&h) => h,
        Some(_) => {
            return layout::error(
                StatusCode::BAD_REQUEST,
                "hours must be a whole number from 1 to 336",
            )
        }
    };
    let filter = ViolationFilter {
        thing_name: nonempty(&q, "thing").map(str::to_owned),
        security_profile_name: nonempty(&q, "profile").map(str::to_owned),
        verification_state: verification,
        ..ViolationFilter::default()
    };
    let actions = match ctx.app.mitigation.clone() {
        Some(m) => blocking(move || Ok::<_, String>(super::mitigations::detect_actions(&m)))
            .await
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let active = data::active(&d, filter.clone()).await;
    let mut history = data::events(&d, now_ms().saturating_sub(hours * 3_600_000), filter).await;
    if let Ok(h) = &mut history {
        h.reverse();
    }
    // Where a verification should come back to: this view.
    let back = format!(
        "/console/alarms?{}",
        serde_urlencoded::to_string(
            q.iter()
                .filter(|(k, _)| !matches!(k.as_str(), "ok" | "err"))
                .collect::<Vec<_>>()
        )
        .unwrap_or_default()
    );
    let body = html! {
        (layout::flash(&q))
        form class="filters" method="get" action="/console/alarms" {
            input type="text" name="thing" placeholder="Thing" value=(nonempty(&q, "thing").unwrap_or(""));
            input type="text" name="profile" placeholder="Security profile" value=(nonempty(&q, "profile").unwrap_or(""));
            select name="state" {
                option value="" { "Any verification state" }
                @for s in STATES { option value=(s) selected[nonempty(&q, "state") == Some(s)] { (s) } }
            }
            label { "History (hours) " input type="number" name="hours" min="1" max="336" value=(hours); }
            button type="submit" { "Filter" }
        }
        h2 { "Active" }
        @match &active {
            Err(e) => p class="flash error" { (e) },
            Ok(v) if v.is_empty() => p class="muted" { "No active alarms match." },
            Ok(v) => table class="alarms" {
                thead { tr { th { "Thing" } th { "Profile" } th { "Behaviour" } th { "Last value" } th { "Since" } th { "Verification" } th { "Actions" } } }
                tbody { @for a in v { tr {
                    td { a href=(format!("/console/devices/{}", urlencode(&text(&a["thingName"])))) { (text(&a["thingName"])) } }
                    td { (text(&a["securityProfileName"])) }
                    td { (text(&a["behavior"]["name"])) br; span class="small muted" { (text(&a["behavior"]["metric"])) } }
                    td class="small" { (text(&a["lastViolationValue"])) }
                    td { (time_json(&a["violationStartTime"])) }
                    td { (verification_cell(a)) }
                    td { (verify_form(&auth, a, &back)) (super::mitigations::start_form(&auth, &text(&a["violationId"]), &actions)) }
                } } }
            },
        }
        h2 { "History (last " (hours) " h, newest first)" }
        @match &history {
            Err(e) => p class="flash error" { (e) },
            Ok(v) if v.is_empty() => p class="muted" { "No events match." },
            Ok(v) => table {
                thead { tr { th { "Time" } th { "Event" } th { "Thing" } th { "Profile" } th { "Behaviour" } th { "Value" } th { "Verification" } th { "Mark" } } }
                tbody { @for e in v { tr {
                    td { (time_json(&e["violationEventTime"])) }
                    td { span class=(format!("pill {}", text(&e["violationEventType"]))) { (text(&e["violationEventType"])) } }
                    td { (text(&e["thingName"])) }
                    td { (text(&e["securityProfileName"])) }
                    td { (text(&e["behavior"]["name"])) }
                    td class="small" { (text(&e["metricValue"])) }
                    td { (verification_cell(e)) }
                    td { (verify_form(&auth, e, &back)) }
                } } }
            },
        }
    };
    layout::page("Alarms", &auth, "/console/alarms", body)
}

fn verification_cell(v: &Value) -> Markup {
    html! {
        (text(&v["verificationState"]))
        @if let Some(d) = v["verificationStateDescription"].as_str() { br; span class="small muted" { (d) } }
    }
}

fn verify_form(auth: &Authed, v: &Value, back: &str) -> Markup {
    html! {
        form class="inline verify" method="post" action="/console/alarms/verify" {
            (csrf(auth))
            input type="hidden" name="violation_id" value=(text(&v["violationId"]));
            input type="hidden" name="back" value=(back);
            select name="state" aria-label="Verification state" {
                @for s in STATES { option value=(s) selected[v["verificationState"] == s] { (s) } }
            }
            input type="text" name="note" placeholder="Note" maxlength="1000" aria-label="Note";
            button type="submit" { "Mark" }
        }
    }
}

pub async fn verify(State(ctx): State<Ctx>, auth: Authed, raw: Bytes) -> Response {
    let f = match checked_form(&auth, &raw) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let back = f
        .get("back")
        .filter(|b| b.starts_with("/console/alarms"))
        .cloned()
        .unwrap_or_else(|| "/console/alarms".to_owned());
    let Some(d) = ctx.app.defender.clone() else {
        return layout::error(StatusCode::SERVICE_UNAVAILABLE, "the defender is disabled");
    };
    let Some(id) = f.get("violation_id").filter(|s| !s.is_empty()).cloned() else {
        return layout::error(StatusCode::BAD_REQUEST, "violation_id is missing");
    };
    let Some(st) = f.get("state").and_then(|s| state(s)) else {
        return layout::error(
            StatusCode::BAD_REQUEST,
            "state must be one of TRUE_POSITIVE, BENIGN_POSITIVE, FALSE_POSITIVE, UNKNOWN",
        );
    };
    let note = f
        .get("note")
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    let label = f.get("state").cloned().unwrap_or_default();
    let result = blocking(move || d.put_verification_state(&id, st, note))
        .await
        .map(|()| format!("Marked {label}."));
    layout::after(&back, result)
}
