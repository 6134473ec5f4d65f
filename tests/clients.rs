//! External clients nobody here wrote (mosquitto_pub/_sub, paho-mqtt)
//! against a broker on a free loopback port.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paho_v311_scenarios() {
    let b = start().await;
    let addr = b.addr;
    tokio::task::spawn_blocking(move || paho("v311.py", addr, &[]))
        .await
        .expect("join");
    b.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paho_v5_scenarios() {
    let b = start().await;
    let addr = b.addr;
    tokio::task::spawn_blocking(move || paho("v5.py", addr, &[]))
        .await
        .expect("join");
    b.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_clients_both_versions_all_qos() {
    let b = start().await;
    let addr = b.addr;
    tokio::task::spawn_blocking(move || {
        for version in ["mqttv311", "mqttv5"] {
            for qos in ["0", "1", "2"] {
                let topic = format!("mq/{version}/{qos}");
                let sub = mosquitto_sub(
                    addr,
                    &["-V", version, "-q", qos, "-t", &topic, "-v", "-C", "1"],
                );
                mosquitto_pub(
                    addr,
                    &["-V", version, "-q", qos, "-t", &topic, "-m", "hello"],
                );
                assert_eq!(sub.messages(), vec![format!("{topic} hello")]);
            }
        }
    })
    .await
    .expect("join");
    b.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_retained_and_persistent_session() {
    let b = start().await;
    let addr = b.addr;
    tokio::task::spawn_blocking(move || {
        mosquitto_pub(
            addr,
            &["-q", "1", "-r", "-t", "status/dev1", "-m", "online"],
        );
        let sub = mosquitto_sub(addr, &["-t", "status/+", "-v", "-C", "1"]);
        assert_eq!(sub.messages(), vec!["status/dev1 online"]);

        // Subscribe with a persistent session, leave, get what was missed.
        let sub = mosquitto_sub(
            addr,
            &["-c", "-i", "keeper", "-q", "1", "-t", "inbox", "-W", "1"],
        );
        let _ = sub.messages();
        for i in 0..3 {
            mosquitto_pub(addr, &["-q", "1", "-t", "inbox", "-m", &format!("m{i}")]);
        }
        let sub = mosquitto_sub(
            addr,
            &["-c", "-i", "keeper", "-q", "1", "-t", "inbox", "-C", "3"],
        );
        assert_eq!(sub.messages(), vec!["m0", "m1", "m2"]);
    })
    .await
    .expect("join");
    b.server.shutdown().await;
}
