//! The workloads: who connects, who publishes what to whom, and how a run's
//! messages are counted and timed.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use bytes::{Bytes, BytesMut};
use indicatif::{ProgressBar, ProgressStyle};
use mqttbytes::v4::{Packet, Publish};
use mqttbytes::QoS;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::client::{self, Ack, Conn, Endpoint};
use crate::payload::{self, Clock};
use crate::pki::BenchPki;
use crate::procstat;
use crate::stats::Latency;

/// Unacknowledged QoS 1/2 publishes one publisher keeps in flight.
pub const WINDOW: usize = 100;
/// Publishes encoded per write when sending flat out.
const BATCH: usize = 64;
/// Connection attempts in progress at once while setting up or storming;
/// bounded so the bench does not exhaust its own file descriptors or the
/// broker's accept backlog.
const CONNECT_CONCURRENCY: usize = 200;
/// After publishers stop: how long to wait for the last deliveries, and how
/// long without any progress ends the wait early.
const DRAIN_MAX: Duration = Duration::from_secs(10);
const DRAIN_IDLE: Duration = Duration::from_secs(2);
/// Longest a storm or idle run may take to connect everything.
const CONNECT_PHASE_MAX: Duration = Duration::from_secs(120);
/// Time for the broker's memory to settle before an idle run reads it.
const IDLE_SETTLE: Duration = Duration::from_secs(1);
/// How long an idle connection may take to answer the final PINGREQ.
const PING_TIMEOUT: Duration = Duration::from_secs(20);

/// Who talks to whom.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pattern {
    /// `publishers` clients on their own topics, one subscriber to all.
    FanIn { publishers: usize },
    /// One publisher, `subscribers` clients on its topic.
    FanOut { subscribers: usize },
    /// `pairs` publisher/subscriber pairs, each on its own topic.
    Pairs { pairs: usize },
    /// `connections` clients connect as fast as the broker lets them (or at
    /// `rate` per second) and stay connected until all are in.
    Storm {
        connections: usize,
        rate: Option<f64>,
    },
    /// `connections` clients connect and sit idle for `hold`: broker memory
    /// per connection; then each must answer a PINGREQ.
    Idle { connections: usize, hold: Duration },
    /// `pairs` publisher/subscriber pairs at the scenario's rate through
    /// quiet and attacked phases in turn (`stormp99.rs`).
    UnderAttack { pairs: usize },
}

#[derive(Clone, Debug)]
pub struct Scenario {
    pub name: &'static str,
    pub about: &'static str,
    pub pattern: Pattern,
    pub qos: u8,
    pub payload: usize,
    /// Total publish rate across publishers in messages per second; `None`
    /// sends flat out (QoS 1/2 limited by the in-flight window).
    pub rate: Option<f64>,
    /// The rate is half of Mosquitto's maximum: the runner first runs this
    /// scenario flat out against Mosquitto, in the same round, and then
    /// every target at half that throughput.
    pub half_mosquitto_rate: bool,
    /// wardmq keeps its default connection-rate limits (the bench turns
    /// them off elsewhere, since it connects thousands of clients at once).
    pub admission: bool,
}

const fn traffic(
    name: &'static str,
    about: &'static str,
    pattern: Pattern,
    qos: u8,
    payload: usize,
    rate: Option<f64>,
) -> Scenario {
    Scenario {
        name,
        about,
        pattern,
        qos,
        payload,
        rate,
        half_mosquitto_rate: false,
        admission: false,
    }
}

