//! TLS handshakes run on a few threads of their own at a lower CPU
//! priority, so a storm of them cannot take CPU from established
//! connections (issue 9).
//!
//! A handshake's CPU (key exchange, signature, certificate chain) runs
//! inside the poll that received the peer's flight, about 0.4 ms each on a
//! small VM. On the connection runtime, every admitted handshake competes
//! with established connections twice: in the workers' run queues, and for
//! the cores themselves. Here at most `threads()` handshake polls run at
//! once (half the cores, at least one), off the connection runtime's
//! queues, and the kernel runs those threads only with the CPU that
//! normal-priority work leaves (nice +10: about a tenth of a contended
//! core, all of an idle one). New connections wait under load instead of
//! established ones; a handshake that waits too long hits its timeout.
//!
//! The socket stays registered with the connection runtime's reactor,
//! which wakes the handshake task here; the finished TLS stream goes back
//! to the connection's task.

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

/// How much lower than the broker's other threads handshakes run.
const NICE: i32 = 10;

/// Handshake threads: half the cores, at least one, so handshakes never
/// compute on every core at once.
fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// The process's handshake runtime, started on first use; `None` if it
/// could not start, and handshakes then run on the caller's runtime.
fn pool() -> Option<&'static Runtime> {
    static POOL: OnceLock<Option<Runtime>> = OnceLock::new();
    POOL.get_or_init(|| {
        let built = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads())
            .thread_name("wardmq-tls")
            .on_thread_start(lower_priority)
            .enable_all()
            .build();
        match built {
            Ok(rt) => Some(rt),
            Err(e) => {
                tracing::error!(error = %e, "cannot start the TLS handshake threads; handshakes share the connection threads");
                None
            }
        }
    })
    .as_ref()
}

#[cfg(target_os = "linux")]
fn lower_priority() {
    // Linux keeps the nice value per thread, so this lowers only the
    // calling handshake thread.
    let tid = rustix::thread::gettid();
    let now = rustix::process::getpriority_process(Some(tid)).unwrap_or(0);
    if let Err(e) = rustix::process::setpriority_process(Some(tid), now + NICE) {
        tracing::warn!(error = %e, "cannot lower the TLS handshake threads' priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

/// Runs `handshake` on the handshake threads and returns its result; the
/// handshake is dropped with the returned future (the connection gave up,
/// the broker is stopping). `None` only if the handshake panicked.
pub(crate) async fn run<F>(handshake: F) -> Option<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let Some(rt) = pool() else {
        return Some(handshake.await);
    };
    let mut task = AbortOnDrop(rt.spawn(handshake));
    match (&mut task.0).await {
        Ok(out) => Some(out),
        Err(e) => {
            tracing::error!(error = %e, "TLS handshake task failed");
            None
        }
    }
}

struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::{Context, Poll};
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn at_most_the_pool_threads_compute_at_once_and_all_finish() {
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..64 {
            tasks.spawn(run(Busy {
                polls: 3,
                work: Duration::from_millis(1),
                running: running.clone(),
                most: most.clone(),
            }));
        }
        while let Some(r) = tasks.join_next().await {
            assert_eq!(r.ok(), Some(Some(())), "a handshake did not finish");
        }
        let most = most.load(Ordering::SeqCst);
        assert!(
            (1..=threads()).contains(&most),
            "{most} handshakes computed at once on {} threads",
            threads()
        );
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn handshakes_run_on_their_own_lower_priority_threads() {
        let caller = std::thread::current().id();
        let (name, same_thread, nice) = run(async move {
            let t = std::thread::current();
            let tid = rustix::thread::gettid();
            (
                t.name().map(str::to_owned),
                t.id() == caller,
                rustix::process::getpriority_process(Some(tid)),
            )
        })
        .await
        .expect("the handshake ran");
        assert_eq!(name.as_deref(), Some("wardmq-tls"));
        assert!(!same_thread);
        let ours = rustix::process::getpriority_process(None).expect("own priority");
        // Capped at 19, the lowest priority there is.
        assert_eq!(nice.expect("pool priority"), (ours + NICE).min(19));
    }

    #[tokio::test]
    async fn a_silent_client_does_not_hold_the_pool() {
        // One that never finishes (a client that never sends) ...
        let silent = tokio::spawn(run(std::future::pending::<()>()));
        tokio::task::yield_now().await;
        // ... and another still completes, on however few threads.
        let done = tokio::time::timeout(Duration::from_secs(5), run(async { 7 })).await;
        assert_eq!(done.ok(), Some(Some(7)));
        silent.abort();
    }

    #[tokio::test]
    async fn dropping_the_caller_drops_the_handshake() {
        struct Flag(Arc<AtomicBool>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = Flag(dropped.clone());
        let caller = tokio::spawn(run(async move {
            let _flag = flag;
            std::future::pending::<()>().await
        }));
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!dropped.load(Ordering::SeqCst));
        caller.abort();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !dropped.load(Ordering::SeqCst) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(
            dropped.load(Ordering::SeqCst),
            "the handshake outlived its connection"
        );
    }
}
