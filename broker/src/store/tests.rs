#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tempfile::TempDir;

use super::tables::{QUEUE, RETAINED, SESSIONS};
use super::*;
use crate::codec::{QoS, SubscriptionOptions};
use crate::message::{Message, MessageProperties};

fn db_path(dir: &TempDir) -> PathBuf {
    dir.path().join("wardmq.redb")
}

fn message(topic: &str, payload: &str) -> Arc<Message> {
    Arc::new(Message {
        topic: Arc::from(topic),
        payload: Bytes::copy_from_slice(payload.as_bytes()),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: MessageProperties {
            content_type: Some("text/plain".into()),
            user_properties: vec![("k".into(), "v".into())],
            ..MessageProperties::default()
        },
        expires_at_ms: Some(1_700_000_000_000),
        publisher: Arc::from("pub"),
    })
}

fn session(filter: &str) -> SessionRecord {
    SessionRecord {
        v5: true,
        expiry_interval: 3600,
        subscriptions: vec![StoredSubscription {
            filter: filter.into(),
            options: SubscriptionOptions {
                qos: QoS::ExactlyOnce,
                ..Default::default()
            },
            identifier: Some(7),
        }],
        disconnected_at_ms: Some(42),
    }
}

fn queued(payload: &str, pkid: u16) -> QueuedRecord {
    QueuedRecord {
        message: message("t/q", payload),
        qos: QoS::AtLeastOnce,
        pkid,
        retain: false,
        subscription_ids: vec![7],
        state: OutState::Publish,
    }
}

fn id(s: &str) -> Arc<str> {
    Arc::from(s)
}

async fn apply(store: &Store, ops: Vec<Op>) {
    store.submit(ops).await.unwrap().wait().await.unwrap();
}

async fn reopen(store: Store, path: &Path) -> (Store, Recovered) {
    store.close().await;
    Store::open(path, 64).unwrap()
}

fn find<'a>(rec: &'a Recovered, client: &str) -> &'a RecoveredSession {
    rec.sessions
        .iter()
        .find(|s| &*s.client_id == client)
        .unwrap()
}

/// Sessions "a" and "ab" (one ID prefixes the other), queues written out of
/// order, inbound ids, and retained messages all read back as written.
#[tokio::test]
async fn round_trip_across_reopen() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let (store, rec) = Store::open(&path, 64).unwrap();
    assert!(rec.sessions.is_empty() && rec.retained.is_empty());

    let mut ops = Vec::new();
    for client in ["a", "ab", "b"] {
        ops.push(Op::PutSession {
            client_id: id(client),
            record: session(client),
        });
    }
    // Seqs chosen so byte order and numeric order differ (256 > 3).
    for seq in [256u64, 3, 40, u64::MAX] {
        ops.push(Op::PutQueued {
            client_id: id("a"),
            seq,
            record: queued(&format!("a{seq}"), 1),
        });
    }
    for seq in [1u64, 0] {
        ops.push(Op::PutQueued {
            client_id: id("ab"),
            seq,
            record: queued(&format!("ab{seq}"), 2),
        });
    }
    ops.push(Op::PutInbound {
        client_id: id("a"),
        pkid: 9,
    });
    ops.push(Op::PutInbound {
        client_id: id("a"),
        pkid: 2,
    });
    ops.push(Op::PutInbound {
        client_id: id("ab"),
        pkid: 5,
    });
    ops.push(Op::PutRetained {
        topic: id("r/1"),
        message: message("r/1", "one"),
    });
    ops.push(Op::PutRetained {
        topic: id("r/2"),
        message: message("r/2", "two"),
    });
    apply(&store, ops).await;

    let (store, rec) = reopen(store, &path).await;
    let ids: Vec<&str> = rec.sessions.iter().map(|s| &*s.client_id).collect();
    assert_eq!(ids, ["a", "ab", "b"]);

    let a = find(&rec, "a");
    assert_eq!(a.record, session("a"));
    let seqs: Vec<u64> = a.queue.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, [3, 40, 256, u64::MAX]);
    assert_eq!(a.queue[0].1, queued("a3", 1));
    assert_eq!(a.inbound, [2, 9]);

    let ab = find(&rec, "ab");
    assert_eq!(ab.queue, vec![(0, queued("ab0", 2)), (1, queued("ab1", 2))]);
    assert_eq!(ab.inbound, [5]);

    let b = find(&rec, "b");
    assert!(b.queue.is_empty() && b.inbound.is_empty());

    let mut retained: Vec<Arc<Message>> = rec.retained.clone();
    retained.sort_by(|x, y| x.topic.cmp(&y.topic));
    assert_eq!(retained, vec![message("r/1", "one"), message("r/2", "two")]);
    store.close().await;
}

