//! The bench's message payload: a send timestamp followed by filler.
//!
//! Publishers and subscribers live in the same process, so a timestamp taken
//! from one shared `Instant` (the clock's epoch) is comparable on both sides
//! and immune to wall-clock jumps.

use std::time::{Duration, Instant};

/// Bytes the timestamp takes at the start of every payload.
pub const STAMP_LEN: usize = 8;

/// A monotonic epoch shared by every task of one run.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch: Instant,
}

impl Clock {
    pub fn new() -> Self {
        Self {
            epoch: Instant::now(),
        }
    }

    /// Nanoseconds since the epoch; u64 nanoseconds last 584 years.
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// The timestamp of `at` (0 if before the epoch).
    pub fn ns_at(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// The instant a timestamp stands for.
    pub fn instant(&self, ns: u64) -> Instant {
        self.epoch + Duration::from_nanos(ns)
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// A payload of `size` bytes (at least `STAMP_LEN`) stamped with `ns`.
/// The filler is a fixed pattern so no broker can compress it away or gain
/// from all-zero pages.
pub fn encode(ns: u64, size: usize) -> Vec<u8> {
    let size = size.max(STAMP_LEN);
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&ns.to_le_bytes());
    out.extend((STAMP_LEN..size).map(|i| (i % 251) as u8));
    out
}

/// Overwrites the stamp of a payload built by `encode`, so a publisher can
/// reuse one buffer instead of allocating per message.
pub fn restamp(payload: &mut [u8], ns: u64) {
    if let Some(head) = payload.get_mut(..STAMP_LEN) {
        head.copy_from_slice(&ns.to_le_bytes());
    }
}

/// The timestamp at the start of a payload, or `None` when it is too short
/// (a message not sent by this bench).
pub fn decode(payload: &[u8]) -> Option<u64> {
    let head: [u8; STAMP_LEN] = payload.get(..STAMP_LEN)?.try_into().ok()?;
    Some(u64::from_le_bytes(head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_stamp() {
        for ns in [0, 1, 123_456_789, u64::MAX] {
            let p = encode(ns, 64);
            assert_eq!(p.len(), 64);
            assert_eq!(decode(&p), Some(ns));
        }
    }

    #[test]
    fn small_sizes_still_carry_the_stamp() {
        let p = encode(42, 0);
        assert_eq!(p.len(), STAMP_LEN);
        assert_eq!(decode(&p), Some(42));
    }

    #[test]
    fn restamp_changes_only_the_stamp() {
        let mut p = encode(1, 32);
        let tail = p[STAMP_LEN..].to_vec();
        restamp(&mut p, 99);
        assert_eq!(decode(&p), Some(99));
        assert_eq!(&p[STAMP_LEN..], &tail[..]);
    }

    #[test]
    fn short_payload_has_no_stamp() {
        assert_eq!(decode(&[1, 2, 3]), None);
    }

    #[test]
    fn clock_maps_back_to_instants() {
        let c = Clock::new();
        let ns = c.now_ns();
        assert!(c.instant(ns) >= c.instant(0));
    }
}
