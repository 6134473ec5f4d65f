//! One bounded queue and one delivery task per sink. Evaluation hands an
//! alert over with [`AlertRouter::send`], which never waits: a slow or dead
//! receiver fills its own queue, and further alerts for it are dropped and
//! counted, while evaluation and the other sinks go on.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::JoinHandle;

use super::webhook::Webhook;
use crate::settings::{AlertSinkKind, AlertSinkSettings};

/// How MQTT sinks publish on the broker: topic, payload. Called from the
/// sink's task, one alert at a time; it must not block.
pub type Publish = Arc<dyn Fn(&str, Vec<u8>) + Send + Sync>;

/// What [`AlertRouter::send`] did with an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// In the sink's queue, to be delivered in order.
    Queued,
    /// The sink's queue was full (or its task had stopped): the alert is
    /// lost, and counted in [`SinkStats::dropped`].
    Dropped,
    /// No sink has that name; counted in [`AlertRouter::unknown_sink`].
    UnknownSink,
}

/// Counters of one sink, for metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkStats {
    pub name: String,
    /// Delivered: a 2xx answer, a publish handed to the broker, a log line.
    pub sent: u64,
    /// Given up on after every attempt, or refused by the receiver.
    pub failed: u64,
    /// Refused by a full queue.
    pub dropped: u64,
    /// Waiting in the queue (not counting the one being delivered).
    pub queued: u64,
}

/// A sink that cannot work (bad URL, no trust store for https).
#[derive(Debug, thiserror::Error)]
#[error("alert sink `{sink}`: {reason}")]
pub struct AlertSinkError {
    pub sink: String,
    pub reason: String,
}

/// Unknown sink names remembered for the once-per-name warning. Past it,
/// unknown names are still counted but no longer logged, so the set stays
/// bounded whatever the profiles say.
const MAX_WARNED_UNKNOWN: usize = 256;

pub struct AlertRouter {
    /// In config order; a handful, so a linear search beats hashing.
    sinks: Vec<Sink>,
    unknown_sink: AtomicU64,
    warned_unknown: Mutex<HashSet<String>>,
}

struct Sink {
    name: String,
    queue: mpsc::Sender<Arc<[u8]>>,
    capacity: usize,
    counters: Arc<Counters>,
    /// Set by the first drop of an overflow and cleared by the next alert
    /// that fits, so a flood logs one line, not one per alert.
    overflowing: AtomicBool,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    queued: AtomicU64,
}

enum Delivery {
    Webhook(Box<Webhook>),
    Mqtt { topic: String, publish: Publish },
    Log,
}

impl AlertRouter {
    /// Starts one task per sink. Must be called inside a tokio runtime (a
    /// `spawn_blocking` thread counts); panics otherwise, as `tokio::spawn`
    /// does. Fails on a sink that could never deliver.
    pub fn new(sinks: &[AlertSinkSettings], publish: Publish) -> Result<Self, AlertSinkError> {
        let mut built = Vec::with_capacity(sinks.len());
        for settings in sinks {
            let delivery = match &settings.kind {
                AlertSinkKind::Webhook {
                    url,
                    secret,
                    attempts,
                    timeout,
                } => Delivery::Webhook(Box::new(
                    Webhook::new(url, secret, *attempts, *timeout).map_err(|reason| {
                        AlertSinkError {
                            sink: settings.name.clone(),
                            reason,
                        }
                    })?,
                )),
                AlertSinkKind::Mqtt { topic } => Delivery::Mqtt {
                    topic: topic.clone(),
                    publish: Arc::clone(&publish),
                },
                AlertSinkKind::Log => Delivery::Log,
            };
            built.push(Sink::start(settings.name.clone(), settings.queue, delivery));
        }
        Ok(Self {
            sinks: built,
            unknown_sink: AtomicU64::new(0),
            warned_unknown: Mutex::new(HashSet::new()),
        })
    }

    /// Queues `body` for the sink `sink`. Never blocks or awaits, so it can
    /// be called from evaluation, sync or async.
    pub fn send(&self, sink: &str, body: Arc<[u8]>) -> SendOutcome {
        let Some(target) = self.sinks.iter().find(|s| s.name == sink) else {
            self.unknown_sink.fetch_add(1, Relaxed);
            let mut warned = self
                .warned_unknown
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if warned.len() < MAX_WARNED_UNKNOWN && warned.insert(sink.to_owned()) {
                tracing::warn!(
                    sink,
                    "a security profile's alert target names no configured alert sink; its alerts are dropped"
                );
            }
            return SendOutcome::UnknownSink;
        };
        target.enqueue(body)
    }