#[tokio::test]
async fn deletes() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let (store, _) = Store::open(&path, 64).unwrap();

    let mut ops = Vec::new();
    for client in ["a", "ab"] {
        ops.push(Op::PutSession {
            client_id: id(client),
            record: session(client),
        });
        for seq in 0..3 {
            ops.push(Op::PutQueued {
                client_id: id(client),
                seq,
                record: queued("x", 1),
            });
        }
        ops.push(Op::PutInbound {
            client_id: id(client),
            pkid: 1,
        });
        ops.push(Op::PutInbound {
            client_id: id(client),
            pkid: 2,
        });
    }
    ops.push(Op::PutRetained {
        topic: id("r/1"),
        message: message("r/1", "one"),
    });
    ops.push(Op::PutRetained {
        topic: id("r/2"),
        message: message("r/2", "two"),
    });
    apply(&store, ops).await;

    apply(
        &store,
        vec![
            Op::DeleteQueued {
                client_id: id("ab"),
                seq: 1,
            },
            Op::DeleteInbound {
                client_id: id("ab"),
                pkid: 2,
            },
            Op::DeleteRetained { topic: id("r/1") },
            // Deleting what does not exist is not an error.
            Op::DeleteQueued {
                client_id: id("zz"),
                seq: 1,
            },
            Op::DeleteRetained { topic: id("nope") },
        ],
    )
    .await;
    let (store, rec) = reopen(store, &path).await;
    let ab = find(&rec, "ab");
    assert_eq!(ab.queue.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [0, 2]);
    assert_eq!(ab.inbound, [1]);
    assert_eq!(find(&rec, "a").queue.len(), 3);
    assert_eq!(rec.retained, vec![message("r/2", "two")]);

    // "a" is a prefix of "ab": removing "a" must leave "ab" whole.
    apply(&store, vec![Op::DeleteSession { client_id: id("a") }]).await;
    let (store, rec) = reopen(store, &path).await;
    assert_eq!(rec.sessions.len(), 1);
    let ab = find(&rec, "ab");
    assert_eq!(ab.queue.len(), 2);
    assert_eq!(ab.inbound, [1]);

    // Nothing of "a" is left behind to resurface under a new session.
    apply(
        &store,
        vec![Op::PutSession {
            client_id: id("a"),
            record: session("new"),
        }],
    )
    .await;
    let (store, rec) = reopen(store, &path).await;
    let a = find(&rec, "a");
    assert_eq!(a.record, session("new"));
    assert!(a.queue.is_empty() && a.inbound.is_empty());
    store.close().await;
}

