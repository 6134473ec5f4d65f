//! Dimensions and custom metrics: the resources behaviours refer to.
//!
//! Both creates take a `clientRequestToken`: repeating a create with the
//! same token and the same input answers as the first call did (so an SDK
//! retry after a lost response succeeds); the same name with another
//! token or another input is ResourceAlreadyExists; a token already
//! spent on another resource of the kind is InvalidRequest ("Each
//! dimension must have a unique client request token").
//!
//! Neither can be deleted while a profile uses it. For custom metrics the
//! model says so (DeleteCustomMetric); for dimensions it is silent, and we
//! refuse the same way rather than let a profile point at nothing. Both
//! deletes of a missing resource succeed (no ResourceNotFound in the
//! model).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::checks::{
    client_request_token, custom_metric_name, dimension_values, display_name, name,
};
use super::{
    custom_metric_arn, dimension_arn, now, Catalog, CatalogError, CustomMetric, Dimension,
    DimensionType, MAX_CUSTOM_METRICS, MAX_DIMENSIONS,
};
use crate::detect::model::{CustomMetricType, SecurityProfile};
use crate::store::{page_sorted, Fingerprint, Page, TokenKind};

const DIMENSION: &str = "dimension";
const CUSTOM_METRIC: &str = "custom metric";

/// Default page of ListCustomMetrics ("The default is 25").
const CUSTOM_METRICS_PAGE: u32 = 25;

/// What a create of one kind needs to know about the existing ones.
struct Create<'a, T> {
    kind: &'static str,
    existing: &'a BTreeMap<String, Arc<T>>,
    name: &'a str,
    arn: String,
    token: &'a str,
    token_of: fn(&T) -> &str,
    limit: usize,
}

impl<T> Create<'_, T> {
    /// `Some` with the stored resource when this is a repeat of the create
    /// that made it (`same` compares the rest of the input); `None` when
    /// the resource may be created; the error otherwise.
    fn check(&self, same: impl Fn(&T) -> bool) -> Result<Option<Arc<T>>, CatalogError> {
        if let Some(current) = self.existing.get(self.name) {
            if (self.token_of)(current) == self.token && same(current) {
                return Ok(Some(Arc::clone(current)));
            }
            return Err(CatalogError::AlreadyExists {
                kind: self.kind,
                name: self.name.to_owned(),
                arn: self.arn.clone(),
            });
        }
        if let Some((other, _)) = self
            .existing
            .iter()
            .find(|(_, r)| (self.token_of)(r) == self.token)
        {
            return Err(CatalogError::invalid(format!(
                "clientRequestToken {} was already used to create {} {other}",
                self.token, self.kind
            )));
        }
        if self.existing.len() >= self.limit {
            return Err(CatalogError::LimitExceeded(format!(
                "at most {} {}s can be defined",
                self.limit, self.kind
            )));
        }
        Ok(None)
    }
}

/// InvalidRequest naming the profiles that still use a resource.
fn in_use<'a>(
    kind: &str,
    name: &str,
    users: impl Iterator<Item = &'a Arc<SecurityProfile>>,
) -> Result<(), CatalogError> {
    let users: Vec<&str> = users.map(|p| p.security_profile_name.as_str()).collect();
    if users.is_empty() {
        return Ok(());
    }
    Err(CatalogError::invalid(format!(
        "{kind} {name} is used by security profile(s) {}; remove it from them first",
        users.join(", ")
    )))
}

/// A page of names, in order.
fn names<T>(
    items: &BTreeMap<String, Arc<T>>,
    kind: TokenKind,
    max_results: Option<u32>,
    next_token: Option<&str>,
) -> Result<Page<String>, CatalogError> {
    Ok(page_sorted(
        items.keys().cloned(),
        |n| n.as_bytes().to_vec(),
        kind,
        Fingerprint::new(),
        max_results,
        next_token,
    )?)
}

fn get<T>(
    items: &BTreeMap<String, Arc<T>>,
    kind: &'static str,
    name: &str,
) -> Result<Arc<T>, CatalogError> {
    items
        .get(name)
        .cloned()
        .ok_or_else(|| CatalogError::not_found(kind, name))
}

impl Catalog {
    /// CreateDimension.
    pub fn create_dimension(
        &self,
        dimension: &str,
        dimension_type: DimensionType,
        string_values: Vec<String>,
        token: &str,
    ) -> Result<Arc<Dimension>, CatalogError> {
        name("name", dimension)?;
        dimension_values(&string_values)?;
        client_request_token(token)?;
        let now = now();
        self.write(|tx| {
            let create = Create {
                kind: DIMENSION,
                existing: &tx.snap().dimensions,
                name: dimension,
                arn: dimension_arn(self.scope(), dimension),
                token,
                token_of: |d: &Dimension| &d.client_request_token,
                limit: MAX_DIMENSIONS,
            };
            if let Some(d) = create
                .check(|d| d.dimension_type == dimension_type && d.string_values == string_values)?
            {
                return Ok(d);
            }
            Ok(tx.put_dimension(Dimension {
                name: dimension.to_owned(),
                dimension_type,
                string_values,
                creation_date: now,
                last_modified_date: now,
                client_request_token: token.to_owned(),
            }))
        })
    }

