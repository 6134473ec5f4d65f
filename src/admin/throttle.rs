//! Authentication failures on the admin listener (bad or unknown SigV4
//! keys, wrong console passwords): counted for /metrics, and a source
//! address with too many of them in a window gets 429 until it passes, so
//! keys cannot be guessed at wire speed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Failed SigV4 requests from one address within [`WINDOW`] before it is
/// refused outright.
pub const MAX_FAILURES: u32 = 10;
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses tracked at once; expired windows are dropped first, and only
/// if none has expired is the table reset.
const MAX_TRACKED: usize = 10_000;

struct Window {
    first: Instant,
    count: u32,
}

#[derive(Default)]
pub struct AuthFailures {
    total: AtomicU64,
    windows: Mutex<HashMap<IpAddr, Window>>,
}

impl AuthFailures {
    /// How long `from` must still wait, if it is throttled.
    pub fn throttled(&self, from: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        let w = windows.get(&from)?;
        let age = now.duration_since(w.first);
        (age < WINDOW && w.count >= MAX_FAILURES).then(|| WINDOW - age)
    }

    /// Counts a failure (also one without a known address).
    pub fn failed(&self, from: Option<IpAddr>) {
        self.total.fetch_add(1, Relaxed);
        let Some(from) = from else { return };
        let now = Instant::now();
        let mut windows = self.windows.lock().unwrap_or_else(PoisonError::into_inner);
        if windows.len() >= MAX_TRACKED && !windows.contains_key(&from) {
            windows.retain(|_, w| now.duration_since(w.first) < WINDOW);
            if windows.len() >= MAX_TRACKED {
                windows.clear();
            }
        }
        let w = windows.entry(from).or_insert(Window {
            first: now,
            count: 0,
        });
        if now.duration_since(w.first) >= WINDOW {
            *w = Window {
                first: now,
                count: 0,
            };
        }
        w.count += 1;
    }

    /// Failures counted since start (the Prometheus counter).
    pub fn total(&self) -> u64 {
        self.total.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttles_after_the_limit_per_address() {
        let f = AuthFailures::default();
        let a: IpAddr = [192, 0, 2, 1].into();
        for _ in 0..MAX_FAILURES - 1 {
            f.failed(Some(a));
        }
        assert_eq!(f.throttled(a), None);
        f.failed(Some(a));
        assert!(f.throttled(a).is_some());
        assert_eq!(f.throttled([192, 0, 2, 2].into()), None);
        f.failed(None);
        assert_eq!(f.total(), u64::from(MAX_FAILURES) + 1);
    }
}
