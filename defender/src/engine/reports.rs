//! Device metrics reports: answered on the publishing connection's task
//! (parse, throttle, reply), judged on the worker ("Behavior profiles are
//! evaluated upon receipt of metrics data", spec §7.1).

use std::sync::Arc;
use std::time::Instant;

use wardmq_broker::intercept::{Intercepted, Interceptor, Reply as BrokerReply};

use super::config::{MetricRef, Series};
use super::period::{alarm_key, commit, store_datapoints};
use super::{lock, now, Defender, Shared, Work};
use crate::detect::evaluate::{DatapointOutcome, Measurement};
use crate::detect::model::{MetricValue, Timestamp};
use crate::report::{
    accepted_reply, parse_report, parse_topic, rejected_reply, reply_topic, validate_value,
    DeviceReport, Rejection, ReplyKind, ReportError, ReportFormat, ReportedValue, TopicMatch,
};

/// A message the broker publishes in answer.
pub type Reply = (String, Vec<u8>);

/// The broker hands the defender every authorized PUBLISH under
/// `$aws/things/`; only the metrics topics are consumed.
impl Interceptor for Defender {
    fn prefix(&self) -> &str {
        "$aws/things/"
    }

    fn intercept(&self, _client_id: &str, topic: &str, payload: &[u8]) -> Intercepted {
        match self.on_publish(topic, payload) {
            None => Intercepted::Route,
            Some(replies) => Intercepted::Consume(
                replies
                    .into_iter()
                    .map(|(topic, payload)| BrokerReply { topic, payload })
                    .collect(),
            ),
        }
    }
}

impl Defender {
    /// A PUBLISH the broker authorized. `None`: not a metrics report, route
    /// it as usual. `Some(replies)`: a report (or a topic in the metrics
    /// namespace with no reply), consumed; publish the replies.
    pub fn on_publish(&self, topic: &str, payload: &[u8]) -> Option<Vec<Reply>> {
        let (thing, format, result) = match parse_topic(topic) {
            TopicMatch::NotMetrics => return None,
            TopicMatch::UnsupportedFormat { .. } => return Some(Vec::new()),
            TopicMatch::InvalidThing {
                thing,
                format,
                error,
            } => (
                thing,
                format,
                Err(Rejection {
                    report_id: None,
                    error: ReportError::InvalidThingName(error),
                }),
            ),
            TopicMatch::Report { thing, format } => {
                (thing, format, self.accept(thing, format, payload))
            }
        };
        let ts = now().as_millis();
        let (kind, body) = match &result {
            Ok(id) => (ReplyKind::Accepted, accepted_reply(format, thing, *id, ts)),
            Err(rejection) => {
                tracing::debug!(%thing, %rejection, "metrics report rejected");
                (
                    ReplyKind::Rejected,
                    rejected_reply(format, thing, rejection.report_id, &rejection.error, ts),
                )
            }
        };
        Some(match body {
            Ok(body) => vec![(reply_topic(thing, format, kind), body)],
            Err(error) => {
                tracing::warn!(%thing, %error, "cannot encode the metrics report reply");
                Vec::new()
            }
        })
    }

    /// Parses, throttles and queues one report; its id on success.
    fn accept(&self, thing: &str, format: ReportFormat, payload: &[u8]) -> Result<u64, Rejection> {
        let mut report = parse_report(format, payload)?;
        let id = report.report_id;
        let rejection = |error| Rejection {
            report_id: Some(id),
            error,
        };
        lock(&self.shared.throttle)
            .check(thing, Instant::now())
            .map_err(rejection)?;
        keep_defined_custom_metrics(&self.shared, &mut report);
        let queued = self.enqueue(Work::Report {
            thing: thing.into(),
            report: Box::new(report),
            at: now(),
        });
        if queued {
            Ok(id)
        } else {
            // The worker is far behind: say so rather than accept and lose.
            Err(rejection(ReportError::Throttled {
                elapsed: std::time::Duration::ZERO,
                min_interval: self.shared.settings.report_min_interval,
            }))
        }
    }
}

/// A custom metric the account has not defined, or a value of another
/// type or outside the value rules, is not retained; the report is still
/// accepted (spec §6.2).
fn keep_defined_custom_metrics(shared: &Shared, report: &mut DeviceReport) {
    let config = shared.config();
    report.custom_metrics.retain(|name, value| {
        let keep = config
            .custom_metrics
            .get(name)
            .is_some_and(|ty| validate_value(*ty, value).is_ok());
        if !keep {
            tracing::debug!(metric = %name, "custom metric value not retained");
        }
        keep
    });
}

fn measurement(v: ReportedValue<'_>) -> Measurement {
    match v {
        ReportedValue::Count(n) => Measurement::Count(n),
        ReportedValue::Ports(p) => Measurement::Ports(p.to_vec()),
        ReportedValue::IpAddresses(ips) => Measurement::Ips(ips.to_vec()),
        ReportedValue::Number(x) => Measurement::Number(x),
        ReportedValue::Numbers(xs) => Measurement::Numbers(xs.to_vec()),
        ReportedValue::Strings(ss) => Measurement::Strings(ss.to_vec()),
    }
}

fn reported(report: &DeviceReport, series: &Series) -> Option<Measurement> {
    match &series.metric {
        MetricRef::Cloud(_) => None,
        m => report.value(m.name()).map(measurement),
    }
}

/// Judges a report against every device-side and custom rule of the
/// thing's profiles, and keeps the datapoints they use or retain.
pub(crate) fn judge(shared: &Shared, thing: &Arc<str>, report: &DeviceReport, at: Timestamp) {
    let config = shared.config();
    let profiles = shared.profiles_for(&config, thing);
    let mut stored: Vec<(Arc<str>, &Series, MetricValue)> = Vec::new();
    let mut book = shared.book();
    let mut events = Vec::new();
    for &pi in &profiles {
        let profile = &config.profiles[pi];
        for (ri, rule) in profile.rules.iter().enumerate() {
            // Statistical thresholds need the fleet's values of one
            // period; device reports arrive one by one, so only static
            // rules judge them (documented in ARCHITECTURE.md).
            if rule.compiled.statistic().is_some() {
                continue;
            }
            let Some(m) = reported(report, &rule.series) else {
                continue;
            };
            // ML behaviours judge a period's latest report when it closes.
            if rule.compiled.is_machine_learning() {
                if let Some(value) = m.as_scalar() {
                    lock(&shared.ml).report(&config, pi, ri, thing, value);
                }
                continue;
            }
            let outcome = rule.compiled.evaluate(Some(&m), None);
            if outcome == DatapointOutcome::NoData {
                continue;
            }
            let key = alarm_key(thing, &config, pi, ri);
            events.extend(book.observe(&key, &rule.behavior, outcome, at));
        }
        for series in &profile.stored {
            if let Some(m) = reported(report, series) {
                stored.push((thing.clone(), series, m.to_metric_value()));
            }
        }
    }
    if !events.is_empty() {
        commit(shared, &config, &book, &events);
    }
    drop(book);
    store_datapoints(shared, at, &stored);
}
