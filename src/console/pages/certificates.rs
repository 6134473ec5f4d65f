//! Device certificates and CAs, with their status changes (through the
//! registry calls UpdateCertificate and UpdateCACertificate use, so live
//! connections of a deactivated certificate drop as they do for the API).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use wardmq_broker::registry::{CaCertificateStatus, CertificateStatus, PageRequest};

use super::data;
use crate::console::layout::{self, csrf, time_ms};
use crate::console::session::{checked_form, Authed, Params};
use crate::console::{blocking, Ctx};

/// The statuses an operator may set (as UpdateCertificate allows).
const SETTABLE: [&str; 3] = ["ACTIVE", "INACTIVE", "REVOKED"];

fn epoch(secs: f64) -> String {
    if secs >= 0.0 {
        time_ms((secs * 1000.0) as u64)
    } else {
        "—".to_owned()
    }
}

pub async fn page(State(ctx): State<Ctx>, auth: Authed, Params(q): Params) -> Response {
    let (r1, r2) = (ctx.app.registry.clone(), ctx.app.registry.clone());
    let certs = blocking(move || {
        data::all(|t| {
            r1.list_certificates(&PageRequest::new(Some(250), t.map(str::to_owned)))
                .map(|p| (p.items, p.next_token))
        })
    })
    .await;
    let cas = blocking(move || {
        data::all(|t| {
            r2.list_ca_certificates(&PageRequest::new(Some(250), t.map(str::to_owned)))
                .map(|p| (p.items, p.next_token))
        })
    })
    .await;
    let body = html! {
        (layout::flash(&q))
        h2 { "CA certificates" }
        @match &cas {
            Err(e) => p class="flash error" { (e) },
            Ok(v) if v.is_empty() => p class="muted" { "None registered." },
            Ok(v) => table { thead { tr { th { "Certificate id" } th { "Status" } th { "Registered" } th { "Change status" } } } tbody {
                @for c in v { tr {
                    td { code class="id" { (c.id) } }
                    td { span class=(format!("pill {}", c.status.as_str())) { (c.status.as_str()) } }
                    td { (epoch(c.creation_date)) }
                    td { form class="inline" method="post" action="/console/cas/status" {
                        (csrf(&auth))
                        input type="hidden" name="id" value=(c.id);
                        select name="status" aria-label="New status" { @for s in ["ACTIVE", "INACTIVE"] { option value=(s) selected[c.status.as_str() == s] { (s) } } }
                        button type="submit" { "Set" }
                    } }
                } }
            } },
        }
        h2 { "Device certificates" }
        @match &certs {
            Err(e) => p class="flash error" { (e) },
            Ok(v) if v.is_empty() => p class="muted" { "None registered." },
            Ok(v) => table { thead { tr { th { "Certificate id" } th { "Status" } th { "CA" } th { "Registered" } th { "Change status" } } } tbody {
                @for c in v { tr {
                    td { code class="id" { (c.id) } }
                    td { span class=(format!("pill {}", c.status.as_str())) { (c.status.as_str()) } }
                    td class="small" { code class="id" { (c.ca_certificate_id.as_deref().unwrap_or("—")) } }
                    td { (epoch(c.creation_date)) }
                    td { form class="inline" method="post" action="/console/certificates/status" {
                        (csrf(&auth))
                        input type="hidden" name="id" value=(c.id);
                        select name="status" aria-label="New status" { @for s in SETTABLE { option value=(s) selected[c.status.as_str() == s] { (s) } } }
                        button type="submit" { "Set" }
                    } }
                } }
            } },
        }
    };
    layout::page("Certificates and CAs", &auth, "/console/certificates", body)
}

fn fields(f: &HashMap<String, String>) -> Result<(String, String), Response> {
    match (f.get("id"), f.get("status")) {
        (Some(id), Some(s)) if !id.is_empty() => Ok((id.clone(), s.clone())),
        _ => Err(layout::error(
            StatusCode::BAD_REQUEST,
            "id and status are required",
        )),
    }
}

pub async fn set_status(State(ctx): State<Ctx>, auth: Authed, raw: Bytes) -> Response {
    let (id, status) = match checked_form(&auth, &raw).and_then(|f| fields(&f)) {
        Ok(x) => x,
        Err(r) => return r,
    };
    if !SETTABLE.contains(&status.as_str()) {
        return layout::error(
            StatusCode::BAD_REQUEST,
            &format!("status must be one of {}", SETTABLE.join(", ")),
        );
    }
    let new: CertificateStatus = match status.parse() {
        Ok(s) => s,
        Err(e) => return layout::error(StatusCode::BAD_REQUEST, &format!("{e}")),
    };
    let r = ctx.app.registry.clone();
    let result = blocking(move || {
        r.update_certificate(&id, new)
            .map(|()| format!("Certificate {id}: {status}."))
    })
    .await;
    layout::after("/console/certificates", result)
}

pub async fn set_ca_status(State(ctx): State<Ctx>, auth: Authed, raw: Bytes) -> Response {
    let (id, status) = match checked_form(&auth, &raw).and_then(|f| fields(&f)) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let new = match status.as_str() {
        "ACTIVE" => CaCertificateStatus::Active,
        "INACTIVE" => CaCertificateStatus::Inactive,
        _ => return layout::error(StatusCode::BAD_REQUEST, "status must be ACTIVE or INACTIVE"),
    };
    let r = ctx.app.registry.clone();
    let result = blocking(move || {
        r.update_ca_certificate(&id, Some(new), None)
            .map(|()| format!("CA {id}: {status}."))
    })
    .await;
    layout::after("/console/certificates", result)
}
