//! The live event stream: alarm events as server-sent events, and a page
//! that shows the recent ones (without JavaScript) and appends new ones as
//! they arrive (with `live.js`).
//!
//! The defender has no event feed, so each stream polls the violation
//! store once a second: a window reaching back `LOOKBACK` (events are
//! stored a moment after their time) and a set of what it already sent.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use maud::{html, Markup};
use serde_json::{json, Value};
use wardmq_defender::engine::Defender;
use wardmq_defender::store::ViolationFilter;

use super::data;
use crate::console::layout::{self, now_ms, text, time_json};
use crate::console::session::Authed;
use crate::console::Ctx;

const POLL: Duration = Duration::from_secs(1);
const LOOKBACK_MS: u64 = 60_000;
/// Event keys remembered per stream (older ones are out of the window).
const SEEN_MAX: usize = 10_000;

fn key(e: &Value) -> String {
    format!(
        "{}|{}|{}",
        text(&e["violationId"]),
        text(&e["violationEventType"]),
        text(&e["violationEventTime"])
    )
}

fn row(e: &Value) -> Markup {
    html! {
        li {
            span class="time" { (time_json(&e["violationEventTime"])) }
            " " span class=(format!("pill {}", text(&e["violationEventType"]))) { (text(&e["violationEventType"])) }
            " " strong { (text(&e["thingName"])) }
            " " (text(&e["securityProfileName"])) " / " (text(&e["behavior"]["name"]))
        }
    }
}

pub async fn page(State(ctx): State<Ctx>, auth: Authed) -> Response {
    let recent = match &ctx.app.defender {
        Some(d) => data::events(
            d,
            now_ms().saturating_sub(3_600_000),
            ViolationFilter::default(),
        )
        .await
        .unwrap_or_default(),
        None => Vec::new(),
    };
    let body = html! {
        p id="live-status" class="muted" { "Live updates need JavaScript; reload the page to see new events." }
        ul id="events" class="events" {
            @for e in recent.iter().rev().take(100) { (row(e)) }
        }
        @if recent.is_empty() { p id="no-events" class="muted" { "No alarm events in the last hour." } }
    };
    layout::page_with(
        "Live events",
        &auth,
        "/console/live",
        body,
        Some("/console/static/live.js"),
    )
}

struct Poller {
    defender: Defender,
    seen: HashSet<String>,
    order: VecDeque<String>,
    pending: VecDeque<Value>,
    first: bool,
}

impl Poller {
    fn remember(&mut self, k: String) -> bool {
        if !self.seen.insert(k.clone()) {
            return false;
        }
        self.order.push_back(k);
        while self.order.len() > SEEN_MAX {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }

    async fn poll(&mut self) {
        let since = now_ms().saturating_sub(LOOKBACK_MS);
        let events = data::events(&self.defender, since, ViolationFilter::default())
            .await
            .unwrap_or_default();
        for e in events {
            // What was there when the stream opened is on the page already.
            if self.remember(key(&e)) && !self.first {
                self.pending.push_back(e);
            }
        }
        self.first = false;
    }
}

pub async fn stream(State(ctx): State<Ctx>, _auth: Authed) -> Response {
    let Some(defender) = ctx.app.defender.clone() else {
        return layout::error(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "the defender is disabled",
        );
    };
    let mut poller = Poller {
        defender,
        seen: HashSet::new(),
        order: VecDeque::new(),
        pending: VecDeque::new(),
        first: true,
    };
    poller.poll().await;
    let events = stream::unfold(poller, |mut p| async move {
        loop {
            if let Some(e) = p.pending.pop_front() {
                let payload = json!({
                    "time": time_json(&e["violationEventTime"]),
                    "type": text(&e["violationEventType"]),
                    "thing": text(&e["thingName"]),
                    "profile": text(&e["securityProfileName"]),
                    "behavior": text(&e["behavior"]["name"]),
                    "violationId": text(&e["violationId"]),
                });
                let ev = Event::default().event("alarm").data(payload.to_string());
                return Some((Ok::<_, Infallible>(ev), p));
            }
            tokio::time::sleep(POLL).await;
            p.poll().await;
        }
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}
