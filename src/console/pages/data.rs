//! Reads shared by several pages: whole lists (paged through, bounded) of
//! the defender's alarms and events and the audit's tasks and findings, as
//! the API model's JSON so pages read the same member names the API shows.

use serde::Serialize;
use serde_json::Value;
use wardmq_defender::audit::{Audit, FindingsQuery, TaskFilter};
use wardmq_defender::detect::model::Timestamp;
use wardmq_defender::engine::Defender;
use wardmq_defender::store::ViolationFilter;

use crate::console::blocking;
use crate::console::layout::now_ms;

/// Pages read at most, so one view of a huge fleet stays bounded.
const MAX_PAGES: usize = 20;
const PAGE: u32 = 250;

fn json<T: Serialize>(items: Vec<T>) -> Vec<Value> {
    items
        .into_iter()
        .filter_map(|i| serde_json::to_value(i).ok())
        .collect()
}

/// Every page of a token-paged list, up to `MAX_PAGES`.
pub(super) fn all<T, E>(
    mut page: impl FnMut(Option<&str>) -> Result<(Vec<T>, Option<String>), E>,
) -> Result<Vec<T>, E> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let (items, next) = page(token.as_deref())?;
        out.extend(items);
        match next {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    Ok(out)
}

pub async fn active(d: &Defender, filter: ViolationFilter) -> Result<Vec<Value>, String> {
    let d = d.clone();
    blocking(move || {
        all(|t| {
            d.list_active_violations(&filter, Some(PAGE), t)
                .map(|p| (json(p.items), p.next_token))
        })
    })
    .await
}

pub async fn events(
    d: &Defender,
    since_ms: u64,
    filter: ViolationFilter,
) -> Result<Vec<Value>, String> {
    let d = d.clone();
    let (start, end) = (
        Timestamp::from_millis(since_ms),
        Timestamp::from_millis(now_ms()),
    );
    blocking(move || {
        all(|t| {
            d.list_violation_events(start, end, &filter, Some(PAGE), t)
                .map(|p| (json(p.items), p.next_token))
        })
    })
    .await
}

/// Audit tasks of the last `days`, newest first.
pub async fn tasks(a: &Audit, days: u64) -> Result<Vec<Value>, String> {
    let a = a.clone();
    let now = now_ms();
    let filter = TaskFilter {
        start_time: Timestamp::from_millis(now.saturating_sub(days * 86_400_000)),
        end_time: Timestamp::from_millis(now),
        task_type: None,
        task_status: None,
    };
    let mut tasks = blocking(move || {
        all(|t| {
            a.list_audit_tasks(&filter, Some(PAGE), t)
                .map(|p| (json(p.items), p.next_token))
        })
    })
    .await?;
    tasks.sort_by(|x, y| {
        let t = |v: &Value| v["taskStartTime"].as_f64().unwrap_or(0.0);
        t(y).total_cmp(&t(x))
    });
    Ok(tasks)
}

pub async fn findings(a: &Audit, task_id: &str) -> Result<Vec<Value>, String> {
    let a = a.clone();
    let task_id = task_id.to_owned();
    blocking(move || {
        all(|t| {
            let q = FindingsQuery {
                task_id: Some(task_id.clone()),
                max_results: Some(PAGE),
                next_token: t.map(str::to_owned),
                ..FindingsQuery::default()
            };
            a.list_audit_findings(&q)
                .map(|p| (json(p.items), p.next_token))
        })
    })
    .await
}

/// Counts of `items` by the text at `key` (a JSON pointer), largest first.
pub fn count_by(items: &[Value], key: &str) -> Vec<(String, usize)> {
    let mut m = std::collections::BTreeMap::<String, usize>::new();
    for i in items {
        *m.entry(crate::console::layout::text(
            i.pointer(key).unwrap_or(&Value::Null),
        ))
        .or_default() += 1;
    }
    let mut v: Vec<_> = m.into_iter().collect();
    v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}