/// Every scenario the bench knows.
pub fn catalog() -> Vec<Scenario> {
    use Pattern::*;
    vec![
        traffic("fanin-qos0", "20 publishers flat out -> 1 subscriber, QoS 0, 64 B", FanIn { publishers: 20 }, 0, 64, None),
        traffic("fanin-qos1", "20 publishers flat out (window 100) -> 1 subscriber, QoS 1, 64 B", FanIn { publishers: 20 }, 1, 64, None),
        traffic("fanin-qos2", "20 publishers flat out (window 100) -> 1 subscriber, QoS 2, 64 B", FanIn { publishers: 20 }, 2, 64, None),
        traffic("fanout-qos0", "1 publisher at 1000 msg/s -> 50 subscribers, QoS 0, 64 B", FanOut { subscribers: 50 }, 0, 64, Some(1000.0)),
        traffic("fanout-qos1", "1 publisher at 1000 msg/s -> 50 subscribers, QoS 1, 64 B", FanOut { subscribers: 50 }, 1, 64, Some(1000.0)),
        traffic("pairs-qos0", "50 pairs flat out, QoS 0, 64 B", Pairs { pairs: 50 }, 0, 64, None),
        traffic("pairs-qos1", "50 pairs flat out (window 100), QoS 1, 64 B", Pairs { pairs: 50 }, 1, 64, None),
        traffic("pairs-qos2", "50 pairs flat out (window 100), QoS 2, 64 B", Pairs { pairs: 50 }, 2, 64, None),
        traffic("latency-qos1", "10 pairs at 2000 msg/s in total, QoS 1, 64 B: latency at equal load", Pairs { pairs: 10 }, 1, 64, Some(2000.0)),
        Scenario {
            half_mosquitto_rate: true,
            ..traffic("halfrate-qos1", "50 pairs, QoS 1, 64 B, at half the rate Mosquitto reaches flat out (probed first in the same round): p99 at equal, moderate load", Pairs { pairs: 50 }, 1, 64, None)
        },
        traffic("pairs-qos1-4k", "20 pairs flat out (window 100), QoS 1, 4 KiB", Pairs { pairs: 20 }, 1, 4096, None),
        traffic("pairs-qos0-64k", "10 pairs at 2000 msg/s in total, QoS 0, 64 KiB", Pairs { pairs: 10 }, 0, 65536, Some(2000.0)),
        traffic("storm", "5000 clients connect flat out (200 at a time); rate = CONNACKs/s, latency = CONNECT->CONNACK", Storm { connections: 5000, rate: None }, 0, 0, None),
        Scenario {
            admission: true,
            ..traffic("storm-p99", "50 pairs at 200 msg/s in total, QoS 1, 64 B, in quiet and attacked phases by turns (unknown-CA handshakes and a CONNECT flood from 2000 addresses, wardmq with its default rate limits): p99 under attack / p99 quiet", UnderAttack { pairs: 50 }, 1, 64, Some(200.0))
        },
        traffic("idle", "5000 idle connections; broker RSS growth per connection", Idle { connections: 5000, hold: IDLE_SETTLE }, 0, 0, None),
        traffic("idle-50k", "50,000 idle connections held 5 s (over several source addresses); RSS per connection, all still answering?", Idle { connections: 50_000, hold: Duration::from_secs(5) }, 0, 0, None),
    ]
}

/// The default `compare` set: a few seconds each, covering every kind.
pub const QUICK: &[&str] = &[
    "fanin-qos0",
    "fanin-qos1",
    "fanout-qos0",
    "pairs-qos2",
    "latency-qos1",
    "halfrate-qos1",
    "pairs-qos1-4k",
    "storm",
    "idle",
];

pub fn find(name: &str) -> Result<Scenario> {
    catalog()
        .into_iter()
        .find(|s| s.name == name)
        .ok_or_else(|| {
            let names: Vec<_> = catalog().iter().map(|s| s.name).collect();
            anyhow!("unknown scenario `{name}`; known: {}", names.join(", "))
        })
}

/// What one scenario run measured on the client side.
#[derive(Debug)]
pub struct Measured {
    /// Messages published (or connections attempted).
    pub sent: u64,
    /// Messages delivered to subscribers (or connections established).
    pub received: u64,
    /// Deliveries the broker owed: `sent` times the fan-out.
    pub expected: u64,
    /// From the start of traffic to the last delivery.
    pub elapsed: Duration,
    pub latency: Latency,
    /// Broker RSS growth per idle connection, KiB.
    pub mem_per_conn_kib: Option<f64>,
    /// Client failures (refused connections, dropped sockets), counted
    /// rather than aborting the run; the first is kept.
    pub errors: u64,
    pub first_error: Option<String>,
    /// Remarks for the report (a capped connection count, idle liveness).
    pub notes: Vec<String>,
    /// storm-p99: latency by phase and what the attackers achieved.
    pub attack: Option<crate::stormp99::UnderAttack>,
}

