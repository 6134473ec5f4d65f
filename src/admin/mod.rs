//! Admin HTTP API: the AWS IoT REST-JSON operations of the registry and
//! of Device Defender (Detect configuration and results, Audit), SigV4-authenticated, so
//! `aws iot ... --endpoint-url` and boto3 work unchanged. One module per resource family; `server` assembles them.

mod audit;
mod auth;
mod ca_certificates;
mod certificates;
pub mod credentials;
mod custom_metrics;
mod dimensions;
mod error;
mod groups;
pub mod issuer;
mod logging;
mod mitigation;
mod ml_models;
mod policies;
mod principals;
mod prometheus;
mod request;
mod security_profiles;
pub mod server;
mod things;
pub mod throttle;
mod violations;

pub use credentials::{Credentials, Origin};
pub use issuer::Issuer;
pub use server::{AdminServer, AppState};
pub use wardmq::sigv4;
