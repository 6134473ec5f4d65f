//! Judging one datapoint of one device against one behaviour.
//!
//! **Criteria describe normal behaviour** (spec §7.1): a datapoint that
//! satisfies them complies, one that does not violates. `less-than 5`
//! therefore violates at 5 and above.
//!
//! Set operators (the spec's and AWS's reading, §13 cases 8 and 9):
//! - `in-cidr-set`, `in-port-set`, `in-set`: complies when **every**
//!   measured element is in the set; one element outside violates.
//! - `not-in-cidr-set`, `not-in-port-set`, `not-in-set`: complies when
//!   **no** measured element is in the set; one inside violates.
//! - An empty measured list always complies (and so clears an alarm).
//!
//! A behaviour is compiled once (CIDRs parsed, sets sorted) so that judging
//! is a comparison or a few binary searches, with no allocation.

use std::net::IpAddr;

use super::cidr::Cidr;
use super::model::{Behavior, ComparisonOperator, MetricValue};
use super::percentile::Statistic;

/// One device's value of one metric for one period (or one message, for
/// `aws:message-byte-size`), as the metrics side produces it.
#[derive(Clone, Debug, PartialEq)]
pub enum Measurement {
    /// Built-in numeric metrics (counts, bytes, minutes disconnected).
    Count(u64),
    /// Custom `number`.
    Number(f64),
    /// Source IP (one element) or destination IPs, or a custom ip list.
    Ips(Vec<IpAddr>),
    Ports(Vec<u16>),
    Numbers(Vec<f64>),
    Strings(Vec<String>),
}

impl Measurement {
    /// The value as a violation reports it (`metricValue`,
    /// `lastViolationValue`): a source IP as `cidrs: ["12.8.1.2"]`, the form
    /// AWS uses.
    pub fn to_metric_value(&self) -> MetricValue {
        match self {
            Self::Count(n) => MetricValue::count(*n),
            Self::Number(x) => MetricValue::number(*x),
            Self::Ips(v) => MetricValue::cidrs(v.iter().map(IpAddr::to_string)),
            Self::Ports(v) => MetricValue::ports(v.iter().copied()),
            Self::Numbers(v) => MetricValue::numbers(v.iter().copied()),
            Self::Strings(v) => MetricValue::strings(v.iter().cloned()),
        }
    }

    /// The value a fleet percentile ranks, for the scalar kinds.
    pub fn as_scalar(&self) -> Option<f64> {
        match self {
            // Exact up to 2^53; counts beyond that lose their last digits,
            // which no percentile comparison can notice in practice.
            Self::Count(n) => Some(*n as f64),
            Self::Number(x) => Some(*x),
            _ => None,
        }
    }
}

/// What the alarm state machine is fed for one datapoint. The value rides
/// along for the event it may produce.
#[derive(Clone, Debug, PartialEq)]
pub enum DatapointOutcome {
    Violating(MetricValue),
    NotViolating(MetricValue),
    /// No datapoint this period, or one that could not be judged (see
    /// [`NotEvaluated`]). The alarm state is left as it is.
    NoData,
}

/// Why a datapoint was not judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotEvaluated {
    /// A statistical behaviour without a fleet threshold this period (too
    /// few devices, a negative custom value: spec §7.3, case 15).
    NoFleetThreshold,
    /// ML behaviours are judged by the ML module.
    MachineLearning,
    /// The measurement's kind does not fit the behaviour (a port list for a
    /// count rule): a wiring bug, never the device's fault, so no alarm.
    KindMismatch,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Complies,
    Violates,
    NotEvaluated(NotEvaluated),
}

impl Verdict {
    fn from_complies(ok: bool) -> Self {
        if ok {
            Self::Complies
        } else {
            Self::Violates
        }
    }
}

/// Why a behaviour cannot be compiled. Validation rejects all of these
/// first; compiling reports them again rather than trusting its caller.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    #[error("behavior '{0}' has no criteria")]
    NoCriteria(String),
    #[error("behavior '{0}' has no comparisonOperator")]
    NoOperator(String),
    #[error("behavior '{0}' has no usable value or statisticalThreshold for its operator")]
    NoThreshold(String),
    #[error("behavior '{0}': {1}")]
    BadCidr(String, String),
    #[error("behavior '{0}' has an unknown statistic")]
    BadStatistic(String),
}

