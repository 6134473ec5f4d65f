//! MetricStore against real redb files.

use tempfile::TempDir;

use super::*;
use crate::detect::model::{MetricValue, Timestamp};

fn open(dir: &TempDir) -> DefenderDb {
    DefenderDb::open(dir.path()).expect("opens")
}

fn t(s: u64) -> Timestamp {
    Timestamp::from_secs(s)
}

const S: SeriesKey<'static> = SeriesKey {
    thing: "dev-1",
    metric: "aws:num-messages-sent",
    dimension: "",
};

fn fill(store: &MetricStore, series: SeriesKey<'_>, times: impl IntoIterator<Item = u64>) {
    let values: Vec<(u64, MetricValue)> = times
        .into_iter()
        .map(|s| (s, MetricValue::count(s)))
        .collect();
    let points: Vec<_> = values.iter().map(|(s, v)| (series, t(*s), v)).collect();
    store.put_period(&points).expect("stores");
}

#[test]
fn round_trip_across_reopen() {
    let dir = TempDir::new().expect("tempdir");
    {
        let db = open(&dir);
        fill(&db.metrics(), S, [300, 600]);
        let cidrs = MetricValue::cidrs(["10.0.0.1/32"]);
        db.metrics()
            .put_period(&[(
                SeriesKey::new("dev-1", "aws:source-ip-address", ""),
                t(300),
                &cidrs,
            )])
            .expect("stores");
    }
    assert!(dir.path().join(FILE_NAME).exists());
    let db = open(&dir);
    let page = db
        .metrics()
        .list(&S, t(0), t(1000), None, None)
        .expect("lists");
    assert_eq!(
        page.items,
        vec![
            MetricDatum {
                timestamp: t(300),
                value: MetricValue::count(300)
            },
            MetricDatum {
                timestamp: t(600),
                value: MetricValue::count(600)
            },
        ]
    );
    assert_eq!(page.next_token, None);
    let ip = db
        .metrics()
        .list(
            &SeriesKey::new("dev-1", "aws:source-ip-address", ""),
            t(0),
            t(1000),
            None,
            None,
        )
        .expect("lists");
    assert_eq!(ip.items[0].value, MetricValue::cidrs(["10.0.0.1/32"]));
}

#[test]
fn series_are_separate_and_a_rewrite_replaces() {
    let dir = TempDir::new().expect("tempdir");
    let m = open(&dir).metrics();
    fill(&m, S, [300]);
    fill(
        &m,
        SeriesKey {
            dimension: "TopicFilter",
            ..S
        },
        [300, 600],
    );
    fill(
        &m,
        SeriesKey {
            thing: "dev-10",
            ..S
        },
        [300],
    );
    let v = MetricValue::count(7);
    m.put_period(&[(S, t(300), &v)]).expect("stores");
    let page = m.list(&S, t(0), t(1000), None, None).expect("lists");
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].value, v);
    let dim = SeriesKey {
        dimension: "TopicFilter",
        ..S
    };
    assert_eq!(
        m.list(&dim, t(0), t(1000), None, None)
            .expect("lists")
            .items
            .len(),
        2
    );
}

#[test]
fn range_is_inclusive_and_pages_through_three_pages() {
    let dir = TempDir::new().expect("tempdir");
    let m = open(&dir).metrics();
    // 0, 300, ..., 3000: eleven datapoints; the query asks for 300..=2400.
    fill(&m, S, (0..=10).map(|i| i * 300));
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = m
            .list(&S, t(300), t(2400), Some(3), token.as_deref())
            .expect("lists");
        pages += 1;
        assert!(page.items.len() <= 3);
        seen.extend(page.items.iter().map(|d| d.timestamp.as_millis() / 1000));
        match page.next_token {
            Some(tok) => token = Some(tok),
            None => break,
        }
    }
    assert_eq!(pages, 3, "8 datapoints in pages of 3");
    assert_eq!(seen, vec![300, 600, 900, 1200, 1500, 1800, 2100, 2400]);
}

#[test]
fn exact_last_page_has_no_token() {
    // Spec §13 case 39: three datapoints, maxResults 2 -> 2 + token, then 1.
    let dir = TempDir::new().expect("tempdir");
    let m = open(&dir).metrics();
    fill(&m, S, [300, 600, 900]);
    let first = m.list(&S, t(0), t(900), Some(2), None).expect("lists");
    assert_eq!(first.items.len(), 2);
    let token = first.next_token.expect("more");
    let second = m
        .list(&S, t(0), t(900), Some(2), Some(&token))
        .expect("lists");
    assert_eq!(second.items.len(), 1);
    assert_eq!(second.next_token, None);
    let all = m.list(&S, t(0), t(900), Some(3), None).expect("lists");
    assert_eq!((all.items.len(), all.next_token), (3, None));
}

