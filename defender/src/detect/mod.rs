//! Rules Detect: the security-profile model, what each metric allows,
//! behaviour validation, and judging one datapoint against one behaviour.
//! Pure logic: no I/O, and time is always a parameter.

pub mod catalogue;
pub mod cidr;
pub mod evaluate;
pub mod model;
pub mod percentile;
pub mod validate;

pub use catalogue::{DurationRule, MetricCatalogue, MetricInfo, ValueType};
pub use model::*;
pub use validate::{validate_behaviors, validate_security_profile};