#[derive(Clone, Debug, PartialEq)]
enum Threshold {
    Count(u64),
    Number(f64),
    Fleet(Statistic),
    Cidrs(Vec<Cidr>),
    /// Sorted, deduplicated.
    Ports(Vec<u16>),
    /// Sorted by `total_cmp` with -0.0 folded into 0.0.
    Numbers(Vec<f64>),
    /// Sorted, deduplicated.
    Strings(Vec<String>),
    MachineLearning,
}

/// A behaviour ready to judge datapoints.
#[derive(Clone, Debug, PartialEq)]
pub struct CompiledBehavior {
    op: ComparisonOperator,
    threshold: Threshold,
}

/// -0.0 and 0.0 are the same number to a user; `total_cmp` says otherwise.
fn fold_zero(x: f64) -> f64 {
    if x == 0.0 {
        0.0
    } else {
        x
    }
}

impl CompiledBehavior {
    pub fn compile(b: &Behavior) -> Result<Self, CompileError> {
        let name = || b.name.clone();
        let c = b
            .criteria
            .as_ref()
            .ok_or_else(|| CompileError::NoCriteria(name()))?;
        if c.ml_detection_config.is_some() {
            return Ok(Self {
                // Never consulted for ML; any value will do.
                op: ComparisonOperator::LessThan,
                threshold: Threshold::MachineLearning,
            });
        }
        let op = c
            .comparison_operator
            .ok_or_else(|| CompileError::NoOperator(name()))?;
        let threshold = if let Some(t) = &c.statistical_threshold {
            let s = t
                .statistic
                .as_deref()
                .and_then(|s| s.parse::<Statistic>().ok())
                .ok_or_else(|| CompileError::BadStatistic(name()))?;
            Threshold::Fleet(s)
        } else {
            let v = c
                .value
                .as_ref()
                .ok_or_else(|| CompileError::NoThreshold(name()))?;
            Self::static_threshold(op, v)
                .ok_or_else(|| CompileError::NoThreshold(name()))?
                .map_err(|bad_cidr| CompileError::BadCidr(name(), bad_cidr))?
        };
        let fits = match &threshold {
            Threshold::Count(_) | Threshold::Number(_) | Threshold::Fleet(_) => op.is_ordering(),
            Threshold::Cidrs(_) => matches!(
                op,
                ComparisonOperator::InCidrSet | ComparisonOperator::NotInCidrSet
            ),
            Threshold::Ports(_) => matches!(
                op,
                ComparisonOperator::InPortSet | ComparisonOperator::NotInPortSet
            ),
            Threshold::Numbers(_) | Threshold::Strings(_) => {
                matches!(op, ComparisonOperator::InSet | ComparisonOperator::NotInSet)
            }
            Threshold::MachineLearning => true,
        };
        if !fits {
            return Err(CompileError::NoThreshold(name()));
        }
        Ok(Self { op, threshold })
    }

    /// Picks the value member the operator needs. `None`: no such member.
    fn static_threshold(
        op: ComparisonOperator,
        v: &MetricValue,
    ) -> Option<Result<Threshold, String>> {
        use ComparisonOperator::*;
        Some(Ok(match op {
            LessThan | LessThanEquals | GreaterThan | GreaterThanEquals => {
                match (v.count, v.number) {
                    (Some(n), _) => Threshold::Count(n),
                    (None, Some(x)) => Threshold::Number(x),
                    (None, None) => return None,
                }
            }
            InCidrSet | NotInCidrSet => {
                let mut out = Vec::new();
                for s in v.cidrs.as_ref()? {
                    match s.parse::<Cidr>() {
                        Ok(c) => out.push(c),
                        Err(e) => return Some(Err(e.to_string())),
                    }
                }
                Threshold::Cidrs(out)
            }
            InPortSet | NotInPortSet => {
                let mut p = v.ports.clone()?;
                p.sort_unstable();
                p.dedup();
                Threshold::Ports(p)
            }
            InSet | NotInSet => {
                if let Some(n) = &v.numbers {
                    let mut n: Vec<f64> = n.iter().copied().map(fold_zero).collect();
                    n.sort_by(f64::total_cmp);
                    n.dedup();
                    Threshold::Numbers(n)
                } else {
                    let mut s = v.strings.clone()?;
                    s.sort_unstable();
                    s.dedup();
                    Threshold::Strings(s)
                }
            }
        }))
    }

