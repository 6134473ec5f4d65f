//! Thing groups and membership: CreateThingGroup, DescribeThingGroup,
//! UpdateThingGroup, DeleteThingGroup, ListThingGroups,
//! AddThingToThingGroup, RemoveThingFromThingGroup, ListThingsInThingGroup,
//! ListThingGroupsForThing.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, put};
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Value};
use wardmq_broker::registry::{Scope, ThingGroupProperties};

use super::error::{empty, ok, ApiError, ApiResult};
use super::request::{blocking, body, Query};
use super::server::Shared;
use super::things::AttributePayloadIn;

pub fn routes() -> Router<Shared> {
    Router::new()
        .route("/thing-groups", get(list_thing_groups))
        // Static segments win over `{thingGroupName}` in axum's router,
        // as they must: these two are operations, not group names.
        .route(
            "/thing-groups/addThingToThingGroup",
            put(add_thing_to_thing_group),
        )
        .route(
            "/thing-groups/removeThingFromThingGroup",
            put(remove_thing_from_thing_group),
        )
        .route(
            "/thing-groups/{thingGroupName}",
            get(describe_thing_group)
                .post(create_thing_group)
                .patch(update_thing_group)
                .delete(delete_thing_group),
        )
        .route(
            "/thing-groups/{thingGroupName}/things",
            get(list_things_in_thing_group),
        )
        .route(
            "/things/{thingName}/thing-groups",
            get(list_thing_groups_for_thing),
        )
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PropertiesIn {
    thing_group_description: Option<String>,
    attribute_payload: Option<AttributePayloadIn>,
}

impl From<PropertiesIn> for ThingGroupProperties {
    fn from(p: PropertiesIn) -> Self {
        ThingGroupProperties {
            description: p.thing_group_description,
            attribute_payload: p.attribute_payload.map(Into::into),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateGroupIn {
    parent_group_name: Option<String>,
    thing_group_properties: Option<PropertiesIn>,
}

async fn create_thing_group(
    State(state): State<Shared>,
    Path(name): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let input: CreateGroupIn = body(&raw)?;
    let properties = input.thing_group_properties.unwrap_or_default().into();
    let registry = state.registry.clone();
    let group = blocking(move || {
        registry.create_thing_group(&name, input.parent_group_name.as_deref(), properties)
    })
    .await?;
    Ok(ok(json!({
        "thingGroupName": group.name,
        "thingGroupArn": state.registry.scope().group_arn(&group.name),
        "thingGroupId": group.id,
    })))
}

fn group_refs<'a>(scope: &Scope, names: impl IntoIterator<Item = &'a String>) -> Vec<Value> {
    names
        .into_iter()
        .map(|g| json!({ "groupName": g, "groupArn": scope.group_arn(g) }))
        .collect()
}

async fn describe_thing_group(State(state): State<Shared>, Path(name): Path<String>) -> ApiResult {
    let g = state
        .registry
        .thing_group(&name)
        .ok_or_else(|| ApiError::not_found(format!("thing group {name} does not exist")))?;
    let scope = state.registry.scope();
    let ancestors = state.registry.thing_group_ancestors(&name);
    Ok(ok(json!({
        "thingGroupName": g.name,
        "thingGroupId": g.id,
        "thingGroupArn": scope.group_arn(&g.name),
        "version": g.version,
        "thingGroupProperties": {
            "thingGroupDescription": g.description,
            "attributePayload": { "attributes": g.attributes },
        },
        "thingGroupMetadata": {
            "parentGroupName": g.parent,
            "rootToParentThingGroups": group_refs(scope, &ancestors),
            "creationDate": g.creation_date,
        },
    })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateGroupIn {
    thing_group_properties: PropertiesIn,
    expected_version: Option<u64>,
}

async fn update_thing_group(
    State(state): State<Shared>,
    Path(name): Path<String>,
    raw: Bytes,
) -> ApiResult {
    let input: UpdateGroupIn = body(&raw)?;
    let registry = state.registry.clone();
    let version = blocking(move || {
        registry.update_thing_group(
            &name,
            input.thing_group_properties.into(),
            input.expected_version,
        )
    })
    .await?;
    Ok(ok(json!({ "version": version })))
}

async fn delete_thing_group(
    State(state): State<Shared>,
    Path(name): Path<String>,
    q: Query,
) -> ApiResult {
    let expected = q.int::<u64>("expectedVersion")?;
    let registry = state.registry.clone();
    blocking(move || registry.delete_thing_group(&name, expected)).await?;
    Ok(empty())
}

async fn list_thing_groups(State(state): State<Shared>, q: Query) -> ApiResult {
    let page = state.registry.list_thing_groups(
        q.get("parentGroup"),
        q.get("namePrefixFilter"),
        q.flag("recursive")?,
        &q.token_page()?,
    )?;
    let names: Vec<String> = page.items.into_iter().map(|g| g.name).collect();
    Ok(ok(json!({
        "thingGroups": group_refs(state.registry.scope(), &names),
        "nextToken": page.next_token,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MembershipIn {
    thing_group_name: Option<String>,
    thing_group_arn: Option<String>,
    thing_name: Option<String>,
    thing_arn: Option<String>,
}

impl MembershipIn {
    /// The (group, thing) names, from names or ARNs; a name and an ARN
    /// given together must agree.
    fn resolve(self, scope: &Scope) -> Result<(String, String), ApiError> {
        let group_from_arn = self
            .thing_group_arn
            .as_deref()
            .map(|arn| {
                scope.group_name_of(arn).map(str::to_owned).ok_or_else(|| {
                    ApiError::invalid(format!(
                        "thingGroupArn {arn:?} is not a thing-group ARN of this account and region"
                    ))
                })
            })
            .transpose()?;
        let thing_prefix = scope.thing_arn("");
        let thing_from_arn = self
            .thing_arn
            .as_deref()
            .map(|arn| {
                arn.strip_prefix(thing_prefix.as_str())
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        ApiError::invalid(format!(
                            "thingArn {arn:?} is not a thing ARN of this account and region"
                        ))
                    })
            })
            .transpose()?;
        let group = pick(
            "thingGroupName",
            "thingGroupArn",
            self.thing_group_name,
            group_from_arn,
        )?;
        let thing = pick("thingName", "thingArn", self.thing_name, thing_from_arn)?;
        Ok((group, thing))
    }
}

fn pick(
    name_field: &str,
    arn_field: &str,
    name: Option<String>,
    from_arn: Option<String>,
) -> Result<String, ApiError> {
    match (name, from_arn) {
        (Some(n), Some(a)) if n != a => Err(ApiError::invalid(format!(
            "{name_field} and {arn_field} name different resources"
        ))),
        (Some(n), _) | (None, Some(n)) => Ok(n),
        (None, None) => Err(ApiError::invalid(format!(
            "{name_field} or {arn_field} is required"
        ))),
    }
}

async fn add_thing_to_thing_group(State(state): State<Shared>, raw: Bytes) -> ApiResult {
    let input: MembershipIn = body(&raw)?;
    let (group, thing) = input.resolve(state.registry.scope())?;
    let registry = state.registry.clone();
    blocking(move || registry.add_thing_to_thing_group(&group, &thing)).await?;
    Ok(empty())
}

async fn remove_thing_from_thing_group(State(state): State<Shared>, raw: Bytes) -> ApiResult {
    let input: MembershipIn = body(&raw)?;
    let (group, thing) = input.resolve(state.registry.scope())?;
    let registry = state.registry.clone();
    blocking(move || registry.remove_thing_from_thing_group(&group, &thing)).await?;
    Ok(empty())
}

async fn list_things_in_thing_group(
    State(state): State<Shared>,
    Path(name): Path<String>,
    q: Query,
) -> ApiResult {
    let page =
        state
            .registry
            .list_things_in_thing_group(&name, q.flag("recursive")?, &q.token_page()?)?;
    Ok(ok(
        json!({ "things": page.items, "nextToken": page.next_token }),
    ))
}

async fn list_thing_groups_for_thing(
    State(state): State<Shared>,
    Path(thing): Path<String>,
    q: Query,
) -> ApiResult {
    let page = state
        .registry
        .list_thing_groups_for_thing(&thing, &q.token_page()?)?;
    Ok(ok(json!({
        "thingGroups": group_refs(state.registry.scope(), &page.items),
        "nextToken": page.next_token,
    })))
}
