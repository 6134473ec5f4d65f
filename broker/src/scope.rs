//! The AWS region and account the broker presents, from which every ARN
//! is built; shared by the registry (ARNs it hands out) and the policy
//! engine (ARNs it matches).

/// The region and account every ARN is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub region: String,
    pub account: String,
}

impl Scope {
    pub fn new(region: impl Into<String>, account: impl Into<String>) -> Self {
        Self {
            region: region.into(),
            account: account.into(),
        }
    }

    fn arn(&self, resource: &str) -> String {
        format!("arn:aws:iot:{}:{}:{resource}", self.region, self.account)
    }

    pub fn thing_arn(&self, name: &str) -> String {
        self.arn(&format!("thing/{name}"))
    }

    pub fn cert_arn(&self, id: &str) -> String {
        self.arn(&format!("cert/{id}"))
    }

    pub fn ca_arn(&self, id: &str) -> String {
        self.arn(&format!("cacert/{id}"))
    }

    pub fn policy_arn(&self, name: &str) -> String {
        self.arn(&format!("policy/{name}"))
    }

    pub fn group_arn(&self, name: &str) -> String {
        self.arn(&format!("thinggroup/{name}"))
    }

    /// The certificate id in a certificate ARN of this scope.
    pub fn cert_id_of<'a>(&self, arn: &'a str) -> Option<&'a str> {
        self.resource_of(arn, "cert/")
    }

    /// The group name in a thing-group ARN of this scope.
    pub fn group_name_of<'a>(&self, arn: &'a str) -> Option<&'a str> {
        self.resource_of(arn, "thinggroup/")
    }

    fn resource_of<'a>(&self, arn: &'a str, kind: &str) -> Option<&'a str> {
        let rest = arn.strip_prefix("arn:aws:iot:")?;
        let rest = rest.strip_prefix(self.region.as_str())?.strip_prefix(':')?;
        let rest = rest
            .strip_prefix(self.account.as_str())?
            .strip_prefix(':')?;
        rest.strip_prefix(kind).filter(|r| !r.is_empty())
    }
}