/// Ops within a batch, and batches from one submitter, apply in order.
#[tokio::test]
async fn order_within_and_across_batches() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let (store, _) = Store::open(&path, 64).unwrap();
    let c1 = store
        .submit(vec![
            Op::PutSession {
                client_id: id("c"),
                record: session("1"),
            },
            Op::PutQueued {
                client_id: id("c"),
                seq: 1,
                record: queued("x", 1),
            },
            Op::DeleteSession { client_id: id("c") },
            Op::PutSession {
                client_id: id("c"),
                record: session("2"),
            },
        ])
        .await
        .unwrap();
    let c2 = store
        .submit(vec![Op::PutQueued {
            client_id: id("c"),
            seq: 2,
            record: queued("y", 1),
        }])
        .await
        .unwrap();
    c1.wait().await.unwrap();
    c2.wait().await.unwrap();
    let (store, rec) = reopen(store, &path).await;
    let c = find(&rec, "c");
    assert_eq!(c.record, session("2"));
    assert_eq!(c.queue, vec![(2, queued("y", 1))]);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_commit() {
    const TASKS: u64 = 200;
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let (store, _) = Store::open(&path, 256).unwrap();
    apply(
        &store,
        vec![Op::PutSession {
            client_id: id("g"),
            record: session("g"),
        }],
    )
    .await;
    let before = store.commits();

    // Release every task at once, as a burst of publishers would arrive.
    let barrier = Arc::new(tokio::sync::Barrier::new(TASKS as usize));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for seq in 0..TASKS {
        let store = store.clone();
        let barrier = Arc::clone(&barrier);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let op = Op::PutQueued {
                client_id: id("g"),
                seq,
                record: queued("x", 1),
            };
            store.submit(vec![op]).await.unwrap().wait().await.unwrap();
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let commits = store.commits() - before;
    println!(
        "group commit: {TASKS} batches in {commits} transactions, {:?}",
        started.elapsed()
    );
    assert!(
        (1..TASKS).contains(&commits),
        "{commits} commits for {TASKS} batches"
    );

    let (store, rec) = reopen(store, &path).await;
    assert_eq!(find(&rec, "g").queue.len() as u64, TASKS);
    store.close().await;
}

#[tokio::test]
async fn close_commits_queued_and_refuses_later_batches() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let (store, _) = Store::open(&path, 64).unwrap();
    let other = store.clone();
    let pending = store
        .submit(vec![Op::PutRetained {
            topic: id("t"),
            message: message("t", "p"),
        }])
        .await
        .unwrap();
    store.close().await;
    pending.wait().await.unwrap();
    assert!(matches!(
        other.submit(Vec::new()).await,
        Err(StoreError::Closed)
    ));
    drop(other);

    let (store, rec) = Store::open(&path, 64).unwrap();
    assert_eq!(rec.retained, vec![message("t", "p")]);
    store.close().await;
}

/// Dropping the last clone (without `close`) still commits what was queued.
#[tokio::test]
async fn drop_commits_queued() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let (store, _) = Store::open(&path, 64).unwrap();
    let pending = store
        .submit(vec![Op::PutRetained {
            topic: id("t"),
            message: message("t", "p"),
        }])
        .await
        .unwrap();
    drop(store);
    pending.wait().await.unwrap();

    // The writer releases the file just after answering; allow it a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    let (store, rec) = loop {
        match Store::open(&path, 64) {
            Ok(opened) => break opened,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("reopen: {e}"),
        }
    };
    assert_eq!(rec.retained, vec![message("t", "p")]);
    store.close().await;
}

