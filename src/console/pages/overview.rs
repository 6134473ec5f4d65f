//! The fleet at a glance: connections, traffic, open alarms, the latest
//! audit.

use axum::extract::State;
use axum::response::Response;
use maud::html;
use wardmq_defender::store::ViolationFilter;

use super::data;
use crate::console::chart::{self, short};
use crate::console::layout::{self, now_ms, time_json};
use crate::console::session::Authed;
use crate::console::Ctx;

pub async fn page(State(ctx): State<Ctx>, auth: Authed) -> Response {
    let traffic = &ctx.console.traffic;
    let connected = traffic.connected_count();
    let (series, rates) = traffic.rates();
    let now = now_ms();
    let to_ms = |secs_ago: f64| now.saturating_sub((secs_ago * 1000.0) as u64);
    let msg_in: Vec<(u64, f64)> = series
        .iter()
        .map(|(ago, r)| (to_ms(*ago), r.messages_in))
        .collect();
    let msg_out: Vec<(u64, f64)> = series
        .iter()
        .map(|(ago, r)| (to_ms(*ago), r.messages_out))
        .collect();
    let certs = ctx.app.registry.certificate_status_counts();
    let active = match &ctx.app.defender {
        Some(d) => data::active(d, ViolationFilter::default()).await,
        None => Err("the defender is disabled".to_owned()),
    };
    let latest = match &ctx.app.audit {
        Some(a) => match data::tasks(a, 90).await {
            Ok(t) => match t.into_iter().next() {
                Some(task) => {
                    let id = task["taskId"].as_str().unwrap_or("").to_owned();
                    let findings = data::findings(a, &id).await.unwrap_or_default();
                    Ok(Some((task, findings)))
                }
                None => Ok(None),
            },
            Err(e) => Err(e),
        },
        None => Err("the audit is disabled".to_owned()),
    };
    let body = html! {
        section class="cards" {
            div class="card" { div class="big" id="connected" { (connected) } div class="muted" { "connected clients" } }
            div class="card" { div class="big" { (short(rates.messages_in)) "/s" } div class="muted" { "messages in" } }
            div class="card" { div class="big" { (short(rates.messages_out)) "/s" } div class="muted" { "messages out" } }
            div class="card" { div class="big" { (short(rates.bytes_in)) "B/s" } div class="muted" { "bytes in" } }
            div class="card" { div class="big" { (short(rates.bytes_out)) "B/s" } div class="muted" { "bytes out" } }
            div class="card" {
                div class="big" { (active.as_ref().map_or(0, Vec::len)) }
                div class="muted" { a href="/console/alarms" { "open alarms" } }
            }
        }
        div class="charts" {
            (chart::line("Messages in per second (last 10 minutes)", &msg_in, &[], now.saturating_sub(600_000), now))
            (chart::line("Messages out per second (last 10 minutes)", &msg_out, &[], now.saturating_sub(600_000), now))
        }
        div class="grid2" {
            section {
                h2 { "Open alarms by profile" }
                @match &active {
                    Err(e) => p class="muted" { (e) },
                    Ok(v) if v.is_empty() => p class="muted" { "No open alarms." },
                    Ok(v) => {
                        table { thead { tr { th { "Security profile" } th class="num" { "Alarms" } } }
                            tbody { @for (k, n) in data::count_by(v, "/securityProfileName") {
                                tr { td { a href=(format!("/console/alarms?profile={}", crate::console::session::urlencode(&k))) { (k) } } td class="num" { (n) } }
                            } } }
                        h2 { "Open alarms by behaviour" }
                        table { thead { tr { th { "Behaviour" } th class="num" { "Alarms" } } }
                            tbody { @for (k, n) in data::count_by(v, "/behavior/name") {
                                tr { td { (k) } td class="num" { (n) } }
                            } } }
                        h2 { "By verification state" }
                        table { tbody { @for (k, n) in data::count_by(v, "/verificationState") {
                            tr { td { (k) } td class="num" { (n) } }
                        } } }
                    }
                }
            }
            section {
                h2 { "Latest audit" }
                @match &latest {
                    Err(e) => p class="muted" { (e) },
                    Ok(None) => p class="muted" { "No audit has run yet. " a href="/console/audit" { "Run one" } "." },
                    Ok(Some((task, findings))) => {
                        p {
                            span class=(format!("pill {}", task["taskStatus"].as_str().unwrap_or(""))) { (layout::text(&task["taskStatus"])) }
                            " started " (time_json(&task["taskStartTime"]))
                        }
                        @let open: Vec<_> = findings.iter().filter(|f| f["isSuppressed"] != true).cloned().collect();
                        @if open.is_empty() {
                            p { "No non-compliant resources." }
                        } @else {
                            table { thead { tr { th { "Severity" } th class="num" { "Findings" } } }
                                tbody { @for (k, n) in data::count_by(&open, "/severity") {
                                    tr { td { span class=(format!("sev {k}")) { (k) } } td class="num" { (n) } }
                                } } }
                        }
                        p { a href="/console/audit" { "All findings" } }
                    }
                }
                h2 { "Certificates" }
                table { tbody { @for (status, n) in &certs {
                    tr { td { (status.as_str()) } td class="num" { (n) } }
                } } }
            }
        }
    };
    layout::page("Fleet overview", &auth, "/console/", body)
}
