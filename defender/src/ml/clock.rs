//! The data clock. Seasonality is read from the datapoints' own time in
//! UTC; a fleet in another time zone simply has its day shifted, which the
//! learned shape absorbs.

pub const DAY_SECS: i64 = 86_400;
pub const HOUR_SECS: i64 = 3_600;

/// Days since the epoch (UTC midnight boundaries).
pub fn day(ts: i64) -> i64 {
    ts.div_euclid(DAY_SECS)
}

/// Hours since the epoch; used to key hourly buckets.
pub fn hour_no(ts: i64) -> i64 {
    ts.div_euclid(HOUR_SECS)
}

/// Hour of the day, 0..24.
pub fn hour_of_day(ts: i64) -> usize {
    // rem_euclid of a positive modulus is in 0..24.
    usize::try_from(ts.rem_euclid(DAY_SECS) / HOUR_SECS).unwrap_or(0)
}

/// 0 for Monday–Friday, 1 for Saturday and Sunday.
pub fn daytype_of_day(day: i64) -> usize {
    // 1970-01-01 was a Thursday: (day + 3) mod 7 is 0 on Mondays.
    if (day + 3).rem_euclid(7) >= 5 {
        1
    } else {
        0
    }
}

pub fn daytype(ts: i64) -> usize {
    daytype_of_day(day(ts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekdays() {
        // 2024-06-01 was a Saturday, 2024-06-03 a Monday.
        let sat = 1_717_200_000;
        assert_eq!(daytype(sat), 1);
        assert_eq!(daytype(sat + DAY_SECS), 1);
        assert_eq!(daytype(sat + 2 * DAY_SECS), 0);
        assert_eq!(hour_of_day(sat + 5 * HOUR_SECS + 59), 5);
        assert_eq!(day(-1), -1);
    }
}