#[tokio::test]
async fn corrupt_records_are_skipped() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let (store, _) = Store::open(&path, 64).unwrap();
    apply(
        &store,
        vec![
            Op::PutSession {
                client_id: id("a"),
                record: session("a"),
            },
            Op::PutSession {
                client_id: id("b"),
                record: session("b"),
            },
            Op::PutQueued {
                client_id: id("a"),
                seq: 1,
                record: queued("one", 1),
            },
            Op::PutQueued {
                client_id: id("a"),
                seq: 3,
                record: queued("three", 3),
            },
            Op::PutInbound {
                client_id: id("a"),
                pkid: 4,
            },
            Op::PutRetained {
                topic: id("r/ok"),
                message: message("r/ok", "ok"),
            },
        ],
    )
    .await;
    store.close().await;

    {
        let garbage: &[u8] = &[0xff; 13];
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut sessions = txn.open_table(SESSIONS).unwrap();
            sessions.insert(b"bad".as_slice(), garbage).unwrap();
            sessions.insert(b"\xff\xfe".as_slice(), garbage).unwrap();
            let mut queue = txn.open_table(QUEUE).unwrap();
            queue.insert((b"a".as_slice(), 2u64), garbage).unwrap();
            queue
                .insert((b"a".as_slice(), 5u64), [].as_slice())
                .unwrap();
            // Entries of the undecodable session must not surface elsewhere.
            queue.insert((b"bad".as_slice(), 0u64), garbage).unwrap();
            let mut retained = txn.open_table(RETAINED).unwrap();
            retained.insert(b"r/bad".as_slice(), garbage).unwrap();
        }
        txn.commit().unwrap();
    }

    let (store, rec) = Store::open(&path, 64).unwrap();
    let ids: Vec<&str> = rec.sessions.iter().map(|s| &*s.client_id).collect();
    assert_eq!(ids, ["a", "b"]);
    let a = find(&rec, "a");
    assert_eq!(
        a.queue,
        vec![(1, queued("one", 1)), (3, queued("three", 3))]
    );
    assert_eq!(a.inbound, [4]);
    assert_eq!(rec.retained, vec![message("r/ok", "ok")]);

    // The store stays writable, and overwriting a bad record repairs it.
    apply(
        &store,
        vec![Op::PutSession {
            client_id: id("bad"),
            record: session("fixed"),
        }],
    )
    .await;
    let (store, rec) = reopen(store, &path).await;
    assert_eq!(find(&rec, "bad").record, session("fixed"));
    store.close().await;
}

#[test]
fn unopenable_file_is_an_error() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    std::fs::write(&path, vec![0x5a; 8192]).unwrap();
    assert!(matches!(
        Store::open(&path, 64),
        Err(StoreError::Storage(_))
    ));
}

const CRASH_ENV: &str = "WARDMQ_STORE_CRASH_DB";

/// Child half of [`acknowledged_batches_survive_sigkill`]: writes batches
/// as fast as it can and prints one line per acknowledged batch until it
/// is killed. Does nothing when run on its own.
#[test]
#[ignore = "helper process for acknowledged_batches_survive_sigkill"]
fn crash_child() {
    let Some(path) = std::env::var_os(CRASH_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    rt.block_on(async move {
        let (store, _) = Store::open(Path::new(&path), 64).unwrap();
        apply(
            &store,
            vec![Op::PutSession {
                client_id: id("c"),
                record: session("c"),
            }],
        )
        .await;
        println!("READY");
        // Several concurrent writers so the kill lands amid group commits.
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut tasks = Vec::new();
        for worker in 0..4u64 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut seq = worker;
                while Instant::now() < deadline {
                    let op = Op::PutQueued {
                        client_id: id("c"),
                        seq,
                        record: queued("d", 1),
                    };
                    store.submit(vec![op]).await.unwrap().wait().await.unwrap();
                    println!("ACK {seq}");
                    seq += 4;
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    });
}

#[test]
fn acknowledged_batches_survive_sigkill() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "store::tests::crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
        ])
        .args(["--test-threads", "1"])
        .env(CRASH_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();

    let mut acked = BTreeSet::new();
    let started = Instant::now();
    let mut killed = false;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(seq) = line.strip_prefix("ACK ") {
            acked.insert(seq.parse::<u64>().unwrap());
        }
        if acked.len() >= 200 || started.elapsed() > Duration::from_secs(2) {
            child.kill().unwrap();
            killed = true;
            break;
        }
    }
    // Lines already written before the kill are acknowledged too.
    for line in lines {
        let Ok(line) = line else { break };
        if let Some(seq) = line.strip_prefix("ACK ") {
            acked.insert(seq.parse::<u64>().unwrap());
        }
    }
    let status = child.wait().unwrap();
    assert!(killed, "child exited by itself: {status}");
    assert!(!acked.is_empty(), "child acknowledged nothing");

    let (store, rec) = Store::open(&path, 64).unwrap();
    let durable: BTreeSet<u64> = find(&rec, "c").queue.iter().map(|(s, _)| *s).collect();
    let lost: Vec<&u64> = acked.difference(&durable).collect();
    println!(
        "sigkill: {} acknowledged, {} durable",
        acked.len(),
        durable.len()
    );
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    drop(store);
}
