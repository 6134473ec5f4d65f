//! Tests of `parse_report`: both formats, both key spellings, every
//! rejection, and the device-report cases of spec §13.

use std::net::IpAddr;

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

fn cbor(v: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(v, &mut out).expect("encode CBOR");
    out
}

fn json_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("encode JSON")
}

/// Parses `v` as JSON and as CBOR, checks both agree, and returns the result.
fn parse_both(v: &Value) -> Result<DeviceReport, Rejection> {
    let from_json = parse_report(ReportFormat::Json, &json_bytes(v));
    let from_cbor = parse_report(ReportFormat::Cbor, &cbor(v));
    assert_eq!(from_json, from_cbor, "JSON and CBOR disagree on {v}");
    from_json
}

fn accepted(v: &Value) -> DeviceReport {
    match parse_both(v) {
        Ok(r) => r,
        Err(e) => panic!("rejected: {e}\n{v}"),
    }
}

/// Asserts a rejection with `code` and returns its detail (for log checks).
fn rejected(v: &Value, code: ErrorCode) -> Rejection {
    match parse_both(v) {
        Ok(r) => panic!("accepted: {r:?}\n{v}"),
        Err(e) => {
            assert_eq!(e.error.code(), code, "{e}");
            e
        }
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().expect("ip")
}

fn full_long() -> Value {
    json!({
        "header": {"report_id": 1530304554, "version": "1.0"},
        "metrics": {
            "listening_tcp_ports": {
                "ports": [{"interface": "eth0", "port": 24800}, {"interface": "eth0", "port": 22},
                          {"interface": "lo", "port": 22}],
                "total": 3
            },
            "listening_udp_ports": {"ports": [{"interface": "eth0", "port": 5353}], "total": 1},
            "network_stats": {"bytes_in": 29358693495u64, "bytes_out": 26485035, "packets_in": 10013573555u64, "packets_out": 11382615},
            "tcp_connections": {
                "established_connections": {
                    "connections": [
                        {"local_interface": "eth0", "local_port": 80, "remote_addr": "192.168.0.1:8000"},
                        {"local_interface": "eth0", "local_port": 80, "remote_addr": "192.168.0.1:8001"},
                        {"local_port": 443, "remote_addr": "[2001:db8::1]:50000"}
                    ],
                    "total": 3
                }
            }
        },
        "custom_metrics": {
            "MyMetricOfType_Number": [{"number": 1}],
            "MyMetricOfType_NumberList": [{"number_list": [1, 2.5, -3]}],
            "MyMetricOfType_StringList": [{"string_list": ["value_a", "value/b"]}],
            "MyMetricOfType_IpList": [{"ip_list": ["172.0.0.0", "2001:db8::1"]}]
        }
    })
}

fn full_short() -> Value {
    json!({
        "hed": {"rid": 1530304554, "v": "1.0"},
        "met": {
            "tp": {
                "pts": [{"if": "eth0", "pt": 24800}, {"if": "eth0", "pt": 22}, {"if": "lo", "pt": 22}],
                "t": 3
            },
            "up": {"pts": [{"if": "eth0", "pt": 5353}], "t": 1},
            "ns": {"bi": 29358693495u64, "bo": 26485035, "pi": 10013573555u64, "po": 11382615},
            "tc": {
                "ec": {
                    "cs": [
                        {"li": "eth0", "lp": 80, "rad": "192.168.0.1:8000"},
                        {"li": "eth0", "lp": 80, "rad": "192.168.0.1:8001"},
                        {"lp": 443, "rad": "[2001:db8::1]:50000"}
                    ],
                    "t": 3
                }
            }
        },
        "cmet": {
            "MyMetricOfType_Number": [{"number": 1}],
            "MyMetricOfType_NumberList": [{"number_list": [1, 2.5, -3]}],
            "MyMetricOfType_StringList": [{"string_list": ["value_a", "value/b"]}],
            "MyMetricOfType_IpList": [{"ip_list": ["172.0.0.0", "2001:db8::1"]}]
        }
    })
}

#[test]
fn full_report_long_names_gives_every_metric() {
    let r = accepted(&full_long());
    assert_eq!(r.report_id, 1530304554);
    let m = &r.metrics;
    assert_eq!(m.all_bytes_in, Some(29358693495));
    assert_eq!(m.all_bytes_out, Some(26485035));
    assert_eq!(m.all_packets_in, Some(10013573555));
    assert_eq!(m.all_packets_out, Some(11382615));
    assert_eq!(m.num_listening_tcp_ports, Some(3));
    assert_eq!(m.num_listening_udp_ports, Some(1));
    assert_eq!(m.num_established_tcp_connections, Some(3));
    // Sets: 22 on two interfaces is one port; two connections to one IP one address.
    assert_eq!(m.listening_tcp_ports, Some(vec![24800, 22]));
    assert_eq!(m.listening_udp_ports, Some(vec![5353]));
    assert_eq!(
        m.destination_ip_addresses,
        Some(vec![ip("192.168.0.1"), ip("2001:db8::1")])
    );
    assert_eq!(r.listening_tcp_ports.len(), 3);
    assert_eq!(r.listening_tcp_ports[2].interface.as_deref(), Some("lo"));
    assert_eq!(r.connections.len(), 3);
    assert_eq!(r.connections[2].local_port, Some(443));
    assert_eq!(r.connections[2].local_interface, None);
    assert_eq!(
        r.value("MyMetricOfType_Number"),
        Some(ReportedValue::Number(1.0))
    );
    assert_eq!(
        r.value("MyMetricOfType_NumberList"),
        Some(ReportedValue::Numbers(&[1.0, 2.5, -3.0]))
    );
    assert_eq!(
        r.value("MyMetricOfType_StringList"),
        Some(ReportedValue::Strings(&[
            "value_a".into(),
            "value/b".into()
        ]))
    );
    assert_eq!(
        r.value("MyMetricOfType_IpList"),
        Some(ReportedValue::IpAddresses(&[
            ip("172.0.0.0"),
            ip("2001:db8::1")
        ]))
    );
    assert!(r.not_retained.is_empty());
    for metric in DeviceMetric::ALL {
        assert!(r.value(metric.name()).is_some(), "{metric}");
    }
}

#[test]
fn short_names_give_the_same_report() {
    assert_eq!(accepted(&full_short()), accepted(&full_long()));
}

#[test]
fn long_and_short_names_mix_key_by_key() {
    let v = json!({
        "hed": {"report_id": 5, "v": "1.0"},
        "metrics": {"ns": {"bytes_in": 1, "bo": 2}, "tp": {"ports": [{"pt": 22, "interface": "eth0"}]}}
    });
    let r = accepted(&v);
    assert_eq!(r.metrics.all_bytes_in, Some(1));
    assert_eq!(r.metrics.all_bytes_out, Some(2));
    assert_eq!(r.metrics.listening_tcp_ports, Some(vec![22]));
}

#[test]
fn the_same_key_in_both_forms_is_refused() {
    let v = json!({"header": {"report_id": 5, "version": "1.0"}, "hed": {"rid": 5, "v": "1.0"}, "metrics": {}});
    let e = rejected(&v, ErrorCode::InvalidPayload);
    assert_eq!(e.report_id, None);
    let v = json!({"header": {"report_id": 5, "version": "1.0"}, "metrics": {"ns": {"bi": 1, "bytes_in": 2}}});
    let e = rejected(&v, ErrorCode::InvalidPayload);
    assert_eq!(e.report_id, Some(5));
    assert_eq!(
        e.error.to_string(),
        "metrics.network_stats.bytes_in: is given more than once (again as \"bytes_in\")"
    );
}

#[test]
fn a_json_key_given_twice_is_refused() {
    let payload = br#"{"header":{"report_id":1,"version":"1.0"},"metrics":{"ns":{"bi":1,"bi":2}}}"#;
    let e = parse_report(ReportFormat::Json, payload).expect_err("duplicate");
    assert_eq!(e.error.code(), ErrorCode::InvalidPayload);
}

#[test]
fn unknown_keys_are_ignored() {
    let v = json!({
        "header": {"report_id": 1, "version": "1.0", "agent": "x"},
        "metrics": {"network_stats": {"bytes_in": 1, "future": [1]}, "processes": {}},
        "extra": null
    });
    assert_eq!(accepted(&v).metrics.all_bytes_in, Some(1));
}

#[test]
fn spec_13_case_17_valid_json_report_long_names() {
    let v = json!({
        "header": {"report_id": 1530304554, "version": "1.0"},
        "metrics": {"network_stats": {"bytes_in": 10, "bytes_out": 4242, "packets_in": 1, "packets_out": 2}}
    });
    let r = parse_report(ReportFormat::Json, &json_bytes(&v)).expect("accepted");
    assert_eq!(r.report_id, 1530304554);
    assert_eq!(
        r.value("aws:all-bytes-out"),
        Some(ReportedValue::Count(4242))
    );
    // Blocks the report did not carry give no datapoint.
    assert_eq!(r.value("aws:listening-tcp-ports"), None);
    assert_eq!(r.value("aws:num-established-tcp-connections"), None);
}

#[test]
fn spec_13_case_18_short_name_cbor_report() {
    let v = json!({"hed": {"rid": 1530304555, "v": "1.0"}, "met": {"tp": {"pts": [{"pt": 8888}], "t": 1}}});
    let r = parse_report(ReportFormat::Cbor, &cbor(&v)).expect("accepted");
    assert_eq!(r.report_id, 1530304555);
    assert_eq!(
        r.value("aws:listening-tcp-ports"),
        Some(ReportedValue::Ports(&[8888]))
    );
    assert_eq!(
        r.value("aws:num-listening-tcp-ports"),
        Some(ReportedValue::Count(1))
    );
}

#[test]
fn spec_13_case_19_custom_number_as_object_is_malformed() {
    let header = json!({"report_id": 1635802047, "version": "1.0"});
    let bad = json!({"header": header, "custom_metrics": {"my_custom_metric": {"number": 0}}});
    let e = rejected(&bad, ErrorCode::InvalidPayload);
    assert_eq!(e.error.message(), "Malformed metrics report");
    assert_eq!(e.report_id, Some(1635802047));
    let good = json!({"header": header, "custom_metrics": {"my_custom_metric": [{"number": 0}]}});
    assert_eq!(
        accepted(&good).value("my_custom_metric"),
        Some(ReportedValue::Number(0.0))
    );
}

#[test]
fn spec_13_case_20_missing_blocks() {
    let metrics = json!({"network_stats": {"bytes_in": 1}});
    for (v, id) in [
        (json!({"metrics": metrics}), None),
        (
            json!({"header": {"version": "1.0"}, "metrics": metrics}),
            None,
        ),
        (
            json!({"header": {"report_id": 3}, "metrics": metrics}),
            Some(3),
        ),
        (
            json!({"header": {"report_id": 3, "version": "1.0"}}),
            Some(3),
        ),
    ] {
        let e = rejected(&v, ErrorCode::InvalidPayload);
        assert_eq!(e.report_id, id, "{v}");
        assert_eq!(e.error.message(), MALFORMED_MESSAGE);
    }
    // Either block alone is enough, even empty.
    accepted(&json!({"header": {"report_id": 3, "version": "1.0"}, "metrics": {}}));
    accepted(&json!({"header": {"report_id": 3, "version": "1.0"}, "custom_metrics": {}}));
}

#[test]
fn spec_13_case_24_bad_string_value_is_accepted_but_not_retained() {
    let v = json!({
        "header": {"report_id": 9, "version": "1.0"},
        "custom_metrics": {"names": [{"string_list": ["ok", "bad value!"]}], "good": [{"string_list": ["fine"]}]}
    });
    let r = accepted(&v);
    assert_eq!(r.value("names"), None);
    assert_eq!(
        r.value("good"),
        Some(ReportedValue::Strings(&["fine".into()]))
    );
    assert_eq!(
        r.not_retained,
        vec![NotRetained {
            name: "names".into(),
            reason: CustomValueError::BadString("bad value!".into())
        }]
    );
}

#[test]
fn spec_13_case_9_empty_port_list_is_a_value() {
    let v = json!({"header": {"report_id": 2, "version": "1.0"}, "metrics": {"listening_tcp_ports": {"ports": []}}});
    let r = accepted(&v);
    assert_eq!(
        r.value("aws:listening-tcp-ports"),
        Some(ReportedValue::Ports(&[]))
    );
    assert_eq!(
        r.value("aws:num-listening-tcp-ports"),
        Some(ReportedValue::Count(0))
    );
}

#[test]
fn totals_default_to_the_list_length_and_stand_alone() {
    let v = json!({
        "header": {"report_id": 2, "version": "1.0"},
        "metrics": {
            "tcp_connections": {"established_connections": {"connections": [{"remote_addr": "10.0.0.1:1"}]}},
            "listening_udp_ports": {"total": 7}
        }
    });
    let r = accepted(&v);
    assert_eq!(r.metrics.num_established_tcp_connections, Some(1));
    assert_eq!(r.metrics.num_listening_udp_ports, Some(7));
    assert_eq!(r.metrics.listening_udp_ports, None);
    let v =
        json!({"header": {"report_id": 2, "version": "1.0"}, "metrics": {"tc": {"ec": {"t": 12}}}});
    let r = accepted(&v);
    assert_eq!(r.metrics.num_established_tcp_connections, Some(12));
    assert_eq!(r.metrics.destination_ip_addresses, None);
}

#[test]
fn custom_metric_shapes() {
    let with = |custom: Value| json!({"header": {"report_id": 1, "version": "1.0"}, "custom_metrics": custom});
    for bad in [
        json!({"m": []}),
        json!({"m": [{"number": 1}, {"number": 2}]}),
        json!({"m": [{"number": 1, "number_list": [1]}]}),
        json!({"m": [{}]}),
        json!({"m": [{"other": 1}]}),
        json!({"m": [1]}),
        json!({"m": [{"number": "1"}]}),
        json!({"m": [{"number": [1]}]}),
        json!({"m": [{"number_list": 1}]}),
        json!({"m": [{"number_list": ["1"]}]}),
        json!({"m": [{"string_list": "a"}]}),
        json!({"m": [{"string_list": [1]}]}),
        json!({"m": [{"ip_list": [1]}]}),
        json!([]),
    ] {
        rejected(&with(bad), ErrorCode::InvalidPayload);
    }
}

#[test]
fn custom_values_that_break_the_rules_are_not_retained() {
    let v = json!({
        "header": {"report_id": 1, "version": "1.0"},
        "custom_metrics": {
            "aws:battery": [{"number": 1}],
            "bad name": [{"number": 1}],
            "precise": [{"number": 0.1234567890123456}],
            "big": [{"number": 1234567890123456u64}],
            "list": [{"number_list": [1, 1234567890123456u64]}],
            "ips": [{"ip_list": ["10.0.0.1", "10.0.0.0/8"]}],
            "ok_ips": [{"ip_list": ["::ffff:10.0.0.1"]}],
            "empty": [{"ip_list": []}],
            "negative": [{"number": -15}]
        }
    });
    let r = accepted(&v);
    let mut dropped: Vec<&str> = r.not_retained.iter().map(|n| n.name.as_str()).collect();
    dropped.sort_unstable();
    assert_eq!(
        dropped,
        ["aws:battery", "bad name", "big", "ips", "list", "precise"]
    );
    assert_eq!(
        r.value("ok_ips"),
        Some(ReportedValue::IpAddresses(&[ip("10.0.0.1")]))
    );
    assert_eq!(r.value("empty"), Some(ReportedValue::IpAddresses(&[])));
    assert_eq!(r.value("negative"), Some(ReportedValue::Number(-15.0)));
}

#[test]
fn a_custom_metric_named_twice_is_refused() {
    let payload = br#"{"header":{"report_id":1,"version":"1.0"},"custom_metrics":{"m":[{"number":1}],"m":[{"number":2}]}}"#;
    let e = parse_report(ReportFormat::Json, payload).expect_err("duplicate");
    assert_eq!(e.error.code(), ErrorCode::InvalidPayload);
}

#[test]
fn field_value_rules() {
    let with =
        |metrics: Value| json!({"header": {"report_id": 1, "version": "1.0"}, "metrics": metrics});
    for bad in [
        json!({"network_stats": {"bytes_in": -1}}),
        json!({"network_stats": {"bytes_in": 1.5}}),
        json!({"network_stats": {"bytes_in": "1"}}),
        json!({"network_stats": {"bytes_in": null}}),
        json!({"network_stats": {"bytes_in": u64::MAX}}),
        json!({"network_stats": []}),
        json!({"listening_tcp_ports": {"ports": [{"port": 0}]}}),
        json!({"listening_tcp_ports": {"ports": [{"port": 65536}]}}),
        json!({"listening_tcp_ports": {"ports": [{"interface": "eth0"}]}}),
        json!({"listening_tcp_ports": {"ports": [{"port": 22, "interface": 1}]}}),
        json!({"listening_tcp_ports": {"ports": {"port": 22}}}),
        json!({"listening_udp_ports": {"total": -1}}),
        json!({"tcp_connections": {"established_connections": {"connections": [{"local_port": 1}]}}}),
        json!({"tcp_connections": {"established_connections": {"connections": [{"remote_addr": "10.0.0.1"}]}}}),
        json!({"tcp_connections": {"established_connections": {"connections": [{"remote_addr": "10.0.0.1:0"}]}}}),
        json!({"tcp_connections": {"established_connections": {"connections": [{"remote_addr": "10.0.0.1:1", "local_port": 65536}]}}}),
        json!({"tcp_connections": {"established_connections": {"connections": [{"remote_addr": "10.0.0.1:1", "local_interface": "x".repeat(257)}]}}}),
        json!({"tcp_connections": []}),
        json!([]),
    ] {
        let e = rejected(&with(bad.clone()), ErrorCode::InvalidPayload);
        assert_eq!(e.report_id, Some(1), "{bad}");
    }
    // local_port may be 0 (spec: ≥0); listening ports and remote ports may not.
    let ok = with(json!({"tc": {"ec": {"cs": [{"rad": "10.0.0.1:1", "lp": 0}]}}}));
    assert_eq!(accepted(&ok).connections[0].local_port, Some(0));
}

#[test]
fn header_rules() {
    let with = |header: Value| json!({"header": header, "metrics": {}});
    for (header, code) in [
        (
            json!({"report_id": -1, "version": "1.0"}),
            ErrorCode::InvalidPayload,
        ),
        (
            json!({"report_id": 1.5, "version": "1.0"}),
            ErrorCode::InvalidPayload,
        ),
        (
            json!({"report_id": "1", "version": "1.0"}),
            ErrorCode::InvalidPayload,
        ),
        (
            json!({"report_id": 1, "version": 1.0}),
            ErrorCode::InvalidPayload,
        ),
        (
            json!({"report_id": 1, "version": "one"}),
            ErrorCode::InvalidPayload,
        ),
        (
            json!({"report_id": 1, "version": "2.0"}),
            ErrorCode::UnsupportedFormat,
        ),
        (json!([1, "1.0"]), ErrorCode::InvalidPayload),
    ] {
        rejected(&with(header), code);
    }
    let e = rejected(
        &with(json!({"report_id": 1, "version": "2.0"})),
        ErrorCode::UnsupportedFormat,
    );
    assert_eq!(e.report_id, Some(1));
    assert_eq!(
        e.error.message(),
        "Unsupported metrics report version 2.0; supported: 1.0"
    );
}

#[test]
fn syntax_errors_and_the_wrong_format() {
    let v = full_long();
    let e = parse_report(ReportFormat::Cbor, &json_bytes(&v)).expect_err("JSON on the cbor topic");
    assert_eq!(e.error.code(), ErrorCode::InvalidPayload);
    assert_eq!(e.report_id, None);
    let e = parse_report(ReportFormat::Json, &cbor(&v)).expect_err("CBOR on the json topic");
    assert_eq!(e.error.code(), ErrorCode::InvalidPayload);
    for bad in [
        &b""[..],
        b"{",
        b"null",
        b"[]",
        b"\"header\"",
        b"{\"header\":{}} x",
    ] {
        let e = parse_report(ReportFormat::Json, bad).expect_err("bad JSON");
        assert_eq!(e.error.code(), ErrorCode::InvalidPayload);
        assert_eq!(e.error.message(), MALFORMED_MESSAGE);
    }
    let mut trailing = cbor(&v);
    trailing.push(0);
    let e = parse_report(ReportFormat::Cbor, &trailing).expect_err("trailing CBOR");
    assert_eq!(e.error.code(), ErrorCode::InvalidPayload);
}

#[test]
fn size_limit() {
    // Padding inside an ignored key keeps the report otherwise valid.
    let pad = |n: usize| {
        let mut v = full_long();
        v["pad"] = Value::String("x".repeat(n));
        json_bytes(&v)
    };
    let base = pad(0).len();
    let at_limit = pad(MAX_REPORT_SIZE - base);
    assert_eq!(at_limit.len(), MAX_REPORT_SIZE);
    assert!(parse_report(ReportFormat::Json, &at_limit).is_ok());
    let over = pad(MAX_REPORT_SIZE - base + 1);
    let e = parse_report(ReportFormat::Json, &over).expect_err("too large");
    assert_eq!(e.error.code(), ErrorCode::PayloadTooLarge);
    assert_eq!(
        e.error,
        ReportError::TooLarge {
            size: MAX_REPORT_SIZE + 1,
            limit: MAX_REPORT_SIZE
        }
    );
}

#[test]
fn cbor_specific_inputs() {
    use ciborium::Value as C;
    let header = C::Map(vec![
        (C::Text("rid".into()), C::Integer(1.into())),
        (C::Text("v".into()), C::Text("1.0".into())),
    ]);
    let enc = |v: &C| {
        let mut out = Vec::new();
        ciborium::ser::into_writer(v, &mut out).expect("encode");
        out
    };
    // A byte string where a string belongs is a type error, not a crash.
    let report = C::Map(vec![
        (C::Text("hed".into()), header.clone()),
        (
            C::Text("met".into()),
            C::Map(vec![(
                C::Text("tp".into()),
                C::Map(vec![(
                    C::Text("pts".into()),
                    C::Array(vec![C::Map(vec![
                        (C::Text("pt".into()), C::Integer(22.into())),
                        (C::Text("if".into()), C::Bytes(b"eth0".to_vec())),
                    ])]),
                )]),
            )]),
        ),
    ]);
    let e = parse_report(ReportFormat::Cbor, &enc(&report)).expect_err("bytes");
    assert_eq!(e.error.code(), ErrorCode::InvalidPayload);
    // CBOR floats for counters are refused; for custom numbers they are fine.
    let report = C::Map(vec![
        (C::Text("hed".into()), header.clone()),
        (
            C::Text("cmet".into()),
            C::Map(vec![(
                C::Text("temp".into()),
                C::Array(vec![C::Map(vec![(
                    C::Text("number".into()),
                    C::Float(21.5),
                )])]),
            )]),
        ),
    ]);
    let r = parse_report(ReportFormat::Cbor, &enc(&report)).expect("accepted");
    assert_eq!(r.value("temp"), Some(ReportedValue::Number(21.5)));
    // A NaN custom number is not retained.
    let report = C::Map(vec![
        (C::Text("hed".into()), header),
        (
            C::Text("cmet".into()),
            C::Map(vec![(
                C::Text("temp".into()),
                C::Array(vec![C::Map(vec![(
                    C::Text("number".into()),
                    C::Float(f64::NAN),
                )])]),
            )]),
        ),
    ]);
    let r = parse_report(ReportFormat::Cbor, &enc(&report)).expect("accepted");
    assert_eq!(r.value("temp"), None);
    assert_eq!(r.not_retained.len(), 1);
}

/// Arbitrary JSON-like trees, to reach deeper than random bytes do.
fn arb_value() -> impl Strategy<Value = Value> {
    let key = prop::sample::select(vec![
        "header",
        "hed",
        "report_id",
        "rid",
        "version",
        "v",
        "metrics",
        "met",
        "custom_metrics",
        "cmet",
        "tc",
        "ec",
        "cs",
        "rad",
        "lp",
        "li",
        "t",
        "tp",
        "up",
        "pts",
        "pt",
        "if",
        "ns",
        "bi",
        "bo",
        "pi",
        "po",
        "number",
        "number_list",
        "string_list",
        "ip_list",
        "x",
    ])
    .prop_map(str::to_owned);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        Just(Value::from("1.0")),
        Just(Value::from("10.0.0.1:80")),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_report(ReportFormat::Json, &bytes);
        let _ = parse_report(ReportFormat::Cbor, &bytes);
    }

    #[test]
    fn arbitrary_trees_never_panic_and_formats_agree(v in arb_value()) {
        let from_json = parse_report(ReportFormat::Json, &json_bytes(&v));
        let from_cbor = parse_report(ReportFormat::Cbor, &cbor(&v));
        // NaN never reaches here (JSON has none), so results compare exactly.
        prop_assert_eq!(from_json, from_cbor);
    }

    #[test]
    fn mutated_valid_reports_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        short in any::<bool>(),
    ) {
        let v = if short { full_short() } else { full_long() };
        for bytes in [json_bytes(&v), cbor(&v)] {
            let mut bytes = bytes;
            for (at, b) in &flips {
                let i = at.index(bytes.len());
                bytes[i] = *b;
            }
            let _ = parse_report(ReportFormat::Json, &bytes);
            let _ = parse_report(ReportFormat::Cbor, &bytes);
        }
    }
}
