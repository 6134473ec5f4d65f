//! The page shell (navigation, sign-out form), error pages and the small
//! formatting helpers every page shares. maud escapes every interpolated
//! value, so user-controlled text is never markup.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use super::session::Authed;

const NAV: [(&str, &str); 8] = [
    ("/console/", "Overview"),
    ("/console/devices", "Devices"),
    ("/console/alarms", "Alarms"),
    ("/console/profiles", "Security profiles"),
    ("/console/audit", "Audit"),
    ("/console/certificates", "Certificates"),
    ("/console/mitigations", "Mitigations"),
    ("/console/live", "Live events"),
];

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · wardmq" }
            link rel="stylesheet" href="/console/static/console.css";
            link rel="icon" type="image/svg+xml" href="/console/static/icon.svg";
        }
    }
}

/// A page without navigation (the login).
pub fn bare(title: &str, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" { (head(title)) body { (body) } }
        }
        .into_string(),
    )
}

/// A console page: navigation with `active` highlighted, then `body`.
pub fn page(title: &str, auth: &Authed, active: &str, body: Markup) -> Response {
    page_with(title, auth, active, body, None)
}

/// As [`page`], with a script of the console's own.
pub fn page_with(
    title: &str,
    auth: &Authed,
    active: &str,
    body: Markup,
    script: Option<&str>,
) -> Response {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title))
                body {
                    header class="top" {
                        a class="brand" href="/console/" { "wardmq" }
                        nav {
                            @for (href, label) in NAV {
                                a href=(href) class=[(href == active).then_some("active")] { (label) }
                            }
                        }
                        form class="signout" method="post" action="/console/logout" {
                            (csrf(auth))
                            span class="muted" { (auth.session.user) }
                            button type="submit" class="link" { "Sign out" }
                        }
                    }
                    main {
                        h1 { (title) }
                        (body)
                    }
                    @if let Some(src) = script { script src=(src) {} }
                }
            }
        }
        .into_string(),
    )
    .into_response()
}

/// The hidden field every changing form carries.
pub fn csrf(auth: &Authed) -> Markup {
    html! { input type="hidden" name="csrf" value=(auth.session.csrf); }
}

/// An error page (also for bad input): the status and a plain sentence.
pub fn error(status: StatusCode, message: &str) -> Response {
    let body = html! {
        main class="login" {
            h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
            p class="flash error" { (message) }
            p { a href="/console/" { "Back to the console" } }
        }
    };
    (status, bare("Error", body)).into_response()
}

/// A flash message after a change, from the `ok` / `err` query parameter.
pub fn flash(q: &std::collections::HashMap<String, String>) -> Markup {
    html! {
        @if let Some(m) = q.get("ok") { p class="flash ok" { (m) } }
        @if let Some(m) = q.get("err") { p class="flash error" { (m) } }
    }
}

/// Epoch milliseconds as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn time_ms(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => "—".to_owned(),
    }
}

/// A JSON timestamp of the API model (epoch seconds, fractional).
pub fn time_json(v: &serde_json::Value) -> String {
    v.as_f64()
        .filter(|s| *s >= 0.0)
        .map_or_else(|| "—".to_owned(), |s| time_ms((s * 1000.0) as u64))
}

/// A JSON value as short text: strings bare, the rest as JSON.
pub fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "—".to_owned(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Now, in epoch milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A redirect after a change, with a message for the flash line.
pub fn after(path: &str, result: Result<String, String>) -> Response {
    let (k, v) = match result {
        Ok(m) => ("ok", m),
        Err(m) => ("err", m),
    };
    let sep = if path.contains('?') { '&' } else { '?' };
    axum::response::Redirect::to(&format!("{path}{sep}{k}={}", super::session::urlencode(&v)))
        .into_response()
}
