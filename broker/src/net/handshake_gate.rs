//! Bounds how many TLS handshakes compute at once, so a storm of them cannot
//! starve established connections (issue 9).
//!
//! A handshake's CPU (key exchange, signature, certificate chain) runs
//! inside the poll that received the peer's flight. When admission lets a
//! burst through, hundreds of handshake tasks become runnable together, and
//! an established connection's task woken meanwhile waits in the worker's
//! queue behind all of them. Gated, a handshake task first takes a slot for
//! each poll and gives it back when the poll returns: at most `slots`
//! handshake polls are queued or running, the rest wait on the semaphore
//! (not in the run queue). Slots are per poll, not per handshake, so a
//! silent client (slow-loris) holds none while it waits for its socket.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

type Acquire =
    Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, tokio::sync::AcquireError>> + Send>>;

/// Handshake polls that may be queued or running at once: half the cores
/// (at least one), so handshakes never take more than half the CPU while
/// established connections want it.
pub(crate) fn default_slots() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// Shared by every handshake of a listener.
#[derive(Clone)]
pub(crate) struct HandshakeGate {
    slots: Arc<Semaphore>,
}

impl HandshakeGate {
    pub(crate) fn new(slots: usize) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(slots.max(1))),
        }
    }

    /// `fut`, each poll of it holding a slot.
    pub(crate) fn gate<F: Future>(&self, fut: F) -> Gated<F> {
        Gated {
            inner: Box::pin(fut),
            slots: self.slots.clone(),
            acquire: None,
        }
    }
}

pub(crate) struct Gated<F> {
    inner: Pin<Box<F>>,
    slots: Arc<Semaphore>,
    /// Waiting for a slot.
    acquire: Option<Acquire>,
}

impl<F: Future> Future for Gated<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // Every field is Unpin (the inner future is boxed).
        let this = self.get_mut();
        let acquire = this
            .acquire
            .get_or_insert_with(|| Box::pin(this.slots.clone().acquire_owned()));
        let permit = match acquire.as_mut().poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(p) => p,
        };
        this.acquire = None;
        // The semaphore is never closed; were it, run ungated rather than
        // refuse the device.
        let out = this.inner.as_mut().poll(cx);
        drop(permit);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    /// A stand-in handshake: each poll burns `work` of CPU, and it needs
    /// `polls` polls, waking itself in between like a socket that has the
    /// next flight ready.
    struct Busy {
        polls: usize,
        work: Duration,
        running: Arc<AtomicUsize>,
        most: Arc<AtomicUsize>,
    }

    impl Future for Busy {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            let t = Instant::now();
            while t.elapsed() < self.work {
                std::hint::spin_loop();
            }
            self.running.fetch_sub(1, Ordering::SeqCst);
            self.polls -= 1;
            if self.polls == 0 {
                Poll::Ready(())
            } else {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    async fn most_at_once(gate: Option<HandshakeGate>) -> usize {
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..64 {
            let busy = Busy {
                polls: 3,
                work: Duration::from_millis(1),
                running: running.clone(),
                most: most.clone(),
            };
            match &gate {
                Some(g) => tasks.spawn(g.gate(busy)),
                None => tasks.spawn(busy),
            };
        }
        while let Some(r) = tasks.join_next().await {
            assert!(r.is_ok(), "a gated task failed: {r:?}");
        }
        most.load(Ordering::SeqCst)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn at_most_the_slots_compute_at_once_and_all_finish() {
        // Ungated, the four workers run several at once (else this test
        // could not tell the gate from luck).
        assert!(most_at_once(None).await > 1);
        assert_eq!(most_at_once(Some(HandshakeGate::new(1))).await, 1);
        assert!(most_at_once(Some(HandshakeGate::new(2))).await <= 2);
    }

    #[tokio::test]
    async fn a_pending_handshake_holds_no_slot() {
        let gate = HandshakeGate::new(1);
        // A client that never sends: its handshake stays pending.
        let silent = tokio::spawn(gate.gate(std::future::pending::<()>()));
        tokio::task::yield_now().await;
        // Another handshake still gets the only slot.
        let done = tokio::time::timeout(Duration::from_secs(5), gate.gate(async { 7 })).await;
        assert_eq!(done.ok(), Some(7));
        silent.abort();
    }

    #[test]
    fn at_least_one_slot() {
        assert!(default_slots() >= 1);
        assert_eq!(HandshakeGate::new(0).slots.available_permits(), 1);
    }
}
