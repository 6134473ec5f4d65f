//! `wardmq defender replay`: a metrics CSV through the detector and the
//! alarm state machine the live engine uses, alarm events out as JSON
//! lines.
//!
//! Input rows are sorted by `ts` (epoch seconds, one period apart), one per
//! (device, datapoint), under [`HEADER`]. Every profile gets one ML
//! behaviour per metric at confidence LOW, so each alarm reports the
//! highest level it reached. Rows are judged a period at a time, when the
//! next period's first row arrives: nothing after a period is read before
//! it is judged, and models train at the data clock's midnight on what came
//! before it.
//!
//! Output lines:
//! `{"ts":…,"device_id":…,"profile":…,"metric":…,"event":"in-alarm"|"alarm-cleared","level":…,"score":…}`.
//! `in-alarm` carries the level and score of the datapoint that raised it,
//! `alarm-cleared` the highest of the alarm's life; `device_id` is empty
//! for a profile-level (fleet) alarm. Alarms invalidated after two days
//! without data are dropped silently (the format has no such event).

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::sync::Arc;

use serde::Serialize;

use super::detector::{Detector, DetectorConfig, Judgement, MetricKind, PeriodResult};
use super::level::Level;
use super::workload::{two_mut, workload_gate, RECEIVED, SENT};
use crate::alarms::{AlarmBook, AlarmConfig, AlarmKey, ViolationIdGen};
use crate::detect::model::{
    Behavior, BehaviorCriteria, ConfidenceLevel, MachineLearningDetectionConfig, Timestamp,
    ViolationEventType,
};

pub const HEADER: &str = "ts,device_id,profile,auth_failures,conn_attempts,disconnects,msgs_sent,msgs_received,msg_bytes_mean,msg_bytes_max";

/// The CSV column behind each ML behaviour. `aws:message-byte-size` is the
/// period's largest message, as the live collector measures it.
pub const METRICS: [(usize, &str); 6] = [
    (3, "aws:num-authorization-failures"),
    (4, "aws:num-connection-attempts"),
    (5, "aws:num-disconnects"),
    (6, "aws:num-messages-sent"),
    (7, "aws:num-messages-received"),
    (9, "aws:message-byte-size"),
];

/// The index in [`METRICS`] of `metric`.
fn metric_index(metric: &str) -> Option<usize> {
    METRICS.iter().position(|(_, m)| *m == metric)
}

#[derive(Clone, Debug, PartialEq)]
pub struct ReplayOptions {
    pub detector: DetectorConfig,
    /// `consecutiveDatapointsToClear` of every ML behaviour (1–10).
    pub clear_after: u32,
    /// Confidence of every ML behaviour. The replay command keeps LOW (so
    /// alarms report the highest level reached); the simulator's scorer
    /// replays at each level to time detections per level.
    pub confidence: Level,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        Self {
            detector: DetectorConfig::default(),
            clear_after: 3,
            confidence: Level::Low,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("reading the input: {0}")]
    Read(std::io::Error),
    #[error("writing the output: {0}")]
    Write(std::io::Error),
    #[error("line 1: the header must be `{HEADER}`")]
    Header,
    #[error("line {line}: {reason}")]
    Row { line: u64, reason: String },
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayStats {
    pub rows: u64,
    pub periods: u64,
    pub events: u64,
}

#[derive(Serialize)]
struct OutLine<'a> {
    ts: i64,
    device_id: &'a str,
    profile: &'a str,
    metric: &'a str,
    event: &'static str,
    level: &'static str,
    score: f64,
}

/// One (profile, metric)'s judgements, each with the datapoint's value.
type Judged = (Arc<str>, usize, Vec<(Judgement, f64)>);

struct Profile {
    name: Arc<str>,
    detectors: Vec<Detector>,
    /// This period's datapoints, per metric.
    pending: Vec<Vec<(Arc<str>, f64)>>,
}

