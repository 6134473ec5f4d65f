//! Reading requests: JSON bodies, query strings, headers and pagination,
//! each failure a 400 `InvalidRequestException` that names the field, and
//! running registry calls off the async workers.

use std::str::FromStr;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use wardmq_broker::registry::{PageRequest, RegistryError};
use wardmq_defender::detect::model::Timestamp;

use super::error::ApiError;

/// Parses a JSON body into `T`. An empty body is `{}` (botocore sends none
/// when no body member is set). Errors name the offending field.
pub fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            ApiError::invalid(format!("invalid request body: {inner}"))
        } else {
            ApiError::invalid(format!("invalid request body: {path}: {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| ApiError::invalid(format!("invalid request body: {e}")))?;
    Ok(value)
}

/// Parses an enum member given as a string, naming the field on failure.
pub fn enum_field<T: FromStr<Err = RegistryError>>(
    field: &str,
    value: &str,
) -> Result<T, ApiError> {
    value
        .parse()
        .map_err(|e: RegistryError| ApiError::invalid(format!("{field}: {e}")))
}

/// The decoded query string, in order.
#[derive(Debug, Default)]
pub struct Query(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Query::parse(parts.uri.query().unwrap_or(""))
    }
}

impl Query {
    pub fn parse(raw: &str) -> Result<Query, ApiError> {
        serde_urlencoded::from_str(raw)
            .map(Query)
            .map_err(|e| ApiError::invalid(format!("invalid query string: {e}")))
    }

    /// The value of a parameter (the last one if repeated).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name)
            .ok_or_else(|| ApiError::invalid(format!("the query parameter {name} is required")))
    }

    /// A boolean as botocore writes it (`true`/`false`).
    pub fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        self.get(name)
            .map(|v| match v {
                "true" | "TRUE" | "True" => Ok(true),
                "false" | "FALSE" | "False" => Ok(false),
                _ => Err(ApiError::invalid(format!(
                    "{name}: {v:?} is not a boolean (true or false)"
                ))),
            })
            .transpose()
    }

    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        Ok(self.bool(name)?.unwrap_or(false))
    }

    pub fn int<T: FromStr>(&self, name: &str) -> Result<Option<T>, ApiError> {
        self.get(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| ApiError::invalid(format!("{name}: {v:?} is not a valid number")))
            })
            .transpose()
    }

    pub fn enumeration<T: FromStr<Err = RegistryError>>(
        &self,
        name: &str,
    ) -> Result<Option<T>, ApiError> {
        self.get(name).map(|v| enum_field(name, v)).transpose()
    }

    /// Pagination of the newer list calls: `nextToken` and `maxResults`.
    pub fn token_page(&self) -> Result<PageRequest, ApiError> {
        self.page("maxResults", "nextToken")
    }

    /// Pagination of the older list calls: `marker` and `pageSize`.
    pub fn marker_page(&self) -> Result<PageRequest, ApiError> {
        self.page("pageSize", "marker")
    }

    /// `maxResults` and `nextToken` as the defender's lists take them.
    pub fn defender_page(&self) -> Result<(Option<u32>, Option<String>), ApiError> {
        Ok((
            self.int("maxResults")?,
            self.get("nextToken")
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
        ))
    }

    /// An enum member of the defender's API model, spelt as the model
    /// spells it.
    pub fn model_enum<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, ApiError> {
        self.get(name)
            .map(|v| {
                serde_json::from_value(Value::String(v.to_owned()))
                    .map_err(|_| ApiError::invalid(format!("{name}: {v:?} is not a valid value")))
            })
            .transpose()
    }

    /// A timestamp: ISO 8601 as botocore sends it, or epoch seconds.
    pub fn time(&self, name: &str) -> Result<Option<Timestamp>, ApiError> {
        let Some(v) = self.get(name) else {
            return Ok(None);
        };
        if let Ok(secs) = v.parse::<f64>() {
            if secs.is_finite() && secs >= 0.0 {
                return Ok(Some(Timestamp::from_millis((secs * 1000.0).round() as u64)));
            }
        }
        let t = OffsetDateTime::parse(v, &Rfc3339)
            .map_err(|_| ApiError::invalid(format!("{name}: {v:?} is not a timestamp")))?;
        u64::try_from(t.unix_timestamp_nanos() / 1_000_000)
            .map(|ms| Some(Timestamp::from_millis(ms)))
            .map_err(|_| ApiError::invalid(format!("{name}: {v:?} is before 1970")))
    }

    pub fn required_time(&self, name: &str) -> Result<Timestamp, ApiError> {
        self.time(name)?
            .ok_or_else(|| ApiError::invalid(format!("the query parameter {name} is required")))
    }

    fn page(&self, size: &str, token: &str) -> Result<PageRequest, ApiError> {
        Ok(PageRequest::new(
            self.int(size)?,
            self.get(token).filter(|t| !t.is_empty()).map(str::to_owned),
        ))
    }
}

/// A required header (AWS puts principals in headers for some calls).
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, ApiError> {
    match headers.get(name).map(|v| v.to_str()) {
        Some(Ok(v)) if !v.is_empty() => Ok(v),
        Some(_) => Err(ApiError::invalid(format!(
            "the {name} header must be non-empty visible ASCII"
        ))),
        None => Err(ApiError::invalid(format!("the {name} header is required"))),
    }
}

/// Runs a registry call on the blocking pool: mutating calls wait for an
/// fsync, which must not stall the async workers.
pub async fn blocking<T, E, F>(f: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + 'static,
    ApiError: From<E>,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(ApiError::from),
        Err(e) => Err(ApiError::internal(format!("registry call failed: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)] // fields exist to be parsed
    struct Doc {
        policy_document: String,
        set_as_default: Option<bool>,
    }

    #[test]
    fn body_errors_name_the_field() {
        let e = body::<Doc>(b"{}").err().map(|e| e.message);
        assert!(e.is_some_and(|m| m.contains("policyDocument")));
        let e = body::<Doc>(br#"{"policyDocument":"x","setAsDefault":"yes"}"#)
            .err()
            .map(|e| e.message);
        assert!(e.is_some_and(|m| m.contains("setAsDefault")), "");
        assert!(body::<Doc>(b"{nope").is_err());
        assert!(body::<Doc>(br#"{"policyDocument":"x"} trailing"#).is_err());
    }

    #[test]
    fn query_values() {
        let q = Query::parse("a=1&b=true&c=x%2Fy&maxResults=0").unwrap_or_default();
        assert_eq!(q.int::<u32>("a").ok().flatten(), Some(1));
        assert_eq!(q.bool("b").ok().flatten(), Some(true));
        assert!(q.bool("c").is_err());
        assert_eq!(q.get("c"), Some("x/y"));
        assert!(q.required("zz").is_err());
        assert_eq!(
            q.token_page().ok().and_then(|p| p.max_results),
            Some(0),
            "range is checked by the registry"
        );
    }
}
