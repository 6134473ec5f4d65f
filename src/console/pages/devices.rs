//! Devices: a searchable list of things, and one thing's certificates,
//! groups, effective policies, alarms and metric charts with its alarms
//! marked on the same time axis.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde_json::Value;
use wardmq_broker::registry::PageRequest;
use wardmq_defender::detect::model::Timestamp;
use wardmq_defender::store::ViolationFilter;

use super::data;
use crate::console::chart::{self, Mark};
use crate::console::layout::{self, now_ms, text, time_json};
use crate::console::session::{urlencode, Authed, Params};
use crate::console::{blocking, Ctx};

/// Things listed at most on one page of results.
const LIST_MAX: usize = 500;

/// The cloud-side metrics every thing may have datapoints for.
const CLOUD_METRICS: [&str; 7] = [
    "aws:num-messages-sent",
    "aws:num-messages-received",
    "aws:message-byte-size",
    "aws:num-authorization-failures",
    "aws:num-connection-attempts",
    "aws:num-disconnects",
    "aws:disconnect-duration",
];

pub async fn list(State(ctx): State<Ctx>, auth: Authed, Params(q): Params) -> Response {
    let needle = q
        .get("q")
        .map(|s| s.trim().to_lowercase())
        .unwrap_or_default();
    let registry = ctx.app.registry.clone();
    let things = blocking(move || {
        data::all(|t| {
            registry
                .list_things(
                    None,
                    false,
                    None,
                    &PageRequest::new(Some(250), t.map(str::to_owned)),
                )
                .map(|p| (p.items, p.next_token))
        })
    })
    .await;
    let alarms: BTreeMap<String, usize> = match &ctx.app.defender {
        Some(d) => data::count_by(
            &data::active(d, ViolationFilter::default())
                .await
                .unwrap_or_default(),
            "/thingName",
        )
        .into_iter()
        .collect(),
        None => BTreeMap::new(),
    };
    let body = html! {
        form class="filters" method="get" action="/console/devices" {
            input type="search" name="q" value=(needle) placeholder="Thing name contains…";
            button type="submit" { "Search" }
        }
        @match things {
            Err(e) => p class="flash error" { (e) },
            Ok(things) => {
                @let shown: Vec<_> = things.iter().filter(|t| needle.is_empty() || t.name.to_lowercase().contains(&needle)).take(LIST_MAX).collect();
                p class="muted" { (shown.len()) " of " (things.len()) " registered things" }
                table {
                    thead { tr { th { "Thing" } th { "Status" } th { "Type" } th class="num" { "Open alarms" } th { "Attributes" } } }
                    tbody {
                        @for t in shown {
                            tr {
                                td { a href=(format!("/console/devices/{}", urlencode(&t.name))) { (t.name) } }
                                td { (status(&ctx, &t.name)) }
                                td { (t.thing_type_name.as_deref().unwrap_or("—")) }
                                td class="num" { (alarms.get(&t.name).copied().unwrap_or(0)) }
                                td class="small" { @for (k, v) in &t.attributes { code { (k) "=" (v) } " " } }
                            }
                        }
                    }
                }
            }
        }
    };
    layout::page("Devices", &auth, "/console/devices", body)
}

fn status(ctx: &Ctx, client_id: &str) -> maud::Markup {
    if ctx.console.traffic.is_connected(client_id) {
        html! { span class="pill ok" { "connected" } }
    } else {
        html! { span class="pill" { "offline" } }
    }
}