/// The ML behaviour every replayed metric gets.
pub fn ml_behavior(metric: &str, confidence: Level, clear_after: u32) -> Behavior {
    Behavior {
        name: metric.to_owned(),
        metric: Some(metric.to_owned()),
        criteria: Some(BehaviorCriteria {
            ml_detection_config: Some(MachineLearningDetectionConfig {
                confidence_level: ConfidenceLevel::from(confidence),
            }),
            consecutive_datapoints_to_clear: Some(clear_after.clamp(1, 10)),
            ..BehaviorCriteria::default()
        }),
        ..Behavior::default()
    }
}

pub struct Replay<W: Write> {
    opts: ReplayOptions,
    out: W,
    profiles: BTreeMap<Arc<str>, Profile>,
    names: HashMap<String, Arc<str>>,
    behaviors: Vec<(Arc<str>, Arc<Behavior>)>,
    book: AlarmBook,
    /// Highest level and score of each open alarm.
    peaks: HashMap<AlarmKey, (Level, f64)>,
    fleet_name: Arc<str>,
    stats: ReplayStats,
}

impl<W: Write> Replay<W> {
    pub fn new(opts: ReplayOptions, out: W) -> Self {
        let behaviors = METRICS
            .iter()
            .map(|(_, m)| {
                (
                    Arc::from(*m),
                    Arc::new(ml_behavior(m, opts.confidence, opts.clear_after)),
                )
            })
            .collect();
        Self {
            opts,
            out,
            profiles: BTreeMap::new(),
            names: HashMap::new(),
            behaviors,
            book: AlarmBook::new(AlarmConfig::default(), ViolationIdGen::new(0)),
            peaks: HashMap::new(),
            fleet_name: Arc::from(""),
            stats: ReplayStats::default(),
        }
    }

    fn intern(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.names.get(s) {
            return Arc::clone(a);
        }
        let a: Arc<str> = Arc::from(s);
        self.names.insert(s.to_owned(), Arc::clone(&a));
        a
    }

    /// Reads the whole input, judging period by period.
    pub fn run(mut self, input: impl BufRead) -> Result<(ReplayStats, W), ReplayError> {
        let mut lines = input.lines();
        let header = lines.next().transpose().map_err(ReplayError::Read)?;
        if header.as_deref().map(str::trim) != Some(HEADER) {
            return Err(ReplayError::Header);
        }
        let mut current: Option<i64> = None;
        for (line_no, line) in (2u64..).zip(lines) {
            let line = line.map_err(ReplayError::Read)?;
            if line.trim().is_empty() {
                continue;
            }
            let row = parse_row(&line).map_err(|reason| ReplayError::Row {
                line: line_no,
                reason,
            })?;
            match current {
                Some(t) if row.ts < t => {
                    return Err(ReplayError::Row {
                        line: line_no,
                        reason: format!("rows must be sorted by ts; {} comes after {t}", row.ts),
                    })
                }
                Some(t) if row.ts > t => {
                    self.close_period(t)?;
                    current = Some(row.ts);
                }
                Some(_) => {}
                None => current = Some(row.ts),
            }
            self.add(row);
        }
        if let Some(t) = current {
            self.close_period(t)?;
        }
        self.out.flush().map_err(ReplayError::Write)?;
        Ok((self.stats, self.out))
    }

    fn add(&mut self, row: Row<'_>) {
        self.stats.rows += 1;
        let device = self.intern(row.device);
        let profile = self.intern(row.profile);
        let cfg = &self.opts.detector;
        let p = self
            .profiles
            .entry(Arc::clone(&profile))
            .or_insert_with(|| Profile {
                name: profile,
                detectors: METRICS
                    .iter()
                    .map(|(_, m)| Detector::new(MetricKind::of_metric(m), cfg.clone()))
                    .collect(),
                pending: vec![Vec::new(); METRICS.len()],
            });
        for (i, v) in row.values.iter().enumerate() {
            p.pending[i].push((Arc::clone(&device), *v));
        }
    }

