//! Admission control against connection floods: `wardmq serve` with small
//! connection-rate limits; raw TCP sockets to its mutual-TLS listener from
//! 127.0.0.1 (no loopback exemption). Sockets over the limit must be closed
//! before any TLS byte is exchanged, counted on /metrics by reason, and
//! seen by the broker-level profile as connection attempts.

mod common;

use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::metric;
use common::wardmq::Wardmq;
use common::TIMEOUT;

/// Opens `n` sockets at once; how many the broker closed without a word
/// (the others wait for a ClientHello).
fn flood(port: u16, n: usize) -> (usize, Vec<TcpStream>) {
    let sockets: Vec<TcpStream> = (0..n)
        .map(|_| TcpStream::connect(("127.0.0.1", port)).expect("connect"))
        .collect();
    let mut closed = 0;
    for s in &sockets {
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        let mut byte = [0u8; 1];
        match (&*s).read(&mut byte) {
            Ok(0) => closed += 1,
            Err(e) if e.kind() == ErrorKind::ConnectionReset => closed += 1,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            other => panic!("the broker sent something before the ClientHello: {other:?}"),
        }
    }
    (closed, sockets)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// Burst 5 at 1/s per address: of 20 sockets at once, 5 (or one more per
/// elapsed second) wait for their handshake, the rest are closed at once
/// and counted as `rate_ip`; the broker-level profile (at most 8 attempts
/// a period) alarms for 127.0.0.1, which only the refused attempts can
/// push past 8.
#[test]
fn a_flood_from_one_address_is_cut_before_tls_and_seen_by_the_defender() {
    let w = Wardmq::start_defender(
        "[limits]\nconnection_rate_per_ip = 1\nconnection_burst_per_ip = 5\nconnection_rate = 0\n\
         [defender]\ndatapoint_seconds = 1\n\
         [defender.broker_profile]\nper_ip_connection_attempts = 8\n",
    );
    let since = now().saturating_sub(1);
    let started = Instant::now();
    let (closed, open) = flood(w.tls_port, 20);
    let extra = started.elapsed().as_secs() as usize;
    assert!(
        (20 - 5 - extra..=15).contains(&closed),
        "closed {closed} of 20 (burst 5, {extra} s elapsed)"
    );
    let rejected = metric(
        &w.admin,
        "wardmq_connections_rejected_total{reason=\"rate_ip\"}",
    );
    assert_eq!(rejected, closed as f64);
    assert_eq!(
        metric(
            &w.admin,
            "wardmq_connections_rejected_total{reason=\"rate_global\"}"
        ),
        0.0
    );
    drop(open);

    let deadline = Instant::now() + TIMEOUT;
    loop {
        let events = w.aws(&[
            "list-violation-events",
            "--start-time",
            &since.to_string(),
            "--end-time",
            &(now() + 5).to_string(),
        ]);
        let alarmed = events["violationEvents"]
            .as_array()
            .expect("violationEvents")
            .iter()
            .any(|e| {
                e["thingName"] == "ip:127.0.0.1"
                    && e["behavior"]["name"] == "connection-attempts-per-ip"
                    && e["violationEventType"] == "in-alarm"
            });
        if alarmed {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no connection-attempts alarm for ip:127.0.0.1: {events}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The broker-wide bucket (burst 3, per-address limit off) closes the
/// rest and counts them as `rate_global`.
#[test]
fn the_global_rate_caps_every_address_together() {
    let w = Wardmq::start_defender(
        "[limits]\nconnection_rate_per_ip = 0\nconnection_rate = 1\nconnection_burst = 3\n",
    );
    let started = Instant::now();
    let (closed, _open) = flood(w.tls_port, 10);
    let extra = started.elapsed().as_secs() as usize;
    assert!(
        (10 - 3 - extra..=7).contains(&closed),
        "closed {closed} of 10"
    );
    assert_eq!(
        metric(
            &w.admin,
            "wardmq_connections_rejected_total{reason=\"rate_global\"}"
        ),
        closed as f64
    );
}