pub async fn detail(
    State(ctx): State<Ctx>,
    auth: Authed,
    Path(name): Path<String>,
    Params(q): Params,
) -> Response {
    let explicit = q.contains_key("hours");
    let hours: u64 = match q.get("hours").map(|h| h.parse::<u64>()) {
        None => 1,
        Some(Ok(h)) if (1..=336).contains(&h) => h,
        Some(_) => {
            return layout::error(
                StatusCode::BAD_REQUEST,
                "hours must be a whole number from 1 to 336",
            )
        }
    };
    let registry = &ctx.app.registry;
    let thing = registry.thing(&name);
    let principals: Vec<String> = registry
        .list_thing_principals(&name, &PageRequest::new(Some(250), None))
        .map(|p| p.items)
        .unwrap_or_default();
    let certs: Vec<(String, Option<String>)> = principals
        .iter()
        .map(|arn| {
            let id = arn.rsplit_once("cert/").map_or(arn.as_str(), |(_, id)| id);
            (
                id.to_owned(),
                registry
                    .certificate(id)
                    .map(|c| c.status.as_str().to_owned()),
            )
        })
        .collect();
    let groups = registry
        .list_thing_groups_for_thing(&name, &PageRequest::new(Some(250), None))
        .map(|p| p.items)
        .unwrap_or_default();
    let mut policies: BTreeMap<String, String> = BTreeMap::new();
    for (id, _) in &certs {
        for (p, doc) in registry.effective_policies(id, Some(&name)) {
            policies.insert(p, doc);
        }
    }
    let now = now_ms();
    let t0 = now.saturating_sub(hours * 3_600_000);
    let filter = ViolationFilter {
        thing_name: Some(name.clone()),
        ..ViolationFilter::default()
    };
    let (active, events) = match &ctx.app.defender {
        Some(d) => (
            data::active(d, filter.clone()).await.unwrap_or_default(),
            data::events(d, t0, filter).await.unwrap_or_default(),
        ),
        None => (Vec::new(), Vec::new()),
    };
    let marks = alarm_marks(&active, &events, t0);
    let mut metrics: BTreeSet<String> = CLOUD_METRICS.iter().map(|m| (*m).to_owned()).collect();
    if let Some(c) = &ctx.app.catalog {
        for p in c.snapshot().profiles.values() {
            for b in p.behaviors.iter().flatten() {
                if let Some(m) = &b.metric {
                    metrics.insert(m.clone());
                }
            }
        }
    }
    let mut series = Vec::new();
    if let Some(d) = &ctx.app.defender {
        for m in metrics {
            let (d, thing, metric) = (d.clone(), name.clone(), m.clone());
            let points = blocking(move || {
                data::all(|t| {
                    d.list_metric_values(
                        &thing,
                        &metric,
                        None,
                        Timestamp::from_millis(t0),
                        Timestamp::from_millis(now),
                        Some(250),
                        t,
                    )
                    .map(|p| (p.items, p.next_token))
                })
            })
            .await
            .unwrap_or_default();
            let pts: Vec<(u64, f64)> = points
                .iter()
                .map(|p| (p.timestamp.as_millis(), scalar(&p.value)))
                .collect();
            if !pts.is_empty() {
                series.push((m, pts));
            }
        }
    }
    // Without an explicit window, a young history fills the chart instead
    // of hugging its right edge (at 1 s periods an hour is mostly empty).
    let shown_t0 = if explicit {
        t0
    } else {
        let first = series
            .iter()
            .filter_map(|(_, p)| p.first().map(|x| x.0))
            .chain(marks.iter().map(|(m, _)| m.start))
            .min()
            .unwrap_or(t0);
        let margin = (now.saturating_sub(first) / 10).max(5_000);
        t0.max(first.saturating_sub(margin))
    };
    let charts: Vec<maud::Markup> = series
        .iter()
        .map(|(m, pts)| {
            let ms: Vec<Mark> = marks
                .iter()
                .filter(|(_, metric)| metric.as_deref().is_none_or(|x| x == m))
                .map(|(mk, _)| Mark {
                    start: mk.start,
                    end: mk.end,
                    label: mk.label.clone(),
                })
                .collect();
            chart::line(m, pts, &ms, shown_t0, now)
        })
        .collect();
    let body = html! {
        p { (status(&ctx, &name)) " " a href="/console/devices" { "All devices" } }
        div class="grid2" {
            section {
                h2 { "Thing" }
                @match &thing {
                    None => p class="muted" { "Not registered (only what the defender saw of this client ID)." },
                    Some(t) => table { tbody {
                        tr { th { "Type" } td { (t.thing_type_name.as_deref().unwrap_or("—")) } }
                        tr { th { "Version" } td { (t.version) } }
                        @for (k, v) in &t.attributes { tr { th { (k) } td { (v) } } }
                    } }
                }
                h2 { "Certificates" }
                @if certs.is_empty() { p class="muted" { "None attached." } }
                @else { table { tbody { @for (id, st) in &certs {
                    tr { td { code class="id" { (id) } } td { span class=(format!("pill {}", st.as_deref().unwrap_or(""))) { (st.as_deref().unwrap_or("unknown")) } } }
                } } } }
                h2 { "Thing groups" }
                @if groups.is_empty() { p class="muted" { "None." } }
                @else { ul { @for g in &groups { li { (g) } } } }
            }
            section {
                h2 { "Effective policies" }
                @if policies.is_empty() { p class="muted" { "None (no attached certificate, or no policy on it or its groups)." } }
                @for (p, doc) in &policies {
                    details { summary { (p) } pre { (pretty(doc)) } }
                }
                h2 { "Open alarms" }
                @if active.is_empty() { p class="muted" { "None." } }
                @else { table { thead { tr { th { "Profile" } th { "Behaviour" } th { "Since" } } } tbody {
                    @for v in &active { tr { td { (text(&v["securityProfileName"])) } td { (text(&v["behavior"]["name"])) } td { (time_json(&v["violationStartTime"])) } } }
                } } }
            }
        }
        h2 { "Metrics" }
        form class="filters" method="get" {
            label { "Window (hours) " input type="number" name="hours" min="1" max="336" value=(hours); }
            button type="submit" { "Show" }
        }
        @if charts.is_empty() { p class="muted" { "No stored datapoints in this window (datapoints are kept for metrics a profile's behaviours use or retain)." } }
        div class="charts" { @for c in charts { (c) } }
    };
    layout::page(&format!("Device {name}"), &auth, "/console/devices", body)
}