    fn close_period(&mut self, ts: i64) -> Result<(), ReplayError> {
        self.stats.periods += 1;
        let now = Timestamp::from_secs(u64::try_from(ts).unwrap_or(0));
        // Alarms of devices gone quiet for two days: dropped, as AWS does.
        for ev in self.book.sweep(now) {
            let key = AlarmKey::new(
                &Arc::from(ev.thing_name.as_str()),
                &Arc::from(ev.security_profile_name.as_str()),
                &Arc::from(ev.behavior.name.as_str()),
            );
            self.peaks.remove(&key);
        }
        let mut judged: Vec<Judged> = Vec::new();
        for p in self.profiles.values_mut() {
            let pending = std::mem::take(&mut p.pending);
            let mut results: Vec<PeriodResult> = p
                .detectors
                .iter_mut()
                .zip(&pending)
                .map(|(det, values)| det.judge_period(ts, values))
                .collect();
            if let (Some(si), Some(ri)) = (metric_index(SENT), metric_index(RECEIVED)) {
                if let (Some((sd, rd)), Some((s_res, r_res))) = (
                    two_mut(&mut p.detectors, si, ri),
                    two_mut(&mut results, si, ri),
                ) {
                    workload_gate((sd, s_res), (rd, r_res), ts);
                }
            }
            p.pending = vec![Vec::new(); METRICS.len()];
            for (i, (r, values)) in results.into_iter().zip(pending).enumerate() {
                let by_device: HashMap<&str, f64> =
                    values.iter().map(|(d, v)| (&**d, *v)).collect();
                let mut js: Vec<(Judgement, f64)> = r
                    .devices
                    .into_iter()
                    .map(|j| {
                        let v = by_device.get(&*j.device).copied().unwrap_or(0.0);
                        (j, v)
                    })
                    .collect();
                if let Some(f) = r.fleet {
                    let v = f.observed;
                    js.push((f, v));
                }
                judged.push((Arc::clone(&p.name), i, js));
            }
        }
        for (profile, i, js) in judged {
            let (metric, behavior) = self.behaviors[i].clone();
            for (j, value) in js {
                let thing = if j.device.is_empty() {
                    Arc::clone(&self.fleet_name)
                } else {
                    Arc::clone(&j.device)
                };
                let key = AlarmKey::new(&thing, &profile, &metric);
                let outcome = j.outcome(self.opts.confidence, value);
                let event = self.book.observe(&key, &behavior, outcome, now);
                if let Some(l) = j.level {
                    if let Some(peak) = self.peaks.get_mut(&key) {
                        *peak = (peak.0.max(l), peak.1.max(j.score));
                    }
                }
                let Some(ev) = event else { continue };
                let (kind, level, score) = match ev.violation_event_type {
                    ViolationEventType::InAlarm => {
                        let l = j.level.unwrap_or(self.opts.confidence);
                        self.peaks.insert(key.clone(), (l, j.score));
                        ("in-alarm", l, j.score)
                    }
                    ViolationEventType::AlarmCleared => {
                        let (l, s) = self
                            .peaks
                            .remove(&key)
                            .unwrap_or((self.opts.confidence, j.score));
                        ("alarm-cleared", l, s)
                    }
                    ViolationEventType::AlarmInvalidated => continue,
                };
                let line = OutLine {
                    ts,
                    device_id: &j.device,
                    profile: &profile,
                    metric: &metric,
                    event: kind,
                    level: level.as_str(),
                    score: (score * 1000.0).round() / 1000.0,
                };
                serde_json::to_writer(&mut self.out, &line)
                    .map_err(|e| ReplayError::Write(e.into()))?;
                self.out.write_all(b"\n").map_err(ReplayError::Write)?;
                self.stats.events += 1;
            }
        }
        Ok(())
    }
}

struct Row<'a> {
    ts: i64,
    device: &'a str,
    profile: &'a str,
    values: [f64; METRICS.len()],
}

