//! What the kernel says about the broker process: resident memory and CPU
//! time, from /proc. Linux only; elsewhere the numbers are simply missing.

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{anyhow, Context, Result};

/// Peak and current resident set size, KiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Memory {
    pub hwm_kib: u64,
    pub rss_kib: u64,
}

pub fn memory(pid: u32) -> Result<Memory> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    parse_status(&text)
}

/// `VmHWM` and `VmRSS` from the text of /proc/PID/status.
pub fn parse_status(text: &str) -> Result<Memory> {
    let field = |name: &str| -> Result<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| anyhow!("no {name} in /proc status"))
    };
    Ok(Memory {
        hwm_kib: field("VmHWM:")?,
        rss_kib: field("VmRSS:")?,
    })
}

/// User plus system CPU time the process has used, in seconds.
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    let ticks = parse_stat_ticks(&text)?;
    Ok(ticks as f64 / clock_ticks_per_second() as f64)
}

/// utime + stime (fields 14 and 15) from /proc/PID/stat. The command name
/// (field 2) may hold spaces and parentheses, so fields are counted from the
/// last `)`.
pub fn parse_stat_ticks(text: &str) -> Result<u64> {
    let after = text
        .rfind(')')
        .map(|i| &text[i + 1..])
        .ok_or_else(|| anyhow!("malformed /proc stat"))?;
    // After the name: field 3 (state) is index 0, so utime (14) is index 11.
    let mut fields = after.split_whitespace().skip(11);
    let mut next = || -> Result<u64> {
        fields
            .next()
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| anyhow!("malformed /proc stat"))
    };
    Ok(next()? + next()?)
}

/// USER_HZ, asked of `getconf` once; 100 (the value on every common Linux
/// build) if that fails. Reading it through libc would need unsafe code.
fn clock_ticks_per_second() -> u64 {
    static HZ: OnceLock<u64> = OnceLock::new();
    *HZ.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|&hz| hz > 0)
            .unwrap_or(100)
    })
}

/// Whether the bench runs as root (brokers such as mosquitto then drop
/// privileges unless told not to).
pub fn running_as_root() -> bool {
    std::fs::read_to_string(Path::new("/proc/self/status"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|r| r.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // a broken fixture should fail the test loudly
mod tests {
    use super::*;

    #[test]
    fn reads_memory_lines() {
        let text = "Name:\tx\nVmPeak:\t  9000 kB\nVmHWM:\t    5120 kB\nVmRSS:\t    4096 kB\n";
        assert_eq!(
            parse_status(text).unwrap(),
            Memory {
                hwm_kib: 5120,
                rss_kib: 4096
            }
        );
        assert!(parse_status("Name:\tx\n").is_err());
    }

    #[test]
    fn reads_cpu_ticks_past_an_awkward_name() {
        let text = "1234 (a) b (c) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 1";
        assert_eq!(parse_stat_ticks(text).unwrap(), 300);
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(memory(me).unwrap().hwm_kib > 0);
        assert!(cpu_seconds(me).unwrap() >= 0.0);
    }
}
