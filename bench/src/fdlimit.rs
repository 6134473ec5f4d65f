//! The open-file limit: every connection costs the bench one file
//! descriptor and the broker another, so `ulimit -n` bounds what a storm or
//! idle run can hold. The bench raises its soft limit to the hard limit at
//! start; the brokers it spawns inherit the raised limit.

/// Descriptors kept free for everything that is not a client connection:
/// the bench's runtime, /proc reads, log files, the broker's own files and
/// listeners.
pub const RESERVE: u64 = 256;

/// The soft and hard limits after raising the soft one as far as allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub soft: u64,
    pub hard: u64,
}

/// Raises the soft open-file limit to the hard limit (an unprivileged
/// process cannot go further) and returns both. `None` where the limit
/// cannot be read (not Unix).
pub fn raise() -> Option<Limits> {
    let (_, hard) = rlimit::Resource::NOFILE.get().ok()?;
    // An unlimited hard limit still stops at the kernel's per-process
    // ceiling (fs.nr_open); asking for more fails.
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(1 << 20);
    let soft = rlimit::increase_nofile_limit(hard.min(nr_open))
        .or_else(|_| rlimit::Resource::NOFILE.get().map(|(soft, _)| soft))
        .ok()?;
    Some(Limits { soft, hard })
}

/// Connections one run may hold under a soft limit of `soft`: bench and
/// broker each need one descriptor per connection, and each has the same
/// limit (the broker inherits it), so the budget is the limit less the
/// reserve.
pub fn connection_budget(soft: Option<u64>) -> usize {
    match soft {
        Some(soft) => usize::try_from(soft.saturating_sub(RESERVE)).unwrap_or(usize::MAX),
        None => usize::MAX,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a broken fixture should fail the test loudly
mod tests {
    use super::*;

    #[test]
    fn budget_leaves_the_reserve() {
        assert_eq!(connection_budget(Some(20_000)), 19_744);
        assert_eq!(connection_budget(Some(100)), 0);
        assert_eq!(connection_budget(None), usize::MAX);
    }

    #[test]
    fn raising_never_lowers() {
        let (before, _) = rlimit::Resource::NOFILE.get().unwrap();
        let l = raise().unwrap();
        assert!(l.soft >= before);
        assert!(l.soft <= l.hard);
    }
}