fn parse_row(line: &str) -> Result<Row<'_>, String> {
    let fields: Vec<&str> = line.trim_end_matches('\r').split(',').collect();
    if fields.len() != 10 {
        return Err(format!("expected 10 fields, found {}", fields.len()));
    }
    let ts: i64 = fields[0]
        .parse()
        .map_err(|_| format!("ts '{}' is not an integer", fields[0]))?;
    if ts < 0 {
        return Err(format!("ts {ts} is before 1970"));
    }
    if fields[1].is_empty() || fields[2].is_empty() {
        return Err("device_id and profile must not be empty".to_owned());
    }
    let mut values = [0.0; METRICS.len()];
    for (v, (col, _)) in values.iter_mut().zip(METRICS.iter()) {
        let f = fields[*col];
        let x: f64 = if f.is_empty() {
            0.0
        } else {
            f.parse().map_err(|_| {
                format!(
                    "{} '{f}' is not a number",
                    HEADER.split(',').nth(*col).unwrap_or("")
                )
            })?
        };
        if !x.is_finite() || x < 0.0 {
            return Err(format!("value '{f}' must be a finite number ≥ 0"));
        }
        *v = x;
    }
    // msg_bytes_mean must still be a number, even though no behaviour reads it.
    if !fields[8].is_empty() && fields[8].parse::<f64>().is_err() {
        return Err(format!("msg_bytes_mean '{}' is not a number", fields[8]));
    }
    Ok(Row {
        ts,
        device: fields[1],
        profile: fields[2],
        values,
    })
}

/// Replays `input` into `out` (JSON lines).
pub fn replay(
    input: impl BufRead,
    out: impl Write,
    opts: ReplayOptions,
) -> Result<ReplayStats, ReplayError> {
    Replay::new(opts, out).run(input).map(|(s, _)| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(rows: &[String]) -> String {
        let mut s = format!("{HEADER}\n");
        for r in rows {
            s.push_str(r);
            s.push('\n');
        }
        s
    }

    #[test]
    fn flood_alarms_then_clears() {
        let mut opts = ReplayOptions::default();
        opts.detector.gate.min_days = 2;
        opts.detector.gate.min_datapoints = 100;
        opts.clear_after = 1;
        let t0 = 1_717_372_800i64;
        let mut rows = Vec::new();
        for p in 0..3 * 288 {
            let ts = t0 + p * 300;
            for d in 0..10 {
                let sent = if d == 3 && p == 2 * 288 + 100 {
                    500
                } else {
                    10 + (p + d) % 3
                };
                rows.push(format!("{ts},dev{d},home,0,0,0,{sent},5,100,{}", 120 + d));
            }
        }
        let mut out = Vec::new();
        let stats = replay(csv(&rows).as_bytes(), &mut out, opts).expect("replay");
        assert_eq!(stats.rows, 3 * 288 * 10);
        let text = String::from_utf8(out).expect("utf8");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        let raised: Vec<_> = lines.iter().filter(|l| l["event"] == "in-alarm").collect();
        assert_eq!(raised.len(), 1, "{text}");
        let r = raised[0];
        assert_eq!(r["device_id"], "dev3");
        assert_eq!(r["profile"], "home");
        assert_eq!(r["metric"], "aws:num-messages-sent");
        assert_eq!(r["level"], "HIGH");
        assert_eq!(r["ts"], t0 + (2 * 288 + 100) * 300);
        assert!(r["score"].as_f64().unwrap_or(0.0) >= 8.0);
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        let bad = |body: &str| {
            let mut out = Vec::new();
            replay(body.as_bytes(), &mut out, ReplayOptions::default())
                .expect_err("must fail")
                .to_string()
        };
        assert!(bad("ts,device\n").contains("header"));
        let h = HEADER;
        assert!(bad(&format!("{h}\n10,a,p,0,0,0,1,1,1\n")).contains("line 2: expected 10 fields"));
        assert!(bad(&format!("{h}\nx,a,p,0,0,0,1,1,1,1\n")).contains("not an integer"));
        assert!(bad(&format!("{h}\n10,a,p,0,0,-1,1,1,1,1\n")).contains("≥ 0"));
        assert!(bad(&format!(
            "{h}\n600,a,p,0,0,0,1,1,1,1\n300,a,p,0,0,0,1,1,1,1\n"
        ))
        .contains("sorted"));
    }
}