/// Settings that apply to every scenario of a run.
#[derive(Clone, Debug)]
pub struct RunSettings {
    pub duration: Duration,
    /// Persistent sessions (clean session 0) when persistence is on.
    pub persistent: bool,
    pub show_progress: bool,
    /// Most connections one storm or idle run may hold: the open-file
    /// limit (bench and broker alike) less a reserve.
    pub max_connections: usize,
    /// `--tls`: the bench PKI (storm-p99 makes its unknown-CA attackers
    /// from it).
    pub pki: Option<Arc<BenchPki>>,
}

impl Scenario {
    /// The longest a run may take before it is abandoned: a backstop for a
    /// broker that stops reading, which would otherwise leave a client
    /// blocked in a write forever.
    pub fn time_limit(&self, duration: Duration) -> Duration {
        match self.pattern {
            Pattern::Storm { .. } => CONNECT_PHASE_MAX + Duration::from_secs(30),
            Pattern::Idle { hold, .. } => {
                CONNECT_PHASE_MAX + hold + PING_TIMEOUT + Duration::from_secs(30)
            }
            Pattern::UnderAttack { .. } => {
                crate::stormp99::span(duration) + 2 * DRAIN_MAX + CONNECT_PHASE_MAX
            }
            _ => duration + 2 * DRAIN_MAX + CONNECT_PHASE_MAX,
        }
    }

    /// Runs the scenario against `ep`. `broker_pid` is the broker's process
    /// when the bench started it (for the idle memory reading).
    pub async fn run(
        &self,
        ep: Endpoint,
        broker_pid: Option<u32>,
        settings: &RunSettings,
        label: &str,
    ) -> Result<Measured> {
        let qos = client::qos(self.qos)?;
        match self.pattern {
            Pattern::Storm { connections, rate } => {
                let (attempt, note) = capped(connections, settings.max_connections);
                let bar = progress(settings, label, attempt as u64);
                let (mut m, conns) = storm(ep, attempt, rate, settings.persistent, &bar).await?;
                bar.finish_and_clear();
                drop(conns);
                m.expected = connections as u64;
                m.notes.extend(note);
                Ok(m)
            }
            Pattern::Idle { connections, hold } => {
                let pid = broker_pid.ok_or_else(|| {
                    anyhow!(
                        "the idle scenario needs a broker the bench started (to read its memory)"
                    )
                })?;
                let (attempt, note) = capped(connections, settings.max_connections);
                let before = procstat::memory(pid)?.rss_kib;
                let bar = progress(settings, label, attempt as u64);
                let (mut m, mut conns) =
                    storm(ep, attempt, None, settings.persistent, &bar).await?;
                bar.finish_and_clear();
                m.expected = connections as u64;
                m.notes.extend(note);
                for c in &mut conns {
                    c.go_idle();
                }
                tokio::time::sleep(hold).await;
                let after = procstat::memory(pid)?.rss_kib;
                m.mem_per_conn_kib = per_connection_kib(before, after, conns.len());
                // Still there after the hold? Every connection must answer.
                let held = conns.len();
                let dead = ping_all(conns).await;
                if dead > 0 {
                    m.errors += dead as u64;
                    m.notes.push(format!(
                        "{dead} of {held} connections did not answer PINGREQ after {:.0} s idle",
                        hold.as_secs_f64()
                    ));
                } else {
                    m.notes.push(format!(
                        "all {held} connections answered PINGREQ after {:.0} s idle",
                        hold.as_secs_f64()
                    ));
                }
                Ok(m)
            }
            Pattern::UnderAttack { pairs } => {
                crate::stormp99::run(self, pairs, ep, qos, settings, label).await
            }
            _ => self.run_traffic(ep, qos, settings, label).await,
        }
    }