    /// The statistic, for statistical behaviours: the caller computes the
    /// fleet threshold with it (`percentile::fleet_threshold`).
    pub fn statistic(&self) -> Option<Statistic> {
        match self.threshold {
            Threshold::Fleet(s) => Some(s),
            _ => None,
        }
    }

    pub fn is_machine_learning(&self) -> bool {
        self.threshold == Threshold::MachineLearning
    }

    /// Judges one measurement. `fleet` is this period's fleet threshold for
    /// statistical behaviours (ignored otherwise).
    pub fn judge(&self, m: &Measurement, fleet: Option<f64>) -> Verdict {
        use NotEvaluated::*;
        let op = self.op;
        match (&self.threshold, m) {
            (Threshold::MachineLearning, _) => Verdict::NotEvaluated(MachineLearning),
            (Threshold::Count(t), Measurement::Count(v)) => Verdict::from_complies(order(op, v, t)),
            (Threshold::Count(t), Measurement::Number(v)) => {
                Verdict::from_complies(order_f64(op, *v, *t as f64))
            }
            (Threshold::Number(t), _) => match m.as_scalar() {
                Some(v) => Verdict::from_complies(order_f64(op, v, *t)),
                None => Verdict::NotEvaluated(KindMismatch),
            },
            (Threshold::Fleet(_), _) => match (m.as_scalar(), fleet) {
                (Some(v), Some(t)) => Verdict::from_complies(order_f64(op, v, t)),
                (None, _) => Verdict::NotEvaluated(KindMismatch),
                (Some(_), None) => Verdict::NotEvaluated(NoFleetThreshold),
            },
            (Threshold::Cidrs(set), Measurement::Ips(ips)) => {
                Verdict::from_complies(membership(op, ips.iter(), |ip| {
                    set.iter().any(|c| c.contains(*ip))
                }))
            }
            (Threshold::Ports(set), Measurement::Ports(ports)) => {
                Verdict::from_complies(membership(op, ports.iter(), |p| {
                    set.binary_search(p).is_ok()
                }))
            }
            (Threshold::Numbers(set), Measurement::Numbers(xs)) => {
                Verdict::from_complies(membership(op, xs.iter(), |x| {
                    set.binary_search_by(|s| s.total_cmp(&fold_zero(*x)))
                        .is_ok()
                }))
            }
            (Threshold::Strings(set), Measurement::Strings(xs)) => {
                Verdict::from_complies(membership(op, xs.iter(), |x| set.binary_search(x).is_ok()))
            }
            _ => Verdict::NotEvaluated(KindMismatch),
        }
    }

    /// [`judge`](Self::judge), shaped for the alarm state machine; `None`
    /// (no datapoint this period) is `NoData`.
    pub fn evaluate(&self, m: Option<&Measurement>, fleet: Option<f64>) -> DatapointOutcome {
        let Some(m) = m else {
            return DatapointOutcome::NoData;
        };
        match self.judge(m, fleet) {
            Verdict::Complies => DatapointOutcome::NotViolating(m.to_metric_value()),
            Verdict::Violates => DatapointOutcome::Violating(m.to_metric_value()),
            Verdict::NotEvaluated(_) => DatapointOutcome::NoData,
        }
    }
}

/// `value op threshold` for the ordering operators; false for the others
/// (compile refuses that pairing, so it is never reached).
fn order<T: PartialOrd>(op: ComparisonOperator, value: &T, threshold: &T) -> bool {
    use ComparisonOperator::*;
    match op {
        LessThan => value < threshold,
        LessThanEquals => value <= threshold,
        GreaterThan => value > threshold,
        GreaterThanEquals => value >= threshold,
        _ => false,
    }
}

/// As [`order`]; a NaN measurement satisfies nothing and so violates.
fn order_f64(op: ComparisonOperator, value: f64, threshold: f64) -> bool {
    order(op, &value, &threshold)
}

