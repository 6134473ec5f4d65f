//! Mitigation actions and tasks.
//!
//! MITIGATION: the mitigation API (CreateMitigationAction,
//! StartDetectMitigationActionsTask, ListDetectMitigationActionsExecutions
//! and the audit counterparts) is built on another branch. When it lands,
//! this page lists actions, tasks and executions, and the alarms and audit
//! pages' disabled "Start mitigation" / "Mitigate" buttons post here.

use axum::response::Response;
use maud::html;

use crate::console::layout;
use crate::console::session::Authed;

pub async fn page(auth: Authed) -> Response {
    let body = html! {
        p class="flash" {
            "Mitigation actions and tasks are not available in this build yet. "
            "Alarms can be triaged on the " a href="/console/alarms" { "alarms page" } ", "
            "and a certificate can be deactivated on the " a href="/console/certificates" { "certificates page" } "."
        }
    };
    layout::page("Mitigations", &auth, "/console/mitigations", body)
}