    /// Counters per sink, in config order.
    pub fn stats(&self) -> Vec<SinkStats> {
        self.sinks.iter().map(Sink::stats).collect()
    }

    /// Alerts whose target named no configured sink.
    pub fn unknown_sink(&self) -> u64 {
        self.unknown_sink.load(Relaxed)
    }

    /// Closes every queue and lets each sink deliver what it holds, for at
    /// most `grace` in all; sinks still busy then are stopped and their
    /// alerts lost (logged). Returns the final counters.
    ///
    /// Dropping the router instead also closes the queues; the tasks then
    /// finish in the background for as long as the runtime lives.
    pub async fn shutdown(self, grace: Duration) -> Vec<SinkStats> {
        let deadline = tokio::time::Instant::now() + grace;
        let mut draining = Vec::with_capacity(self.sinks.len());
        // Every queue is closed before waiting on any, so sinks drain in
        // parallel and the whole shutdown takes at most `grace`.
        for sink in self.sinks {
            drop(sink.queue);
            draining.push((sink.name, sink.task, sink.counters));
        }
        let mut out = Vec::with_capacity(draining.len());
        for (name, mut task, counters) in draining {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
                tracing::warn!(
                    sink = %name,
                    // The queue and the alert being delivered.
                    abandoned = counters.queued.load(Relaxed) + 1,
                    "alert sink did not finish within the shutdown grace; its remaining alerts are lost"
                );
            }
            out.push(Sink::stats_of(&name, &counters));
        }
        out
    }
}

impl Sink {
    fn start(name: String, capacity: usize, delivery: Delivery) -> Self {
        // tokio's channel refuses a capacity of 0; settings ask for at least 1.
        let capacity = capacity.max(1);
        let (queue, alerts) = mpsc::channel(capacity);
        let counters = Arc::new(Counters::default());
        let task = tokio::spawn(deliver_all(
            name.clone(),
            delivery,
            alerts,
            Arc::clone(&counters),
        ));
        Self {
            name,
            queue,
            capacity,
            counters,
            overflowing: AtomicBool::new(false),
            task,
        }
    }

    fn enqueue(&self, body: Arc<[u8]>) -> SendOutcome {
        // Counted before the send, so the task's decrement never comes first.
        self.counters.queued.fetch_add(1, Relaxed);
        match self.queue.try_send(body) {
            Ok(()) => {
                self.overflowing.store(false, Relaxed);
                SendOutcome::Queued
            }
            Err(e) => {
                self.counters.queued.fetch_sub(1, Relaxed);
                self.counters.dropped.fetch_add(1, Relaxed);
                if !self.overflowing.swap(true, Relaxed) {
                    match e {
                        TrySendError::Full(_) => tracing::warn!(
                            sink = %self.name,
                            capacity = self.capacity,
                            "alert queue full: new alerts are dropped until the receiver catches up"
                        ),
                        TrySendError::Closed(_) => tracing::error!(
                            sink = %self.name,
                            "alert sink has stopped: its alerts are dropped"
                        ),
                    }
                }
                SendOutcome::Dropped
            }
        }
    }

    fn stats(&self) -> SinkStats {
        Self::stats_of(&self.name, &self.counters)
    }

    fn stats_of(name: &str, c: &Counters) -> SinkStats {
        SinkStats {
            name: name.to_owned(),
            sent: c.sent.load(Relaxed),
            failed: c.failed.load(Relaxed),
            dropped: c.dropped.load(Relaxed),
            queued: c.queued.load(Relaxed),
        }
    }
}

/// A sink's task: one alert at a time, so alerts arrive in the order they
/// were sent. Ends when the queue is closed and empty.
async fn deliver_all(
    name: String,
    mut delivery: Delivery,
    mut alerts: mpsc::Receiver<Arc<[u8]>>,
    counters: Arc<Counters>,
) {
    while let Some(body) = alerts.recv().await {
        counters.queued.fetch_sub(1, Relaxed);
        let delivered = match &mut delivery {
            Delivery::Webhook(hook) => hook.deliver(&name, body).await,
            Delivery::Mqtt { topic, publish } => {
                publish(topic, body.to_vec());
                true
            }
            Delivery::Log => {
                tracing::warn!(sink = %name, alert = %String::from_utf8_lossy(&body), "defender alert");
                true
            }
        };
        let counter = if delivered {
            &counters.sent
        } else {
            &counters.failed
        };
        counter.fetch_add(1, Relaxed);
    }
}
