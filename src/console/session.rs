//! Login, logout, the session cookie, and what every page handler extracts:
//! the operator's session (or a redirect to the login page) and, for
//! changes, a form whose CSRF token matches the session's.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;

use super::auth::{same_secret, LoginError, Session, COOKIE};
use super::layout;
use super::Ctx;

/// A request from a logged-in operator.
pub struct Authed {
    pub session: Session,
}

impl FromRequestParts<Ctx> for Authed {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, ctx: &Ctx) -> Result<Self, Self::Rejection> {
        cookie(&parts.headers)
            .and_then(|id| ctx.console.gate.session(&id))
            .map(|session| Authed { session })
            .ok_or_else(|| {
                // A form POST without a session must not be replayed after
                // login; a page view may come back to where it was.
                let back = if parts.method == axum::http::Method::GET {
                    parts
                        .uri
                        .path_and_query()
                        .map(|p| p.as_str())
                        .unwrap_or("/console/")
                } else {
                    "/console/"
                };
                let to = format!("/console/login?next={}", urlencode(back));
                Redirect::to(&to).into_response()
            })
    }
}

/// The query string as name → value; a malformed one is a 400 page.
pub struct Params(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str::<Vec<(String, String)>>(q)
            .map(|v| Params(v.into_iter().collect()))
            .map_err(|e| layout::error(StatusCode::BAD_REQUEST, &format!("malformed query: {e}")))
    }
}

fn cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

pub fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)])
        .map(|e| e.trim_start_matches('=').to_owned())
        .unwrap_or_default()
}

/// A form body as name → value (the last value of a repeated name).
pub fn form(raw: &[u8]) -> Result<HashMap<String, String>, Response> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(raw)
        .map(|v| v.into_iter().collect())
        .map_err(|e| layout::error(StatusCode::BAD_REQUEST, &format!("malformed form: {e}")))
}

/// Every value of a repeated name (checkboxes), in form order; empty if
/// the body is malformed ([`checked_form`] reports that).
pub fn form_values(raw: &[u8], name: &str) -> Vec<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(raw)
        .map(|v| {
            v.into_iter()
                .filter(|(k, _)| k == name)
                .map(|(_, v)| v)
                .collect()
        })
        .unwrap_or_default()
}

/// The form of a change, refused (403) unless it carries the session's
/// CSRF token.
pub fn checked_form(auth: &Authed, raw: &[u8]) -> Result<HashMap<String, String>, Response> {
    let f = form(raw)?;
    match f.get("csrf") {
        Some(token) if same_secret(token, &auth.session.csrf) => Ok(f),
        _ => Err(layout::error(
            StatusCode::FORBIDDEN,
            "this form is stale or did not come from the console (CSRF token missing or wrong); \
             reload the page and try again",
        )),
    }
}

/// Only relative console paths, so the login cannot redirect elsewhere.
fn safe_next(next: Option<&String>) -> String {
    match next {
        Some(n) if n.starts_with("/console/") && !n.starts_with("//") && !n.contains('\\') => {
            n.clone()
        }
        _ => "/console/".to_owned(),
    }
}

pub async fn login_page(Params(q): Params) -> Response {
    login_form(StatusCode::OK, None, &safe_next(q.get("next")))
}

fn login_form(status: StatusCode, problem: Option<&str>, next: &str) -> Response {
    let body = html! {
        main class="login" {
            h1 { "wardmq" }
            p class="muted" { "Sign in to the console" }
            @if let Some(p) = problem { p class="flash error" { (p) } }
            form method="post" action="/console/login" {
                input type="hidden" name="next" value=(next);
                label { "User" input type="text" name="user" autocomplete="username" required autofocus; }
                label { "Password" input type="password" name="password" autocomplete="current-password" required; }
                button type="submit" { "Sign in" }
            }
            p class="muted small" {
                "The password is in console-password in the data directory unless "
                code { "[console] password_file" } " says otherwise."
            }
        }
    };
    (status, layout::bare("Sign in", body)).into_response()
}

/// A cross-site login form would still need the password; refusing foreign
/// origins stops login CSRF (logging a victim into an attacker's session).
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    origin == format!("http://{host}") || origin == format!("https://{host}")
}

pub async fn login(State(ctx): State<Ctx>, parts: Parts, raw: Bytes) -> Response {
    let f = match form(&raw) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let next = safe_next(f.get("next"));
    if !same_origin(&parts.headers) {
        return layout::error(StatusCode::FORBIDDEN, "login from another origin refused");
    }
    let from: IpAddr = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
    let user = f.get("user").map_or("", String::as_str);
    let password = f.get("password").map_or("", String::as_str);
    let console = ctx.console.clone();
    let (user, password) = (user.to_owned(), password.to_owned());
    let gate =
        tokio::task::spawn_blocking(move || console.gate.login(from, &user, &password)).await;
    match gate {
        Ok(Ok(id)) => {
            let mut cookie = format!(
                "{COOKIE}={id}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}",
                ctx.console.gate.lifetime().as_secs()
            );
            if ctx.console.cookie_secure {
                cookie.push_str("; Secure");
            }
            let mut res = Redirect::to(&next).into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                res.headers_mut().insert(header::SET_COOKIE, v);
            }
            res
        }
        Ok(Err(LoginError::Wrong)) => {
            ctx.app.auth_failures.failed(Some(from));
            login_form(
                StatusCode::UNAUTHORIZED,
                Some("Wrong user or password."),
                &next,
            )
        }
        Ok(Err(LoginError::Throttled(wait))) => {
            let secs = wait.as_secs().max(1);
            let mut res = login_form(
                StatusCode::TOO_MANY_REQUESTS,
                Some(&format!("Too many failed logins; try again in {secs} s.")),
                &next,
            );
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            res
        }
        Err(e) => layout::error(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

pub async fn logout(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    auth: Authed,
    raw: Bytes,
) -> Response {
    if let Err(r) = checked_form(&auth, &raw) {
        return r;
    }
    if let Some(id) = cookie(&headers) {
        ctx.console.gate.logout(&id);
    }
    let mut res = Redirect::to("/console/login").into_response();
    let mut gone = format!("{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0");
    if ctx.console.cookie_secure {
        gone.push_str("; Secure");
    }
    if let Ok(v) = HeaderValue::from_str(&gone) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_values_keeps_every_checkbox_in_order() {
        let raw = b"csrf=t&finding=a&action=x&finding=b%2Fc&finding=";
        assert_eq!(form_values(raw, "finding"), ["a", "b/c", ""]);
        assert_eq!(form_values(raw, "action"), ["x"]);
        assert!(form_values(raw, "none").is_empty());
        // Bad escapes and bytes are kept (lossily), never a panic.
        assert_eq!(
            form_values(b"finding=%ZZ&finding=\xff", "finding"),
            ["%ZZ", "\u{fffd}"]
        );
    }
}
