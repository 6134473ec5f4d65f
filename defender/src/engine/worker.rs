//! The worker thread: closes a period at every multiple of
//! `datapoint_period` (wall clock, so periods line up with AWS's five-minute
//! marks) and judges reports as they come.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::period::{self, commit, Windows};
use super::reports;
use super::{now, Shared, Work};
use crate::detect::model::Timestamp;
use crate::store::StoreError;

pub(crate) fn spawn(
    shared: Arc<Shared>,
    queue: Receiver<Work>,
) -> Result<JoinHandle<()>, StoreError> {
    std::thread::Builder::new()
        .name("wardmq-defender".into())
        .spawn(move || run(&shared, &queue))
        .map_err(|e| StoreError::InvalidRequest(format!("cannot start the defender thread: {e}")))
}

/// The next period boundary after `t`.
fn next_boundary(t: Timestamp, period_ms: u64) -> Timestamp {
    Timestamp::from_millis((t.as_millis() / period_ms + 1) * period_ms)
}

fn run(shared: &Shared, queue: &Receiver<Work>) {
    let period_ms = u64::try_from(shared.settings.datapoint_period.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let mut windows = Windows::new();
    let mut due = next_boundary(now(), period_ms);
    loop {
        let wait = Duration::from_millis(due.millis_since(now()));
        match queue.recv_timeout(wait) {
            Ok(Work::Report { thing, report, at }) => reports::judge(shared, &thing, &report, at),
            Ok(Work::Reconfigured) => invalidate_unmonitored(shared),
            Ok(Work::CloseNow(done)) => {
                let stats = period::close(shared, &mut windows, now());
                shared.totals.period(&stats);
                *super::lock(&shared.last_period) = stats;
                let _ = done.send(stats);
            }
            Ok(Work::Stop) | Err(RecvTimeoutError::Disconnected) => {
                // A partial period is not judged (its counts would be low
                // and clear alarms wrongly); the book is saved as it is.
                let config = shared.config();
                commit(shared, &config, &shared.book(), &[]);
                return;
            }
            Err(RecvTimeoutError::Timeout) => {
                let t = now();
                if t >= due {
                    let stats = period::close(shared, &mut windows, t);
                    shared.totals.period(&stats);
                    *super::lock(&shared.last_period) = stats;
                    due = next_boundary(t, period_ms);
                }
            }
        }
    }
}

/// Invalidates the alarms of behaviours the configuration dropped.
fn invalidate_unmonitored(shared: &Shared) {
    let config = shared.config();
    let mut book = shared.book();
    let events = book.invalidate_where(now(), |k| !shared.monitors(&config, k));
    if !events.is_empty() {
        commit(shared, &config, &book, &events);
    }
}
