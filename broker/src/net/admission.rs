//! Admission control right after `accept()`, before any TLS work: token
//! buckets per source address and for the whole broker, so a connection
//! flood costs a refused socket, not a handshake.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::observer::Rejection;
use crate::settings::Limits;

/// Addresses tracked at once. Past it, idle entries are swept; if every
/// entry is busy, an unknown address is judged by the global bucket only
/// (so the table cannot grow without bound under a spoofed-source flood).
const MAX_TRACKED: usize = 65_536;

/// The shortest pause between two sweeps of a full table, so a table of
/// busy addresses is not walked on every accept.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// A token bucket: `rate` tokens a second, at most `burst`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Rate {
    per_sec: f64,
    burst: f64,
}

impl Rate {
    /// `None` when the limit is off (rate 0).
    fn new(per_sec: u32, burst: u32) -> Option<Rate> {
        (per_sec > 0).then(|| Rate {
            per_sec: f64::from(per_sec),
            burst: f64::from(burst.max(1)),
        })
    }

    fn full(self, now: Instant) -> Bucket {
        Bucket {
            tokens: self.burst,
            at: now,
        }
    }

    /// Refills `b` up to `now` and takes a token if there is one.
    fn take(self, b: &mut Bucket, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.per_sec).min(self.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether `b` would be full again by `now`: then it says nothing a
    /// fresh bucket would not, and can be forgotten.
    fn idle(self, b: &Bucket, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens + elapsed * self.per_sec >= self.burst
    }
}

struct State {
    global: Bucket,
    per_ip: HashMap<IpAddr, Bucket>,
    last_sweep: Instant,
}

pub(crate) struct Admission {
    per_ip: Option<Rate>,
    global: Option<Rate>,
    state: Mutex<State>,
}

impl Admission {
    pub(crate) fn new(limits: &Limits) -> Admission {
        let now = Instant::now();
        let per_ip = Rate::new(
            limits.connection_rate_per_ip,
            limits.connection_burst_per_ip,
        );
        let global = Rate::new(limits.connection_rate, limits.connection_burst);
        Admission {
            per_ip,
            global,
            state: Mutex::new(State {
                global: global.map_or(
                    Bucket {
                        tokens: 0.0,
                        at: now,
                    },
                    |g| g.full(now),
                ),
                per_ip: HashMap::new(),
                last_sweep: now,
            }),
        }
    }

    /// Whether a connection from `ip` may proceed now; if not, why.
    pub(crate) fn admit(&self, ip: IpAddr) -> Result<(), Rejection> {
        self.admit_at(ip, Instant::now())
    }

    fn admit_at(&self, ip: IpAddr, now: Instant) -> Result<(), Rejection> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(rate) = self.per_ip {
            let key = source_key(ip);
            if !st.per_ip.contains_key(&key) && st.per_ip.len() >= MAX_TRACKED {
                st.sweep(rate, now);
            }
            let tracked = st.per_ip.len() < MAX_TRACKED || st.per_ip.contains_key(&key);
            if tracked {
                let bucket = st.per_ip.entry(key).or_insert_with(|| rate.full(now));
                if !rate.take(bucket, now) {
                    return Err(Rejection::RateIp);
                }
            }
        }
        if let Some(rate) = self.global {
            if !rate.take(&mut st.global, now) {
                return Err(Rejection::RateGlobal);
            }
        }
        Ok(())
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.state.lock().map(|s| s.per_ip.len()).unwrap_or(0)
    }
}

impl State {
    fn sweep(&mut self, rate: Rate, now: Instant) {
        if now.saturating_duration_since(self.last_sweep) < SWEEP_EVERY {
            return;
        }
        self.last_sweep = now;
        self.per_ip.retain(|_, b| !rate.idle(b, now));
    }
}

/// IPv6 sources are limited per /64: one host usually holds a whole /64,
/// and per-address buckets would let it rotate through them.
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(ip: (u32, u32), global: (u32, u32)) -> Limits {
        Limits {
            connection_rate_per_ip: ip.0,
            connection_burst_per_ip: ip.1,
            connection_rate: global.0,
            connection_burst: global.1,
            ..Limits::default()
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn burst_then_rate_per_address() {
        let a = Admission::new(&limits((2, 3), (0, 0)));
        let t = Instant::now();
        let x = ip("192.0.2.1");
        for _ in 0..3 {
            assert_eq!(a.admit_at(x, t), Ok(()));
        }
        assert_eq!(a.admit_at(x, t), Err(Rejection::RateIp));
        // Another address has its own bucket.
        assert_eq!(a.admit_at(ip("192.0.2.2"), t), Ok(()));
        // Half a second at 2/s refills one token.
        let later = t + Duration::from_millis(500);
        assert_eq!(a.admit_at(x, later), Ok(()));
        assert_eq!(a.admit_at(x, later), Err(Rejection::RateIp));
    }

    #[test]
    fn global_bucket_spans_addresses() {
        let a = Admission::new(&limits((0, 0), (1, 2)));
        let t = Instant::now();
        assert_eq!(a.admit_at(ip("192.0.2.1"), t), Ok(()));
        assert_eq!(a.admit_at(ip("192.0.2.2"), t), Ok(()));
        assert_eq!(a.admit_at(ip("192.0.2.3"), t), Err(Rejection::RateGlobal));
    }

    #[test]
    fn ipv6_hosts_share_their_64() {
        let a = Admission::new(&limits((1, 1), (0, 0)));
        let t = Instant::now();
        assert_eq!(a.admit_at(ip("2001:db8::1"), t), Ok(()));
        assert_eq!(a.admit_at(ip("2001:db8::2"), t), Err(Rejection::RateIp));
        assert_eq!(a.admit_at(ip("2001:db8:0:1::1"), t), Ok(()));
    }

    #[test]
    fn table_is_bounded_and_idle_entries_go() {
        let a = Admission::new(&limits((1, 1), (0, 0)));
        let t = Instant::now();
        let addr = |i: usize| IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i as u32));
        for i in 0..MAX_TRACKED + 10 {
            assert_eq!(a.admit_at(addr(i), t), Ok(()));
        }
        assert_eq!(a.tracked(), MAX_TRACKED, "busy entries are kept, no more");
        // Untracked addresses are still limited globally (off here), and
        // once the entries are idle a sweep makes room.
        let later = t + Duration::from_secs(2);
        assert_eq!(a.admit_at(addr(MAX_TRACKED + 20), later), Ok(()));
        assert_eq!(a.tracked(), 1);
    }
}
