//! Errors in the AWS REST-JSON shape: the HTTP status the API model gives
//! the error, the code in `x-amzn-ErrorType` and a JSON body with
//! `message`. botocore reads the code from that header and the text from
//! `message`, so `aws` prints `An error occurred (Code) when calling ...:
//! message` exactly as it does against AWS.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use wardmq_broker::registry::RegistryError;

use super::sigv4::SigV4Error;

/// The response header botocore takes the error code from.
pub const ERROR_TYPE_HEADER: &str = "x-amzn-ErrorType";

/// An error answer of the admin API.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra body members some errors carry (`resourceId`, `resourceArn`).
    pub extra: Vec<(&'static str, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            extra: Vec::new(),
        }
    }

    /// 400 `InvalidRequestException`: the caller sent something malformed.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidRequestException", message)
    }

    /// 404 `ResourceNotFoundException`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "ResourceNotFoundException", message)
    }

    /// 500 `InternalFailureException`: our fault, not the caller's.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailureException",
            message,
        )
    }

    /// 413: the body is over the admin API's limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestEntityTooLargeException",
            format!("the request body is larger than {limit} bytes"),
        )
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        let status =
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut out = ApiError::new(status, e.aws_code(), e.to_string());
        // AWS names the existing resource so scripts can pick it up.
        if let RegistryError::ResourceAlreadyExists { id, arn, .. } = &e {
            out.extra.push(("resourceId", id.clone()));
            out.extra.push(("resourceArn", arn.clone()));
        }
        out
    }
}

impl From<SigV4Error> for ApiError {
    fn from(e: SigV4Error) -> Self {
        let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::FORBIDDEN);
        ApiError::new(status, e.code(), e.message())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("message".to_owned(), Value::String(self.message));
        for (k, v) in self.extra {
            body.insert(k.to_owned(), Value::String(v));
        }
        let mut response = (self.status, json_body(&Value::Object(body))).into_response();
        let headers = response.headers_mut();
        headers.insert(ERROR_TYPE_HEADER, HeaderValue::from_static(self.code));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }
}

/// Serializes a JSON value; a `Value` always serializes, the fallback only
/// keeps this free of panics.
pub fn json_body(v: &Value) -> Body {
    Body::from(serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec()))
}

/// Outermost middleware: any error answer that did not come from our
/// handlers (axum's own 404 for an unknown route, 405 for a wrong method,
/// a path that does not decode) is rewritten into the AWS shape, so
/// clients always get a code and a message.
pub async fn aws_shape(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.headers().contains_key(ERROR_TYPE_HEADER)
    {
        return response;
    }
    // axum's rejections carry a short plain-text reason; keep it.
    let detail = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let err = match status {
        StatusCode::NOT_FOUND => ApiError::new(
            status,
            "UnknownOperationException",
            format!("no operation at {method} {path}"),
        ),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            status,
            "MethodNotAllowedException",
            format!("{method} is not allowed on {path}"),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            status,
            "RequestEntityTooLargeException",
            "the request body is too large",
        ),
        s if s.is_client_error() => ApiError::new(
            s,
            "InvalidRequestException",
            if detail.is_empty() {
                "invalid request".to_owned()
            } else {
                detail
            },
        ),
        s => ApiError::new(s, "InternalFailureException", "internal failure"),
    };
    err.into_response()
}

/// Drops `null` members (recursively), so optional output fields that are
/// unset are absent, as AWS sends them.
pub fn compact(v: Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, compact(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(compact).collect()),
        other => other,
    }
}

/// A 200 answer with a JSON body.
pub fn ok(v: Value) -> Response {
    let mut response = json_body(&compact(v)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A 200 answer for operations without output (`{}` like AWS).
pub fn empty() -> Response {
    ok(json!({}))
}

pub type ApiResult = Result<Response, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn error_has_aws_shape() {
        let r = ApiError::from(RegistryError::ResourceAlreadyExists {
            kind: "thing",
            id: "t".into(),
            arn: "arn:x".into(),
        })
        .into_response();
        assert_eq!(r.status(), StatusCode::CONFLICT);
        assert_eq!(
            r.headers()
                .get(ERROR_TYPE_HEADER)
                .and_then(|v| v.to_str().ok()),
            Some("ResourceAlreadyExistsException")
        );
        let body = axum::body::to_bytes(r.into_body(), 4096)
            .await
            .unwrap_or_default();
        let v: Value = serde_json::from_slice(&body).unwrap_or_default();
        assert_eq!(v["resourceId"], "t");
        assert!(v["message"].as_str().is_some_and(|m| m.contains("exists")));
    }

    #[test]
    fn compact_drops_nulls() {
        let v = compact(json!({"a": null, "b": {"c": null, "d": 1}, "e": [{"f": null}]}));
        assert_eq!(v, json!({"b": {"d": 1}, "e": [{}]}));
    }
}