#[test]
fn bad_requests_are_typed() {
    let dir = TempDir::new().expect("tempdir");
    let m = open(&dir).metrics();
    fill(&m, S, [300, 600, 900]);
    let tok = m
        .list(&S, t(0), t(900), Some(1), None)
        .expect("lists")
        .next_token
        .expect("more");
    // A token is bound to its query: other range, other series, garbage.
    for bad in [
        m.list(&S, t(0), t(901), Some(1), Some(&tok)),
        m.list(
            &SeriesKey {
                thing: "dev-2",
                ..S
            },
            t(0),
            t(900),
            Some(1),
            Some(&tok),
        ),
        m.list(&S, t(0), t(900), Some(1), Some("not-a-token")),
    ] {
        assert!(matches!(bad, Err(StoreError::InvalidToken)), "{bad:?}");
    }
    assert!(matches!(
        m.list(&S, t(10), t(0), None, None),
        Err(StoreError::InvalidRequest(_))
    ));
    assert!(matches!(
        m.list(&S, t(0), t(10), Some(251), None),
        Err(StoreError::InvalidRequest(_))
    ));
}

#[test]
fn expire_removes_only_old_datapoints() {
    let dir = TempDir::new().expect("tempdir");
    {
        let m = open(&dir).metrics();
        fill(&m, S, [100, 200, 300]);
        fill(
            &m,
            SeriesKey {
                thing: "dev-2",
                ..S
            },
            [150, 300],
        );
        assert_eq!(m.expire(t(200)).expect("expires"), 2, "100 and 150");
        assert_eq!(m.expire(t(200)).expect("expires"), 0, "idempotent");
    }
    let m = open(&dir).metrics();
    let left: Vec<u64> = m
        .list(&S, t(0), t(1000), None, None)
        .expect("lists")
        .items
        .iter()
        .map(|d| d.timestamp.as_millis() / 1000)
        .collect();
    assert_eq!(left, vec![200, 300], "the cutoff itself is kept");
    let dev2 = m
        .list(
            &SeriesKey {
                thing: "dev-2",
                ..S
            },
            t(0),
            t(1000),
            None,
            None,
        )
        .expect("lists");
    assert_eq!(dev2.items.len(), 1);
    assert_eq!(m.expire(t(10_000)).expect("expires"), 3);
}

#[test]
fn retention_cutoff_is_now_minus_retention() {
    let now = Timestamp::from_secs(30 * 24 * 3600);
    assert_eq!(
        retention_cutoff(now, DEFAULT_METRIC_RETENTION),
        Timestamp::from_secs(16 * 24 * 3600)
    );
    assert_eq!(retention_cutoff(t(5), DEFAULT_EVENT_RETENTION), t(0));
}

#[test]
fn an_undecodable_datapoint_is_skipped() {
    let dir = TempDir::new().expect("tempdir");
    let db = open(&dir);
    fill(&db.metrics(), S, [300, 600]);
    // Damage the 300 s value behind the store's back.
    {
        let txn = db.db.begin_write().expect("txn");
        {
            let mut table = txn.open_table(tables::METRIC_POINTS).expect("table");
            let prefix = keys::series_prefix(&S).expect("fits");
            let k = keys::datapoint_key(&prefix, 300_000);
            table
                .insert(k.as_slice(), [9u8, 9, 9].as_slice())
                .expect("insert");
        }
        txn.commit().expect("commit");
    }
    let page = db
        .metrics()
        .list(&S, t(0), t(1000), None, None)
        .expect("lists");
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].timestamp, t(600));
}

/// 100,000 things × 10 metrics in one `put_period`, then the next period,
/// then expiring the first. Run with
/// `cargo test -p wardmq-defender --release -- --ignored --nocapture fleet_metric_period`.
#[test]
#[ignore]
fn fleet_metric_period() {
    use std::time::Instant;
    let dir = TempDir::new().expect("tempdir");
    let m = open(&dir).metrics();
    let things: Vec<String> = (0..100_000).map(|i| format!("thing-{i:06}")).collect();
    let metrics: Vec<String> = (0..10).map(|i| format!("aws:metric-{i}")).collect();
    let value = MetricValue::count(42);
    for period in 0..3u64 {
        let points: Vec<_> = things
            .iter()
            .flat_map(|th| {
                metrics
                    .iter()
                    .map(|me| (SeriesKey::new(th, me, ""), t(period * 300), &value))
            })
            .collect();
        let start = Instant::now();
        m.put_period(&points).expect("stores");
        println!(
            "put_period #{period}: {} datapoints in {:?}",
            points.len(),
            start.elapsed()
        );
    }
    let start = Instant::now();
    let page = m
        .list(
            &SeriesKey::new("thing-050000", "aws:metric-3", ""),
            t(0),
            t(900),
            None,
            None,
        )
        .expect("lists");
    println!("list one series: {:?}", start.elapsed());
    assert_eq!(page.items.len(), 3);
    let start = Instant::now();
    let n = m.expire(t(300)).expect("expires");
    println!("expire one period: {n} datapoints in {:?}", start.elapsed());
    assert_eq!(n, 1_000_000);
}
