//! Things: CreateThing, DescribeThing, UpdateThing, DeleteThing, ListThings.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::json;
use wardmq_broker::registry::{AttributePayload, Thing, ThingUpdate};

use super::error::{empty, ok, ApiError, ApiResult};
use super::request::{blocking, body, Query};
use super::server::Shared;

pub fn routes() -> Router<Shared> {
    Router::new().route("/things", get(list_things)).route(
        "/things/{thingName}",
        get(describe_thing)
            .post(create_thing)
            .patch(update_thing)
            .delete(delete_thing),
    )
}

/// `AttributePayload` as sent.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributePayloadIn {
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    #[serde(default)]
    pub merge: bool,
}

impl From<AttributePayloadIn> for AttributePayload {
    fn from(p: AttributePayloadIn) -> Self {
        AttributePayload {
            attributes: p.attributes,
            merge: p.merge,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateThingIn {
    thing_type_name: Option<String>,
    attribute_payload: Option<AttributePayloadIn>,
    billing_group_name: Option<String>,
}

async fn create_thing(
    State(state): State<Shared>,
    Path(name): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let input: CreateThingIn = body(&raw)?;
    if input.billing_group_name.is_some() {
        return Err(ApiError::invalid("billing groups are not supported"));
    }
    let attributes = input
        .attribute_payload
        .map(|p| p.attributes)
        .unwrap_or_default();
    let registry = state.registry.clone();
    let thing = blocking(move || {
        registry.create_thing(&name, input.thing_type_name.as_deref(), attributes)
    })
    .await?;
    Ok(ok(json!({
        "thingName": thing.name,
        "thingArn": state.registry.scope().thing_arn(&thing.name),
        "thingId": thing.thing_id,
    })))
}

async fn describe_thing(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult {
    let thing = state
        .registry
        .thing(&name)
        .ok_or_else(|| ApiError::not_found(format!("thing {name} does not exist")))?;
    Ok(ok(json!({
        // AWS: the client id a device would use by default is the name.
        "defaultClientId": thing.name,
        "thingName": thing.name,
        "thingId": thing.thing_id,
        "thingArn": state.registry.scope().thing_arn(&thing.name),
        "thingTypeName": thing.thing_type_name,
        "attributes": thing.attributes,
        "version": thing.version,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateThingIn {
    thing_type_name: Option<String>,
    attribute_payload: Option<AttributePayloadIn>,
    expected_version: Option<u64>,
    #[serde(default)]
    remove_thing_type: bool,
}

async fn update_thing(
    State(state): State<Shared>,
    Path(name): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let input: UpdateThingIn = body(&raw)?;
    let update = ThingUpdate {
        thing_type_name: input.thing_type_name,
        remove_thing_type: input.remove_thing_type,
        attribute_payload: input.attribute_payload.map(Into::into),
        expected_version: input.expected_version,
    };
    let registry = state.registry.clone();
    blocking(move || registry.update_thing(&name, update)).await?;
    Ok(empty())
}

async fn delete_thing(
    State(state): State<Shared>,
    Path(name): Path<String>,
    q: Query,
) -> ApiResult {
    let expected = q.int::<u64>("expectedVersion")?;
    let registry = state.registry.clone();
    blocking(move || registry.delete_thing(&name, expected)).await?;
    Ok(empty())
}

async fn list_things(State(state): State<Shared>, q: Query) -> ApiResult {
    let page = q.token_page()?;
    let attribute = match (q.get("attributeName"), q.get("attributeValue")) {
        (Some(n), Some(v)) => Some((n, v)),
        (None, None) => None,
        _ => {
            return Err(ApiError::invalid(
                "attributeName and attributeValue must be given together",
            ))
        }
    };
    let prefix = q.flag("usePrefixAttributeValue")?;
    let page = state
        .registry
        .list_things(attribute, prefix, q.get("thingTypeName"), &page)?;
    let scope = state.registry.scope();
    let things: Vec<_> = page
        .items
        .iter()
        .map(|t: &Thing| {
            json!({
                "thingName": t.name,
                "thingTypeName": t.thing_type_name,
                "thingArn": scope.thing_arn(&t.name),
                "attributes": t.attributes,
                "version": t.version,
            })
        })
        .collect();
    Ok(ok(
        json!({ "things": things, "nextToken": page.next_token }),
    ))
}