    /// UpdateDimension: new values; the type never changes.
    pub fn update_dimension(
        &self,
        dimension: &str,
        string_values: Vec<String>,
    ) -> Result<Arc<Dimension>, CatalogError> {
        dimension_values(&string_values)?;
        let now = now();
        self.write(|tx| {
            let mut d = Dimension::clone(&*get(&tx.snap().dimensions, DIMENSION, dimension)?);
            d.string_values = string_values;
            d.last_modified_date = now;
            Ok(tx.put_dimension(d))
        })
    }

    /// DeleteDimension; refused while a profile uses it.
    pub fn delete_dimension(&self, dimension: &str) -> Result<(), CatalogError> {
        self.write(|tx| {
            if !tx.snap().dimensions.contains_key(dimension) {
                return Ok(());
            }
            in_use(
                DIMENSION,
                dimension,
                tx.snap().profiles_using_dimension(dimension),
            )?;
            tx.delete_dimension(dimension);
            Ok(())
        })
    }

    /// ListDimensions: names in order.
    pub fn list_dimensions(
        &self,
        max_results: Option<u32>,
        next_token: Option<&str>,
    ) -> Result<Page<String>, CatalogError> {
        names(
            &self.snapshot().dimensions,
            TokenKind::Dimensions,
            max_results,
            next_token,
        )
    }

    /// DescribeDimension.
    pub fn dimension(&self, dimension: &str) -> Result<Arc<Dimension>, CatalogError> {
        get(&self.snapshot().dimensions, DIMENSION, dimension)
    }

    /// CreateCustomMetric.
    pub fn create_custom_metric(
        &self,
        metric: &str,
        metric_type: CustomMetricType,
        display: Option<String>,
        token: &str,
    ) -> Result<Arc<CustomMetric>, CatalogError> {
        custom_metric_name(metric)?;
        if let Some(d) = &display {
            display_name(d)?;
        }
        client_request_token(token)?;
        let now = now();
        self.write(|tx| {
            let create = Create {
                kind: CUSTOM_METRIC,
                existing: &tx.snap().custom_metrics,
                name: metric,
                arn: custom_metric_arn(self.scope(), metric),
                token,
                token_of: |m: &CustomMetric| &m.client_request_token,
                limit: MAX_CUSTOM_METRICS,
            };
            if let Some(m) =
                create.check(|m| m.metric_type == metric_type && m.display_name == display)?
            {
                return Ok(m);
            }
            Ok(tx.put_custom_metric(CustomMetric {
                metric_name: metric.to_owned(),
                metric_type,
                display_name: display,
                creation_date: now,
                last_modified_date: now,
                client_request_token: token.to_owned(),
            }))
        })
    }

    /// UpdateCustomMetric: only the display name can change.
    pub fn update_custom_metric(
        &self,
        metric: &str,
        display: String,
    ) -> Result<Arc<CustomMetric>, CatalogError> {
        display_name(&display)?;
        let now = now();
        self.write(|tx| {
            let mut m =
                CustomMetric::clone(&*get(&tx.snap().custom_metrics, CUSTOM_METRIC, metric)?);
            m.display_name = Some(display);
            m.last_modified_date = now;
            Ok(tx.put_custom_metric(m))
        })
    }

    /// DeleteCustomMetric; refused while a profile uses it. Its stored
    /// datapoints expire with the metric store's retention.
    pub fn delete_custom_metric(&self, metric: &str) -> Result<(), CatalogError> {
        self.write(|tx| {
            if !tx.snap().custom_metrics.contains_key(metric) {
                return Ok(());
            }
            in_use(
                CUSTOM_METRIC,
                metric,
                tx.snap().profiles_using_metric(metric),
            )?;
            tx.delete_custom_metric(metric);
            Ok(())
        })
    }

    /// ListCustomMetrics: names in order, 25 per page by default.
    pub fn list_custom_metrics(
        &self,
        max_results: Option<u32>,
        next_token: Option<&str>,
    ) -> Result<Page<String>, CatalogError> {
        names(
            &self.snapshot().custom_metrics,
            TokenKind::CustomMetrics,
            max_results.or(Some(CUSTOM_METRICS_PAGE)),
            next_token,
        )
    }

    /// DescribeCustomMetric.
    pub fn custom_metric(&self, metric: &str) -> Result<Arc<CustomMetric>, CatalogError> {
        get(&self.snapshot().custom_metrics, CUSTOM_METRIC, metric)
    }
}