/// One number per datapoint: the count or number, or the size of a list.
fn scalar(v: &wardmq_defender::detect::model::MetricValue) -> f64 {
    if let Some(c) = v.count {
        return c as f64;
    }
    if let Some(n) = v.number {
        return n;
    }
    v.cidrs
        .as_ref()
        .map(Vec::len)
        .or(v.ports.as_ref().map(Vec::len))
        .or(v.numbers.as_ref().map(Vec::len))
        .or(v.strings.as_ref().map(Vec::len))
        .unwrap_or(0) as f64
}

fn pretty(doc: &str) -> String {
    serde_json::from_str::<Value>(doc)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| doc.to_owned())
}

/// Alarm spans from events (in-alarm opens, cleared or invalidated ends)
/// and alarms still open that started before the window; each with the
/// metric of its behaviour, so it is drawn on that metric's chart.
fn alarm_marks(active: &[Value], events: &[Value], t0: u64) -> Vec<(Mark, Option<String>)> {
    let ms = |v: &Value| v.as_f64().map_or(0, |s| (s * 1000.0) as u64);
    let mut open: BTreeMap<String, (u64, String, Option<String>)> = BTreeMap::new();
    let mut out = Vec::new();
    let label = |e: &Value| {
        format!(
            "{} / {}",
            text(&e["securityProfileName"]),
            text(&e["behavior"]["name"])
        )
    };
    let metric = |e: &Value| e["behavior"]["metric"].as_str().map(str::to_owned);
    for e in events {
        let id = text(&e["violationId"]);
        match e["violationEventType"].as_str() {
            Some("in-alarm") => {
                open.insert(id, (ms(&e["violationEventTime"]), label(e), metric(e)));
            }
            Some(_) => {
                let (start, l, m) = open.remove(&id).unwrap_or((t0, label(e), metric(e)));
                out.push((
                    Mark {
                        start,
                        end: Some(ms(&e["violationEventTime"])),
                        label: l,
                    },
                    m,
                ));
            }
            None => {}
        }
    }
    for (_, (start, label, m)) in open {
        out.push((
            Mark {
                start,
                end: None,
                label,
            },
            m,
        ));
    }
    for a in active {
        let start = ms(&a["violationStartTime"]);
        if start < t0 {
            out.push((
                Mark {
                    start: t0,
                    end: None,
                    label: label(a),
                },
                metric(a),
            ));
        }
    }
    out
}