    async fn run_traffic(
        &self,
        ep: Endpoint,
        qos: QoS,
        settings: &RunSettings,
        label: &str,
    ) -> Result<Measured> {
        let clock = Clock::new();
        // A prefix unique to this run keeps a shared external broker's other
        // traffic (or a previous run's retained state) out of the counts.
        let tag = format!("{:08x}", clock.now_ns() as u32 ^ std::process::id());
        let prefix = format!("wardmq-bench/{tag}");
        let (sub_filters, pub_topics, fanout) = match self.pattern {
            Pattern::FanIn { publishers } => (
                vec![format!("{prefix}/in/+")],
                (0..publishers)
                    .map(|i| format!("{prefix}/in/{i}"))
                    .collect(),
                1,
            ),
            Pattern::FanOut { subscribers } => (
                vec![format!("{prefix}/out"); subscribers],
                vec![format!("{prefix}/out")],
                subscribers as u64,
            ),
            Pattern::Pairs { pairs } => {
                let topics: Vec<String> = (0..pairs).map(|i| format!("{prefix}/p/{i}")).collect();
                (topics.clone(), topics, 1)
            }
            Pattern::Storm { .. } | Pattern::Idle { .. } | Pattern::UnderAttack { .. } => {
                bail!("not a plain traffic scenario")
            }
        };

        let clean = !settings.persistent;
        let next_source = |_| client::source_addr(client::next_index());
        let sub_conns = connect_all(
            &ep,
            &format!("s{tag}"),
            sub_filters.len(),
            clean,
            next_source,
        )
        .await?;
        let mut subscribers = Vec::with_capacity(sub_conns.len());
        for (mut conn, filter) in sub_conns.into_iter().zip(&sub_filters) {
            conn.subscribe(filter, qos).await?;
            subscribers.push(conn);
        }
        let publishers = connect_all(
            &ep,
            &format!("p{tag}"),
            pub_topics.len(),
            clean,
            next_source,
        )
        .await?;

        let received = Arc::new(AtomicU64::new(0));
        let last_rx_ns = Arc::new(AtomicU64::new(0));
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut sub_tasks = JoinSet::new();
        for conn in subscribers {
            sub_tasks.spawn(subscribe_loop(
                conn,
                clock,
                received.clone(),
                last_rx_ns.clone(),
                stop_rx.clone(),
                Arc::new(|_| Some(0)),
                1,
            ));
        }

        // Everyone starts together, a moment after all tasks exist.
        let start = Instant::now() + Duration::from_millis(50);
        let deadline = start + settings.duration;
        let per_publisher_rate = self.rate.map(|r| r / pub_topics.len() as f64);
        let template = payload::encode(0, self.payload);
        let mut pub_tasks = JoinSet::new();
        for (conn, topic) in publishers.into_iter().zip(pub_topics) {
            let job = PublishJob {
                topic,
                qos,
                template: template.clone(),
                period: per_publisher_rate
                    .filter(|r| *r > 0.0)
                    .map(|r| Duration::from_secs_f64(1.0 / r)),
                start,
                deadline,
                clock,
            };
            pub_tasks.spawn(publish_loop(conn, job));
        }

        let bar = progress(settings, label, settings.duration.as_millis() as u64);
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let ms = Instant::now().saturating_duration_since(start).as_millis() as u64;
            bar.set_position(ms);
            bar.set_message(format!("{} delivered", received.load(Ordering::Relaxed)));
        }
        bar.finish_and_clear();

        let mut sent = 0;
        let mut errors = 0;
        let mut first_error = None;
        while let Some(joined) = pub_tasks.join_next().await {
            match joined.map_err(anyhow::Error::from).and_then(|r| r) {
                Ok(n) => sent += n,
                Err(e) => note_error(&mut errors, &mut first_error, e.context("publisher")),
            }
        }
        let expected = sent * fanout;

        drain(&received, expected).await;
        let _ = stop_tx.send(true);

        let mut latency = Latency::new()?;
        while let Some(joined) = sub_tasks.join_next().await {
            match joined.map_err(anyhow::Error::from).and_then(|r| r) {
                Ok(ls) => {
                    for l in &ls {
                        latency.merge(l)?;
                    }
                }
                Err(e) => note_error(&mut errors, &mut first_error, e.context("subscriber")),
            }
        }
        let received = received.load(Ordering::Relaxed);
        let last_rx = clock.instant(last_rx_ns.load(Ordering::Relaxed));
        Ok(Measured {
            sent,
            received,
            expected,
            elapsed: last_rx.saturating_duration_since(start),
            latency,
            mem_per_conn_kib: None,
            errors,
            first_error,
            notes: Vec::new(),
            attack: None,
        })
    }
}