/// The set operators: `in-*` complies when every element is in the set,
/// `not-in-*` when none is. Empty input complies either way.
fn membership<'a, T: 'a>(
    op: ComparisonOperator,
    mut items: impl Iterator<Item = &'a T>,
    in_set: impl Fn(&T) -> bool,
) -> bool {
    use ComparisonOperator::*;
    match op {
        InCidrSet | InPortSet | InSet => items.all(in_set),
        NotInCidrSet | NotInPortSet | NotInSet => !items.any(in_set),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::percentile::fleet_threshold;
    use serde_json::json;
    use ComparisonOperator::*;

    fn compiled(metric: &str, criteria: serde_json::Value) -> CompiledBehavior {
        let b: Behavior =
            serde_json::from_value(json!({"name": "b", "metric": metric, "criteria": criteria}))
                .expect("test behaviour parses");
        CompiledBehavior::compile(&b).expect("compiles")
    }

    fn count_rule(op: ComparisonOperator, t: u64) -> CompiledBehavior {
        compiled(
            "aws:num-messages-sent",
            json!({"comparisonOperator": op, "value": {"count": t}, "durationSeconds": 300}),
        )
    }

    fn ips(v: &[&str]) -> Measurement {
        Measurement::Ips(v.iter().map(|s| s.parse().expect("test ip")).collect())
    }

    const C: Verdict = Verdict::Complies;
    const V: Verdict = Verdict::Violates;

    #[test]
    fn ordering_operators_on_counts() {
        let table = [
            (LessThan, [C, V, V]),
            (LessThanEquals, [C, C, V]),
            (GreaterThan, [V, V, C]),
            (GreaterThanEquals, [V, C, C]),
        ];
        for (op, expect) in table {
            let b = count_rule(op, 5);
            for (v, e) in [4u64, 5, 6].into_iter().zip(expect) {
                assert_eq!(b.judge(&Measurement::Count(v), None), e, "{v} {op}");
            }
        }
    }

    #[test]
    fn ordering_operators_on_numbers() {
        let table = [
            (LessThan, [C, V, V]),
            (LessThanEquals, [C, C, V]),
            (GreaterThan, [V, V, C]),
            (GreaterThanEquals, [V, C, C]),
        ];
        for (op, expect) in table {
            let b = compiled(
                "batteryPercentage",
                json!({"comparisonOperator": op, "value": {"number": -1.5}}),
            );
            for (v, e) in [-2.0, -1.5, 0.0].into_iter().zip(expect) {
                assert_eq!(b.judge(&Measurement::Number(v), None), e, "{v} {op}");
            }
            assert_eq!(
                b.judge(&Measurement::Number(f64::NAN), None),
                V,
                "NaN never complies"
            );
        }
    }

    /// Spec §13 case 2: the boundary.
    #[test]
    fn case_02_boundary() {
        assert_eq!(
            count_rule(LessThan, 5).judge(&Measurement::Count(5), None),
            V
        );
        assert_eq!(
            count_rule(LessThanEquals, 5).judge(&Measurement::Count(5), None),
            C
        );
    }

    /// Spec §13 case 8: source IP outside the allowed blocks.
    #[test]
    fn case_08_source_ip_not_in_cidr_set() {
        let b = compiled(
            "aws:source-ip-address",
            json!({"comparisonOperator": "not-in-cidr-set",
            "value": {"cidrs": ["12.8.0.0/16", "15.102.16.0/24"]}}),
        );
        assert_eq!(
            b.evaluate(Some(&ips(&["12.8.1.2"])), None),
            DatapointOutcome::Violating(MetricValue::cidrs(["12.8.1.2"]))
        );
        assert_eq!(b.judge(&ips(&["8.8.8.8"]), None), C);
        assert_eq!(b.judge(&ips(&["15.102.16.200"]), None), V);
    }

    #[test]
    fn cidr_sets() {
        let inset = compiled(
            "aws:destination-ip-addresses",
            json!({"comparisonOperator": "in-cidr-set",
            "value": {"cidrs": ["10.0.0.0/8", "2001:db8::/32"]}}),
        );
        let notin = compiled(
            "aws:destination-ip-addresses",
            json!({"comparisonOperator": "not-in-cidr-set",
            "value": {"cidrs": ["10.0.0.0/8", "2001:db8::/32"]}}),
        );
        for (m, i, n) in [
            (ips(&["10.1.2.3", "2001:db8::5"]), C, V),
            (ips(&["10.1.2.3", "8.8.8.8"]), V, V),
            (ips(&["8.8.8.8"]), V, C),
            (ips(&[]), C, C),
        ] {
            assert_eq!(inset.judge(&m, None), i, "in {m:?}");
            assert_eq!(notin.judge(&m, None), n, "not-in {m:?}");
        }
    }

    /// Spec §13 case 9: listening ports; the empty list complies.
    #[test]
    fn case_09_listening_ports() {
        let b = compiled(
            "aws:listening-tcp-ports",
            json!({"comparisonOperator": "in-port-set", "value": {"ports": [8888]}}),
        );
        assert_eq!(b.judge(&Measurement::Ports(vec![8888, 443]), None), V);
        assert_eq!(b.judge(&Measurement::Ports(vec![8888]), None), C);
        assert_eq!(b.judge(&Measurement::Ports(vec![]), None), C);
        let n = compiled(
            "aws:listening-udp-ports",
            json!({"comparisonOperator": "not-in-port-set", "value": {"ports": [23, 21, 23]}}),
        );
        assert_eq!(n.judge(&Measurement::Ports(vec![443, 21]), None), V);
        assert_eq!(n.judge(&Measurement::Ports(vec![443]), None), C);
        assert_eq!(n.judge(&Measurement::Ports(vec![]), None), C);
    }

    #[test]
    fn string_and_number_sets() {
        let s = compiled(
            "apps",
            json!({"comparisonOperator": "in-set", "value": {"strings": ["b", "a"]}}),
        );
        let strings =
            |v: &[&str]| Measurement::Strings(v.iter().map(|s| (*s).to_owned()).collect());
        assert_eq!(s.judge(&strings(&["a", "b", "a"]), None), C);
        assert_eq!(s.judge(&strings(&["a", "c"]), None), V);
        assert_eq!(s.judge(&strings(&[]), None), C);
        let ns = compiled(
            "apps",
            json!({"comparisonOperator": "not-in-set", "value": {"strings": ["x"]}}),
        );
        assert_eq!(ns.judge(&strings(&["a"]), None), C);
        assert_eq!(ns.judge(&strings(&["a", "x"]), None), V);

        let n = compiled(
            "codes",
            json!({"comparisonOperator": "in-set", "value": {"numbers": [1.5, 0.0, -3.0]}}),
        );
        assert_eq!(
            n.judge(&Measurement::Numbers(vec![1.5, -0.0, -3.0]), None),
            C,
            "-0 is 0"
        );
        assert_eq!(n.judge(&Measurement::Numbers(vec![1.5, 2.0]), None), V);
        let nn = compiled(
            "codes",
            json!({"comparisonOperator": "not-in-set", "value": {"numbers": [7.0]}}),
        );
        assert_eq!(nn.judge(&Measurement::Numbers(vec![1.0]), None), C);
        assert_eq!(nn.judge(&Measurement::Numbers(vec![7.0]), None), V);
        assert_eq!(nn.judge(&Measurement::Numbers(vec![]), None), C);
    }

    /// Spec §13 case 10: message size is judged per message.
    #[test]
    fn case_10_message_size() {
        let b = compiled(
            "aws:message-byte-size",
            json!({"comparisonOperator": "less-than-equals", "value": {"count": 1024}}),
        );
        assert_eq!(b.judge(&Measurement::Count(2000), None), V);
        assert_eq!(b.judge(&Measurement::Count(1024), None), C);
    }

    /// Spec §13 case 15: statistical threshold with nearest rank; a negative
    /// custom value means no threshold and no firing.
    #[test]
    fn case_15_statistical_p90() {
        let b = compiled(
            "aws:num-messages-sent",
            json!({"comparisonOperator": "less-than-equals",
            "statisticalThreshold": {"statistic": "p90"}, "durationSeconds": 300}),
        );
        let statistic = b.statistic().expect("statistical");
        let mut fleet: Vec<f64> = (1..=10).map(f64::from).collect();
        let t = fleet_threshold(&mut fleet, statistic, 1).expect("threshold");
        assert_eq!(t, 9.0);
        let violators: Vec<u64> = (1..=10)
            .filter(|v| b.judge(&Measurement::Count(*v), Some(t)) == V)
            .collect();
        assert_eq!(violators, vec![10]);

        let custom = compiled(
            "batteryPercentage",
            json!({"comparisonOperator": "less-than-equals",
            "statisticalThreshold": {"statistic": "p90"}}),
        );
        let mut values = vec![1.0, -1.0, 50.0];
        let t = fleet_threshold(&mut values, statistic, 1).ok();
        assert_eq!(t, None);
        assert_eq!(
            custom.judge(&Measurement::Number(99.0), t),
            Verdict::NotEvaluated(NotEvaluated::NoFleetThreshold)
        );
        assert_eq!(
            custom.evaluate(Some(&Measurement::Number(99.0)), t),
            DatapointOutcome::NoData
        );
    }

    /// Spec §13 case 16 (evaluation half): minutes disconnected.
    #[test]
    fn case_16_disconnect_duration() {
        let b = compiled(
            "aws:disconnect-duration",
            json!({"comparisonOperator": "less-than-equals", "value": {"count": 5}}),
        );
        assert_eq!(b.judge(&Measurement::Count(6), None), V);
        assert_eq!(b.judge(&Measurement::Count(0), None), C);
    }

    #[test]
    fn no_data_and_mismatches() {
        let b = count_rule(LessThan, 5);
        assert_eq!(b.evaluate(None, None), DatapointOutcome::NoData);
        assert_eq!(
            b.judge(&Measurement::Ports(vec![1]), None),
            Verdict::NotEvaluated(NotEvaluated::KindMismatch)
        );
        assert_eq!(
            b.evaluate(Some(&Measurement::Count(1)), None),
            DatapointOutcome::NotViolating(MetricValue::count(1))
        );
        let ml = compiled(
            "aws:num-messages-sent",
            json!({"mlDetectionConfig": {"confidenceLevel": "LOW"}}),
        );
        assert!(ml.is_machine_learning());
        assert_eq!(
            ml.judge(&Measurement::Count(1), None),
            Verdict::NotEvaluated(NotEvaluated::MachineLearning)
        );
    }

    #[test]
    fn compile_errors() {
        let bad = |criteria: serde_json::Value| {
            let b: Behavior =
                serde_json::from_value(json!({"name": "b", "criteria": criteria})).expect("parses");
            CompiledBehavior::compile(&b).expect_err("must not compile")
        };
        assert_eq!(
            CompiledBehavior::compile(&Behavior {
                name: "b".into(),
                ..Behavior::default()
            }),
            Err(CompileError::NoCriteria("b".into()))
        );
        assert_eq!(
            bad(json!({"value": {"count": 1}})),
            CompileError::NoOperator("b".into())
        );
        assert_eq!(
            bad(json!({"comparisonOperator": "in-set", "value": {"count": 1}})),
            CompileError::NoThreshold("b".into())
        );
        assert_eq!(
            bad(json!({"comparisonOperator": "less-than", "value": {"ports": [1]}})),
            CompileError::NoThreshold("b".into())
        );
        assert!(
            matches!(bad(json!({"comparisonOperator": "in-cidr-set", "value": {"cidrs": ["x"]}})), CompileError::BadCidr(n, _) if n == "b")
        );
        assert_eq!(
            bad(
                json!({"comparisonOperator": "less-than", "statisticalThreshold": {"statistic": "p42"}})
            ),
            CompileError::BadStatistic("b".into())
        );
        assert_eq!(
            bad(
                json!({"comparisonOperator": "in-set", "statisticalThreshold": {"statistic": "p50"}})
            ),
            CompileError::NoThreshold("b".into())
        );
    }

    #[test]
    fn measurement_values() {
        assert_eq!(
            Measurement::Ports(vec![1, 2]).to_metric_value(),
            MetricValue::ports([1, 2])
        );
        assert_eq!(
            Measurement::Numbers(vec![1.0]).to_metric_value(),
            MetricValue::numbers([1.0])
        );
        assert_eq!(
            Measurement::Strings(vec!["a".into()]).to_metric_value(),
            MetricValue::strings(["a"])
        );
        assert_eq!(
            Measurement::Number(2.5).to_metric_value(),
            MetricValue::number(2.5)
        );
        assert_eq!(Measurement::Ports(vec![]).as_scalar(), None);
    }
}
