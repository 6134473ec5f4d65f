//! When scheduled audits run. AWS says only "the start time of each audit
//! is determined by the system"; wardmq runs a scheduled audit once on each
//! UTC day its frequency names, at the scheduler's first tick of that day
//! (just after 00:00 UTC, or at once if it was created earlier that day):
//!
//! - DAILY: every day;
//! - WEEKLY: every `dayOfWeek`;
//! - BIWEEKLY: every other `dayOfWeek`, counting from the first one on or
//!   after the day it was created (or its schedule last changed);
//! - MONTHLY: on `dayOfMonth`; `29`–`31` in a shorter month, and `LAST`,
//!   mean that month's last day (so `31` runs on 28 or 29 February).

use super::model::{AuditFrequency, DayOfWeek, ScheduledAudit};

/// Milliseconds in a day.
pub const DAY_MS: u64 = 86_400_000;

/// Days since 1970-01-01 of the UTC day holding `ms`.
pub fn day_of(ms: u64) -> i64 {
    i64::try_from(ms / DAY_MS).unwrap_or(i64::MAX)
}

/// (year, month 1–12, day 1–31) of a day number (Howard Hinnant's
/// `civil_from_days`).
pub fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The day number of a civil date (`days_from_civil`).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// 0 = Sunday … 6 = Saturday (1970-01-01 was a Thursday).
pub fn weekday(days: i64) -> u32 {
    (days + 4).rem_euclid(7) as u32
}

fn days_in_month(y: i64, m: u32) -> u32 {
    let next = if m == 12 {
        days_from_civil(y + 1, 1, 1)
    } else {
        days_from_civil(y, m + 1, 1)
    };
    (next - days_from_civil(y, m, 1)) as u32
}

/// `dayOfMonth` as the model's pattern allows it: `1`–`31` or `LAST`.
pub fn valid_day_of_month(s: &str) -> bool {
    s == "LAST"
        || (matches!(s.len(), 1 | 2)
            && !s.starts_with('0')
            && s.parse::<u32>().is_ok_and(|d| (1..=31).contains(&d)))
}

/// Whether `audit` is due on `day`.
pub fn due_on(audit: &ScheduledAudit, day: i64) -> bool {
    if day < audit.anchor_day {
        return false;
    }
    match audit.frequency {
        AuditFrequency::Daily => true,
        AuditFrequency::Weekly => audit.day_of_week.is_some_and(|w| weekday(day) == w.index()),
        AuditFrequency::Biweekly => audit.day_of_week.is_some_and(|w| {
            let first = first_weekday_on_or_after(audit.anchor_day, w);
            day >= first && (day - first) % 14 == 0
        }),
        AuditFrequency::Monthly => {
            let (y, m, d) = civil(day);
            let last = days_in_month(y, m);
            match audit.day_of_month.as_deref() {
                Some("LAST") => d == last,
                Some(n) => n.parse::<u32>().is_ok_and(|n| d == n.min(last)),
                None => false,
            }
        }
    }
}

fn first_weekday_on_or_after(day: i64, w: DayOfWeek) -> i64 {
    let ahead = (i64::from(w.index()) - i64::from(weekday(day))).rem_euclid(7);
    day + ahead
}

/// The next day on or after `from` that `audit` is due, looking at most a
/// year and a bit ahead.
pub fn next_due(audit: &ScheduledAudit, from: i64) -> Option<i64> {
    (from..from + 400).find(|&d| due_on(audit, d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audit(
        frequency: AuditFrequency,
        dom: Option<&str>,
        dow: Option<DayOfWeek>,
        anchor: i64,
    ) -> ScheduledAudit {
        ScheduledAudit {
            scheduled_audit_name: "a".into(),
            scheduled_audit_arn: "arn".into(),
            frequency,
            day_of_month: dom.map(str::to_owned),
            day_of_week: dow,
            target_check_names: Vec::new(),
            anchor_day: anchor,
            last_run_day: None,
            last_run_time: None,
        }
    }

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(
            days_from_civil(2024, 2, 29) + 1,
            days_from_civil(2024, 3, 1)
        );
        for d in [-1000, 0, 11_016, 19_782, 20_000, 60_000] {
            let (y, m, dd) = civil(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
        assert_eq!(weekday(0), 4, "1970-01-01 was a Thursday");
        assert_eq!(weekday(days_from_civil(2026, 5, 3)), 0, "a Sunday");
        assert_eq!(days_in_month(2024, 2), 29);
        assert_eq!(days_in_month(2025, 2), 28);
        assert_eq!(days_in_month(2100, 2), 28);
        assert_eq!(days_in_month(2000, 2), 29);
    }

    #[test]
    fn day_of_month_pattern() {
        for ok in ["1", "9", "10", "29", "31", "LAST"] {
            assert!(valid_day_of_month(ok), "{ok}");
        }
        for bad in ["0", "32", "01", "", "last", "1.5", "-1", "100"] {
            assert!(!valid_day_of_month(bad), "{bad}");
        }
    }

    #[test]
    fn monthly_31_runs_on_the_last_day_of_february() {
        let jan1 = days_from_civil(2025, 1, 1);
        let a = audit(AuditFrequency::Monthly, Some("31"), None, jan1);
        let runs: Vec<_> = (jan1..jan1 + 120)
            .filter(|&d| due_on(&a, d))
            .map(civil)
            .collect();
        assert_eq!(
            runs,
            vec![(2025, 1, 31), (2025, 2, 28), (2025, 3, 31), (2025, 4, 30)]
        );
        let leap = days_from_civil(2024, 2, 1);
        let a = audit(AuditFrequency::Monthly, Some("30"), None, leap);
        assert_eq!(next_due(&a, leap).map(civil), Some((2024, 2, 29)));
        let a = audit(AuditFrequency::Monthly, Some("LAST"), None, leap);
        assert_eq!(next_due(&a, leap).map(civil), Some((2024, 2, 29)));
        let a = audit(AuditFrequency::Monthly, Some("15"), None, leap);
        assert_eq!(next_due(&a, leap).map(civil), Some((2024, 2, 15)));
    }

    #[test]
    fn weekly_and_biweekly() {
        // 2026-05-06 is a Wednesday.
        let wed = days_from_civil(2026, 5, 6);
        assert_eq!(weekday(wed), 3);
        let a = audit(AuditFrequency::Weekly, None, Some(DayOfWeek::Mon), wed);
        let runs: Vec<_> = (wed..wed + 21)
            .filter(|&d| due_on(&a, d))
            .map(civil)
            .collect();
        assert_eq!(runs, vec![(2026, 5, 11), (2026, 5, 18), (2026, 5, 25)]);
        let b = audit(AuditFrequency::Biweekly, None, Some(DayOfWeek::Mon), wed);
        let runs: Vec<_> = (wed..wed + 35)
            .filter(|&d| due_on(&b, d))
            .map(civil)
            .collect();
        assert_eq!(runs, vec![(2026, 5, 11), (2026, 5, 25), (2026, 6, 8)]);
        // Created on the day itself: it runs that day.
        let c = audit(AuditFrequency::Weekly, None, Some(DayOfWeek::Wed), wed);
        assert!(due_on(&c, wed));
        assert!(!due_on(&c, wed - 7), "never before it exists");
    }

    #[test]
    fn daily_runs_every_day_from_its_creation() {
        let a = audit(AuditFrequency::Daily, None, None, 100);
        assert!(!due_on(&a, 99));
        assert!((100..110).all(|d| due_on(&a, d)));
    }
}