/// How many of `wanted` connections a run can hold within `max`, and a
/// note saying why when that is fewer.
pub fn capped(wanted: usize, max: usize) -> (usize, Option<String>) {
    if wanted <= max {
        (wanted, None)
    } else {
        (
            max,
            Some(format!(
                "only {max} of {wanted} connections attempted: the open-file limit \
                 (see the report header) leaves room for no more in the bench and the broker"
            )),
        )
    }
}

/// Broker RSS growth per connection, KiB; `None` without connections.
pub fn per_connection_kib(before_kib: u64, after_kib: u64, conns: usize) -> Option<f64> {
    (conns > 0).then(|| after_kib.saturating_sub(before_kib) as f64 / conns as f64)
}

/// Pings every connection at once; returns how many did not answer in
/// time. The connections are closed afterwards.
async fn ping_all(conns: Vec<Conn>) -> usize {
    let mut tasks = JoinSet::new();
    for mut c in conns {
        tasks.spawn(async move {
            let ok = matches!(
                tokio::time::timeout(PING_TIMEOUT, c.ping()).await,
                Ok(Ok(()))
            );
            // Keep the connection open until every ping has been sent, so
            // closing some does not relieve the broker for the others.
            (ok, c)
        });
    }
    let mut dead = 0;
    let mut done = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((true, c)) => done.push(c),
            _ => dead += 1,
        }
    }
    dead
}

