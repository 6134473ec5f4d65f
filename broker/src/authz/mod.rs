//! AWS IoT policy documents: parsed, validated and evaluated. Pure: no I/O,
//! no clocks, no shared state.
//!
//! - [`Policy::parse`] turns a JSON document into statements, reporting
//!   every problem at once in a [`PolicyError`].
//! - [`evaluate`] answers "may this connection do this action on this
//!   resource" with IAM's rules: explicit Deny wins, then any Allow, else
//!   default deny.
//! - [`DecisionCache`] memoises decisions per connection.
//!
//! Semantics chosen where AWS leaves room or we narrow it:
//! - Resource matching: `*` matches any run (including `/`), `?` one
//!   character; MQTT `+`/`#` are literal, also in `topicfilter/` resources.
//! - A policy variable with no value (no thing, no CN, missing attribute)
//!   makes the resource (or condition) containing it match nothing. Note
//!   that this also means such a *Deny* statement does not apply.
//! - Substituted values are literal: a client ID `*` cannot widen a grant.
//! - `NotAction`, `NotResource`, `Principal`, unknown keys, condition
//!   operators, condition keys and policy variables are rejected at parse
//!   time, so nothing we cannot evaluate is silently skipped.

mod cache;
mod condition;
mod document;
mod eval;
mod fuzz;
mod request;
mod variables;
mod wildcard;

pub use cache::{DecisionCache, DEFAULT_CAPACITY};
pub use condition::{Condition, ConditionOperator};
pub use document::{
    ActionPattern, Effect, Policy, PolicyError, ResourcePattern, Statement, MAX_DOCUMENT_CHARS,
    POLICY_VERSION,
};
pub use eval::{evaluate, Decision};
pub use fuzz::fuzz_check;
pub use request::{Action, Context, Request, Resource, Scope};
