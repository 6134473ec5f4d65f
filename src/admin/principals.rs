//! Thing principals (certificate ARNs attached to things):
//! AttachThingPrincipal, DetachThingPrincipal, ListThingPrincipals,
//! ListPrincipalThings. AWS carries the principal in a header.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::Router;
use serde_json::json;

use super::error::{empty, ok, ApiError, ApiResult};
use super::request::{blocking, header, Query};
use super::server::Shared;

const PRINCIPAL_HEADER: &str = "x-amzn-principal";

pub fn routes() -> Router<Shared> {
    Router::new()
        .route(
            "/things/{thingName}/principals",
            get(list_thing_principals)
                .put(attach_thing_principal)
                .delete(detach_thing_principal),
        )
        .route("/principals/things", get(list_principal_things))
}

async fn attach_thing_principal(
    State(state): State<Shared>,
    Path(thing): Path<String>,
    headers: HeaderMap,
    q: Query,
) -> ApiResult {
    let principal = header(&headers, PRINCIPAL_HEADER)?.to_owned();
    // Exclusive attachment is not modelled; the default (non-exclusive)
    // is what AWS does without the parameter.
    match q.get("thingPrincipalType") {
        None | Some("NON_EXCLUSIVE_THING") => {}
        Some(other) => {
            return Err(ApiError::invalid(format!(
                "thingPrincipalType {other:?} is not supported (only NON_EXCLUSIVE_THING)"
            )))
        }
    }
    let registry = state.registry.clone();
    blocking(move || registry.attach_thing_principal(&thing, &principal)).await?;
    Ok(empty())
}

async fn detach_thing_principal(
    State(state): State<Shared>,
    Path(thing): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    let principal = header(&headers, PRINCIPAL_HEADER)?.to_owned();
    let registry = state.registry.clone();
    blocking(move || registry.detach_thing_principal(&thing, &principal)).await?;
    Ok(empty())
}

async fn list_thing_principals(
    State(state): State<Shared>,
    Path(thing): Path<String>,
    q: Query,
) -> ApiResult {
    let page = state
        .registry
        .list_thing_principals(&thing, &q.token_page()?)?;
    Ok(ok(
        json!({ "principals": page.items, "nextToken": page.next_token }),
    ))
}

async fn list_principal_things(
    State(state): State<Shared>,
    headers: HeaderMap,
    q: Query,
) -> ApiResult {
    let principal = header(&headers, PRINCIPAL_HEADER)?;
    let page = state
        .registry
        .list_principal_things(principal, &q.token_page()?)?;
    Ok(ok(
        json!({ "things": page.items, "nextToken": page.next_token }),
    ))
}