/// After the publishers stopped: waits for the deliveries still on their
/// way, until `expected` arrived, `DRAIN_MAX` passed or `DRAIN_IDLE` went by
/// without one.
pub(crate) async fn drain(received: &AtomicU64, expected: u64) {
    let drain_end = Instant::now() + DRAIN_MAX;
    let mut last = received.load(Ordering::Relaxed);
    let mut last_change = Instant::now();
    while Instant::now() < drain_end {
        let now = received.load(Ordering::Relaxed);
        if now >= expected {
            break;
        }
        if now != last {
            last = now;
            last_change = Instant::now();
        } else if last_change.elapsed() >= DRAIN_IDLE {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sleeps until a std `Instant` (the bench's clock type throughout).
pub(crate) async fn sleep_until(at: Instant) {
    tokio::time::sleep_until(at.into()).await;
}

pub(crate) fn note_error(count: &mut u64, first: &mut Option<String>, e: anyhow::Error) {
    *count += 1;
    if first.is_none() {
        *first = Some(format!("{e:#}"));
    }
}

pub(crate) fn progress(settings: &RunSettings, label: &str, len: u64) -> ProgressBar {
    if !settings.show_progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("{prefix:>28} [{bar:30}] {percent:>3}% {elapsed} {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(label.to_string());
    bar
}

/// Connects `n` clients named `{prefix}-{i}`, client `i` from source
/// address `source(i)`, a bounded number at a time, in order. Any failure
/// fails the setup: a traffic run with missing clients would measure a
/// different scenario.
pub(crate) async fn connect_all(
    ep: &Endpoint,
    prefix: &str,
    n: usize,
    clean: bool,
    source: impl Fn(usize) -> Ipv4Addr,
) -> Result<Vec<Conn>> {
    let sem = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let mut tasks = JoinSet::new();
    for i in 0..n {
        let permit = sem.clone().acquire_owned().await?;
        let id = format!("{prefix}-{i}");
        let src = source(i);
        let ep = ep.clone();
        tasks.spawn(async move {
            let conn = Conn::connect(&ep, src, &id, clean).await;
            drop(permit);
            (i, conn.with_context(|| format!("connecting client {id}")))
        });
    }
    let mut conns: Vec<Option<Conn>> = (0..n).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        let (i, conn) = joined?;
        if let Some(slot) = conns.get_mut(i) {
            *slot = Some(conn?);
        }
    }
    conns
        .into_iter()
        .map(|c| c.ok_or_else(|| anyhow!("a client did not connect")))
        .collect()
}

/// Connects `n` clients (at `rate` per second, or flat out) and keeps them
/// connected; latency is CONNECT to CONNACK. Failures are counted.
async fn storm(
    ep: Endpoint,
    n: usize,
    rate: Option<f64>,
    persistent: bool,
    bar: &ProgressBar,
) -> Result<(Measured, Vec<Conn>)> {
    let tag = format!("{:06x}", client::next_index() as u32 ^ std::process::id());
    let sem = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let start = Instant::now();
    let give_up = start + CONNECT_PHASE_MAX;
    let mut tasks = JoinSet::new();
    for i in 0..n {
        if Instant::now() >= give_up {
            break;
        }
        if let Some(r) = rate.filter(|r| *r > 0.0) {
            sleep_until(start + Duration::from_secs_f64(i as f64 / r)).await;
        }
        let permit = sem.clone().acquire_owned().await?;
        let id = format!("c{tag}-{i}");
        let ep = ep.clone();
        tasks.spawn(async move {
            let t0 = Instant::now();
            let src = client::source_addr(client::next_index());
            let conn = Conn::connect(&ep, src, &id, !persistent).await;
            let done = Instant::now();
            drop(permit);
            (conn, done.duration_since(t0), done)
        });
    }
    let mut latency = Latency::new()?;
    let mut conns = Vec::with_capacity(n);
    let mut errors = 0;
    let mut first_error = None;
    let mut last = start;
    while let Some(joined) = tasks.join_next().await {
        let (conn, took, done) = joined?;
        match conn {
            Ok(c) => {
                latency.record_ns(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
                conns.push(c);
                last = last.max(done);
            }
            Err(e) => note_error(&mut errors, &mut first_error, e),
        }
        bar.set_position(conns.len() as u64 + errors);
    }
    let m = Measured {
        sent: n as u64,
        received: conns.len() as u64,
        expected: n as u64,
        elapsed: last.duration_since(start),
        latency,
        mem_per_conn_kib: None,
        errors,
        first_error,
        notes: Vec::new(),
        attack: None,
    };
    Ok((m, conns))
}

pub(crate) struct PublishJob {
    pub topic: String,
    pub qos: QoS,
    pub template: Vec<u8>,
    /// Time between messages when rate-limited.
    pub period: Option<Duration>,
    pub start: Instant,
    pub deadline: Instant,
    pub clock: Clock,
}

/// Publishes until the deadline, then waits (bounded) for its outstanding
/// QoS 1/2 flows to finish. Returns the number of messages sent.
pub(crate) async fn publish_loop(mut conn: Conn, job: PublishJob) -> Result<u64> {
    let acked = job.qos != QoS::AtMostOnce;
    let mut publish = Publish::from_bytes(job.topic.clone(), job.qos, Bytes::new());
    let mut stamp_buf = BytesMut::with_capacity(job.template.len() * BATCH);
    let mut pkid = 0u16;
    let mut inflight = 0usize;
    let mut sent = 0u64;
    let mut next = job.start;
    sleep_until(job.start).await;

    while Instant::now() < job.deadline {
        let mut batch = 0;
        while batch < BATCH && (!acked || inflight < WINDOW) {
            if let Some(period) = job.period {
                if next > Instant::now() {
                    break;
                }
                next += period;
            }
            stamp_buf.extend_from_slice(&job.template);
            payload::restamp(&mut stamp_buf, job.clock.now_ns());
            publish.payload = stamp_buf.split().freeze();
            if acked {
                publish.pkid = client::next_pkid(&mut pkid);
                inflight += 1;
            }
            conn.queue_publish(&publish)?;
            sent += 1;
            batch += 1;
        }
        handle_acks(&mut conn, &mut inflight)?;
        conn.flush().await?;

        let window_full = acked && inflight >= WINDOW;
        let paced = job.period.is_some() && next > Instant::now();
        if !window_full && !paced {
            // Flat out: let the runtime schedule the other clients between
            // batches (the write already applied the broker's backpressure).
            tokio::task::yield_now().await;
            continue;
        }
        let wake = if window_full {
            job.deadline
        } else {
            next.min(job.deadline)
        };
        tokio::select! {
            r = conn.fill() => r?,
            _ = sleep_until(wake) => {}
        }
    }

    // Finish the flows in flight (QoS 2 needs our PUBREL before most brokers
    // deliver), bounded in time.
    let give_up = Instant::now() + DRAIN_MAX;
    while acked && inflight > 0 {
        handle_acks(&mut conn, &mut inflight)?;
        conn.flush().await?;
        if inflight == 0 {
            break;
        }
        tokio::select! {
            r = conn.fill() => r?,
            _ = sleep_until(give_up) => break,
        }
    }
    conn.queue_disconnect()?;
    conn.flush().await?;
    Ok(sent)
}

/// Handles the acknowledgements already read: PUBACK and PUBCOMP close a
/// flow, PUBREC asks for a PUBREL.
fn handle_acks(conn: &mut Conn, inflight: &mut usize) -> Result<()> {
    while let Some(p) = conn.try_packet()? {
        match p {
            Packet::PubAck(_) | Packet::PubComp(_) => *inflight = inflight.saturating_sub(1),
            Packet::PubRec(r) => conn.queue_ack(Ack::PubRel(r.pkid))?,
            _ => {}
        }
    }
    Ok(())
}

/// Which of a subscriber's histograms a message's latency goes to, from its
/// send time (`Clock` nanoseconds); `None` records it in none.
pub(crate) type Bucket = Arc<dyn Fn(u64) -> Option<usize> + Send + Sync>;

/// Receives until told to stop, acknowledging as the QoS requires and
/// recording each message's end-to-end latency in histogram `bucket(sent)`
/// of `buckets`.
pub(crate) async fn subscribe_loop(
    mut conn: Conn,
    clock: Clock,
    received: Arc<AtomicU64>,
    last_rx_ns: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
    bucket: Bucket,
    buckets: usize,
) -> Result<Vec<Latency>> {
    let mut latency = (0..buckets)
        .map(|_| Latency::new())
        .collect::<Result<Vec<_>>>()?;
    loop {
        let mut count = 0;
        let now = clock.now_ns();
        while let Some(p) = conn.try_packet()? {
            match p {
                Packet::Publish(p) => {
                    if let Some(sent) = payload::decode(&p.payload) {
                        if let Some(l) = bucket(sent).and_then(|b| latency.get_mut(b)) {
                            l.record_ns(now.saturating_sub(sent));
                        }
                    }
                    count += 1;
                    match p.qos {
                        QoS::AtMostOnce => {}
                        QoS::AtLeastOnce => conn.queue_ack(Ack::PubAck(p.pkid))?,
                        QoS::ExactlyOnce => conn.queue_ack(Ack::PubRec(p.pkid))?,
                    }
                }
                Packet::PubRel(r) => conn.queue_ack(Ack::PubComp(r.pkid))?,
                _ => {}
            }
        }
        if count > 0 {
            received.fetch_add(count, Ordering::Relaxed);
            last_rx_ns.fetch_max(now, Ordering::Relaxed);
        }
        if conn.pending() > 0 {
            conn.flush().await?;
        }
        tokio::select! {
            r = conn.fill() => r?,
            _ = stop.changed() => break,
        }
    }
    Ok(latency)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a broken fixture should fail the test loudly
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_quick_set_exists() {
        let all = catalog();
        let mut names: Vec<_> = all.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
        for q in QUICK {
            assert!(find(q).is_ok(), "{q}");
        }
        assert!(find("nope").is_err());
    }

    #[test]
    fn every_run_has_a_time_limit_beyond_its_work() {
        let d = Duration::from_secs(5);
        for s in catalog() {
            let limit = s.time_limit(d);
            assert!(limit > d + DRAIN_MAX, "{}", s.name);
            assert!(limit < Duration::from_secs(600), "{}", s.name);
        }
    }

    #[test]
    fn payloads_hold_a_stamp() {
        for s in catalog() {
            if !matches!(s.pattern, Pattern::Storm { .. } | Pattern::Idle { .. }) {
                assert!(s.payload >= payload::STAMP_LEN, "{}", s.name);
                assert!(s.qos <= 2);
            }
        }
    }
}
