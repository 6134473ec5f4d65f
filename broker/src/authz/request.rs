//! What the broker asks the policy engine: an action on a resource, on behalf
//! of a connection described by a [`Context`], inside a [`Scope`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// A broker action that policies can grant.
///
/// Only the actions the broker itself checks are here. Documents may name
/// other `iot:` actions (`iot:GetThingShadow`, ...); they parse, and the
/// audit can see them, but no request ever carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    Connect,
    Publish,
    Subscribe,
    Receive,
    RetainPublish,
}

impl Action {
    /// Every action, for callers that enumerate (audit, tests).
    pub const ALL: [Action; 5] = [
        Action::Connect,
        Action::Publish,
        Action::Subscribe,
        Action::Receive,
        Action::RetainPublish,
    ];

    /// The IAM name as AWS spells it, e.g. `iot:Publish`.
    pub fn name(self) -> &'static str {
        match self {
            Action::Connect => "iot:Connect",
            Action::Publish => "iot:Publish",
            Action::Subscribe => "iot:Subscribe",
            Action::Receive => "iot:Receive",
            Action::RetainPublish => "iot:RetainPublish",
        }
    }

    /// Lower-cased name: action matching is case-insensitive, as in IAM.
    pub(crate) fn lower_name(self) -> &'static str {
        match self {
            Action::Connect => "iot:connect",
            Action::Publish => "iot:publish",
            Action::Subscribe => "iot:subscribe",
            Action::Receive => "iot:receive",
            Action::RetainPublish => "iot:retainpublish",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The resource a request is about. The broker builds these; the engine
/// turns them into ARNs with [`Resource::arn`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
///
/// Values are `Arc<str>` so the broker can build one from the topic a
/// message already holds without copying it (a check per PUBLISH and per
/// delivery).
pub enum Resource {
    /// `client/{clientId}`: the resource of `iot:Connect`.
    Client(Arc<str>),
    /// `topic/{topicName}`: Publish, Receive, RetainPublish.
    Topic(Arc<str>),
    /// `topicfilter/{topicFilter}`: Subscribe. `+`/`#` in the filter are
    /// matched literally by policy resources.
    TopicFilter(Arc<str>),
}

impl Resource {
    pub fn client(client_id: impl Into<Arc<str>>) -> Self {
        Resource::Client(client_id.into())
    }

    pub fn topic(name: impl Into<Arc<str>>) -> Self {
        Resource::Topic(name.into())
    }

    pub fn topicfilter(filter: impl Into<Arc<str>>) -> Self {
        Resource::TopicFilter(filter.into())
    }

    /// The resource type as it appears in an ARN.
    pub fn kind(&self) -> &'static str {
        match self {
            Resource::Client(_) => "client",
            Resource::Topic(_) => "topic",
            Resource::TopicFilter(_) => "topicfilter",
        }
    }

    /// The client ID, topic name or filter.
    pub fn value(&self) -> &str {
        match self {
            Resource::Client(v) | Resource::Topic(v) | Resource::TopicFilter(v) => v,
        }
    }

    /// `arn:aws:iot:{region}:{account}:{kind}/{value}`.
    pub fn arn(&self, scope: &Scope) -> String {
        format!(
            "arn:aws:iot:{}:{}:{}/{}",
            scope.region,
            scope.account,
            self.kind(),
            self.value()
        )
    }
}

pub use crate::scope::Scope;

/// What the engine knows about the connection a request comes from; the
/// source of policy-variable and condition-key values.
///
/// Fields are taken as given: the broker decides what a connection's thing
/// is (AWS: the registered thing whose name is the client ID). As in AWS, the
/// thing variables resolve whether or not the thing is attached to the
/// certificate; policies guard with the `iot:Connection.Thing.IsAttached`
/// condition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    pub client_id: String,
    pub thing_name: Option<String>,
    pub thing_type_name: Option<String>,
    pub thing_attributes: BTreeMap<String, String>,
    pub certificate_common_name: Option<String>,
    /// The thing is attached to the principal (certificate) that connected.
    pub is_attached: bool,
}

impl Context {
    /// A connection with only a client ID: no thing, no certificate name.
    pub fn new(client_id: impl Into<String>) -> Self {
        Context {
            client_id: client_id.into(),
            ..Context::default()
        }
    }
}

/// One authorization question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub action: Action,
    pub resource: Resource,
}

impl Request {
    pub fn new(action: Action, resource: Resource) -> Self {
        Request { action, resource }
    }
}
