//! Turns a JSON or CBOR payload into a [`DeviceReport`], or says why not.
//!
//! Decisions the AWS docs leave open (recorded here and in the report):
//! - Long and short key names may be mixed freely, key by key; the same key
//!   given twice (twice long, or long and short) is ambiguous and refused.
//! - Unknown keys are ignored, so newer agents' extra fields do not break.
//! - A `total` missing beside a list is the list's length; a `total` given
//!   is kept as given.
//! - `null` is not "absent": a present field with the wrong type is refused.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use super::custom::{self, CustomValue, CustomValueError};
use super::error::{Rejection, ReportError};
use super::keys::{self, Key};
use super::model::{Connection, DeviceMetrics, DeviceReport, ListeningPort, NotRetained};
use super::node::{decode_cbor, decode_json, Node};
use super::topic::ReportFormat;
use super::validate;

/// Largest report accepted: AWS IoT Core's MQTT payload limit (128 KB), as
/// no Device Defender specific limit is documented (spec §6.3).
pub const MAX_REPORT_SIZE: usize = 128 * 1024;

/// Parses and validates a report received on a `…/metrics/{json,cbor}` topic.
pub fn parse_report(format: ReportFormat, payload: &[u8]) -> Result<DeviceReport, Rejection> {
    let without_id = |error| Rejection {
        report_id: None,
        error,
    };
    if payload.len() > MAX_REPORT_SIZE {
        return Err(without_id(ReportError::TooLarge {
            size: payload.len(),
            limit: MAX_REPORT_SIZE,
        }));
    }
    let decoded = match format {
        ReportFormat::Json => decode_json(payload),
        ReportFormat::Cbor => decode_cbor(payload),
    };
    let root = decoded.map_err(|e| without_id(ReportError::Syntax(e.0)))?;
    let root = Obj::new(&root, String::new()).map_err(without_id)?;

    // The report id comes first so that every later error can echo it.
    let (header, header_path) = root.require(keys::HEADER).map_err(without_id)?;
    let header = Obj::new(header, header_path).map_err(without_id)?;
    let (id_node, id_path) = header.require(keys::REPORT_ID).map_err(without_id)?;
    let report_id = validate::report_id(id_node, &id_path).map_err(without_id)?;

    parse_body(&root, &header, report_id).map_err(|error| Rejection {
        report_id: Some(report_id),
        error,
    })
}

fn parse_body(
    root: &Obj<'_>,
    header: &Obj<'_>,
    report_id: u64,
) -> Result<DeviceReport, ReportError> {
    let (version, version_path) = header.require(keys::VERSION)?;
    validate::version(version, &version_path)?;

    let metrics = root.get(keys::METRICS)?;
    let custom = root.get(keys::CUSTOM_METRICS)?;
    if metrics.is_none() && custom.is_none() {
        return Err(ReportError::schema(
            "(root)",
            "a report needs \"metrics\" or \"custom_metrics\"",
        ));
    }

    let mut report = DeviceReport {
        report_id,
        metrics: DeviceMetrics::default(),
        connections: Vec::new(),
        listening_tcp_ports: Vec::new(),
        listening_udp_ports: Vec::new(),
        custom_metrics: BTreeMap::new(),
        not_retained: Vec::new(),
    };
    if let Some((node, path)) = metrics {
        parse_metrics(&Obj::new(node, path)?, &mut report)?;
    }
    if let Some((node, path)) = custom {
        parse_custom_metrics(node, &path, &mut report)?;
    }
    Ok(report)
}

fn parse_metrics(metrics: &Obj<'_>, report: &mut DeviceReport) -> Result<(), ReportError> {
    if let Some((node, path)) = metrics.get(keys::TCP_CONNECTIONS)? {
        let tcp = Obj::new(node, path)?;
        if let Some((node, path)) = tcp.get(keys::ESTABLISHED_CONNECTIONS)? {
            parse_established(&Obj::new(node, path)?, report)?;
        }
    }
    if let Some((node, path)) = metrics.get(keys::LISTENING_TCP_PORTS)? {
        let (ports, total) = parse_listening(&Obj::new(node, path)?)?;
        if let Some(ports) = ports {
            report.metrics.listening_tcp_ports = Some(distinct_ports(&ports));
            report.listening_tcp_ports = ports;
        }
        report.metrics.num_listening_tcp_ports = total;
    }
    if let Some((node, path)) = metrics.get(keys::LISTENING_UDP_PORTS)? {
        let (ports, total) = parse_listening(&Obj::new(node, path)?)?;
        if let Some(ports) = ports {
            report.metrics.listening_udp_ports = Some(distinct_ports(&ports));
            report.listening_udp_ports = ports;
        }
        report.metrics.num_listening_udp_ports = total;
    }
    if let Some((node, path)) = metrics.get(keys::NETWORK_STATS)? {
        let stats = Obj::new(node, path)?;
        let m = &mut report.metrics;
        m.all_bytes_in = stats.optional_count(keys::BYTES_IN)?;
        m.all_bytes_out = stats.optional_count(keys::BYTES_OUT)?;
        m.all_packets_in = stats.optional_count(keys::PACKETS_IN)?;
        m.all_packets_out = stats.optional_count(keys::PACKETS_OUT)?;
    }
    Ok(())
}

fn parse_established(ec: &Obj<'_>, report: &mut DeviceReport) -> Result<(), ReportError> {
    let mut listed = None;
    if let Some((node, path)) = ec.get(keys::CONNECTIONS)? {
        let items = array(node, &path)?;
        let mut connections = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let c = Obj::new(item, format!("{path}[{i}]"))?;
            let (remote, remote_path) = c.require(keys::REMOTE_ADDR)?;
            let remote = validate::remote_addr(remote, &remote_path)?;
            let local_port = match c.get(keys::LOCAL_PORT)? {
                Some((node, path)) => Some(validate::port(node, &path, 0)?),
                None => None,
            };
            let local_interface = match c.get(keys::LOCAL_INTERFACE)? {
                Some((node, path)) => Some(validate::interface(node, &path)?),
                None => None,
            };
            connections.push(Connection {
                remote,
                local_port,
                local_interface,
            });
        }
        let ips: Vec<IpAddr> = connections.iter().map(|c| c.remote.ip()).collect();
        report.metrics.destination_ip_addresses = Some(distinct(&ips));
        listed = Some(connections.len() as u64);
        report.connections = connections;
    }
    let total = ec.optional_count(keys::TOTAL)?;
    report.metrics.num_established_tcp_connections = total.or(listed);
    Ok(())
}

/// A `listening_{tcp,udp}_ports` block: the ports listed (if the list is
/// present) and the count.
fn parse_listening(
    block: &Obj<'_>,
) -> Result<(Option<Vec<ListeningPort>>, Option<u64>), ReportError> {
    let mut ports = None;
    if let Some((node, path)) = block.get(keys::PORTS)? {
        let items = array(node, &path)?;
        let mut list = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let p = Obj::new(item, format!("{path}[{i}]"))?;
            let (port, port_path) = p.require(keys::PORT)?;
            let port = validate::port(port, &port_path, 1)?;
            let interface = match p.get(keys::INTERFACE)? {
                Some((node, path)) => Some(validate::interface(node, &path)?),
                None => None,
            };
            list.push(ListeningPort { port, interface });
        }
        ports = Some(list);
    }
    let listed = ports.as_ref().map(|p: &Vec<ListeningPort>| p.len() as u64);
    let total = block.optional_count(keys::TOTAL)?.or(listed);
    Ok((ports, total))
}

fn distinct_ports(ports: &[ListeningPort]) -> Vec<u16> {
    let ports: Vec<u16> = ports.iter().map(|p| p.port).collect();
    distinct(&ports)
}

/// The distinct values in first-seen order: the metric is a set, but a
/// stable order keeps stored datapoints and test output predictable.
fn distinct<T: Copy + Eq + std::hash::Hash>(items: &[T]) -> Vec<T> {
    let mut seen = HashSet::with_capacity(items.len());
    items.iter().copied().filter(|x| seen.insert(*x)).collect()
}

/// `custom_metrics`: name → `[ { <kind>: value } ]`. A wrong shape refuses
/// the report (AWS's documented `InvalidPayload` example is a `number`
/// given as an object instead of an array); a value that breaks the value
/// rules is only not retained.
fn parse_custom_metrics(
    node: &Node,
    path: &str,
    report: &mut DeviceReport,
) -> Result<(), ReportError> {
    let Node::Map(entries) = node else {
        return Err(wrong_type(path, "an object", node));
    };
    let mut names = HashSet::with_capacity(entries.len());
    for (name, value) in entries {
        let path = format!("{path}[{name:?}]");
        if !names.insert(name.as_str()) {
            return Err(ReportError::schema(path, "is given more than once"));
        }
        let value = custom_value(value, &path)?;
        let checked = custom::validate_metric_name(name).and_then(|()| {
            let value = value?;
            custom::validate_value(value.metric_type(), &value)?;
            Ok(value)
        });
        match checked {
            Ok(value) => {
                report.custom_metrics.insert(name.clone(), value);
            }
            Err(reason) => report.not_retained.push(NotRetained {
                name: name.clone(),
                reason,
            }),
        }
    }
    Ok(())
}

/// One custom metric's value. The outer `Result` is the shape (refuses the
/// report); the inner one the value rules checked while converting (the
/// value is not retained).
fn custom_value(
    node: &Node,
    path: &str,
) -> Result<Result<CustomValue, CustomValueError>, ReportError> {
    let items = array(node, path)?;
    let [item] = items else {
        return Err(ReportError::schema(
            path,
            format!(
                "must be an array of exactly one object, found {} elements",
                items.len()
            ),
        ));
    };
    let obj = Obj::new(item, format!("{path}[0]"))?;
    let kinds = [
        keys::NUMBER,
        keys::NUMBER_LIST,
        keys::STRING_LIST,
        keys::IP_LIST,
    ];
    let mut found = None;
    for kind in kinds {
        if let Some(entry) = obj.get(kind)? {
            if found.is_some() {
                return Err(ReportError::schema(
                    &obj.path,
                    "must hold exactly one of number, number_list, string_list, ip_list",
                ));
            }
            found = Some((kind, entry));
        }
    }
    let Some((kind, (node, path))) = found else {
        return Err(ReportError::schema(
            &obj.path,
            "must hold one of number, number_list, string_list, ip_list",
        ));
    };
    Ok(if kind == keys::NUMBER {
        number(node, &path)?.map(CustomValue::Number)
    } else if kind == keys::NUMBER_LIST {
        let mut out = Vec::new();
        for (i, n) in array(node, &path)?.iter().enumerate() {
            out.push(number(n, &format!("{path}[{i}]"))?);
        }
        out.into_iter()
            .collect::<Result<_, _>>()
            .map(CustomValue::NumberList)
    } else if kind == keys::STRING_LIST {
        let strings = texts(node, &path)?;
        Ok(CustomValue::StringList(
            strings.into_iter().map(str::to_owned).collect(),
        ))
    } else {
        let strings = texts(node, &path)?;
        strings
            .into_iter()
            .map(|s| custom::parse_ip(s).map(|ip| ip.to_canonical()))
            .collect::<Result<_, _>>()
            .map(CustomValue::IpList)
    })
}

/// A number element: its type is checked here (shape), its precision in
/// `custom` (value rule). Integers are checked exactly, before rounding.
fn number(node: &Node, path: &str) -> Result<Result<f64, CustomValueError>, ReportError> {
    Ok(match node {
        Node::UInt(n) => custom::validate_integer(i128::from(*n)).map(|()| *n as f64),
        Node::NegInt(n) => custom::validate_integer(*n).map(|()| *n as f64),
        Node::Float(x) => custom::validate_number(*x).map(|()| *x),
        other => return Err(wrong_type(path, "a number", other)),
    })
}

fn texts<'a>(node: &'a Node, path: &str) -> Result<Vec<&'a str>, ReportError> {
    array(node, path)?
        .iter()
        .enumerate()
        .map(|(i, n)| match n {
            Node::Text(s) => Ok(s.as_str()),
            other => Err(wrong_type(&format!("{path}[{i}]"), "a string", other)),
        })
        .collect()
}

fn array<'a>(node: &'a Node, path: &str) -> Result<&'a [Node], ReportError> {
    match node {
        Node::Array(items) => Ok(items),
        other => Err(wrong_type(path, "an array", other)),
    }
}

fn wrong_type(path: &str, expected: &str, found: &Node) -> ReportError {
    ReportError::schema(path, format!("must be {expected}, found {}", found.kind()))
}

/// An object in the report, with its path for error messages.
struct Obj<'a> {
    entries: &'a [(String, Node)],
    path: String,
}

impl<'a> Obj<'a> {
    fn new(node: &'a Node, path: String) -> Result<Obj<'a>, ReportError> {
        match node {
            Node::Map(entries) => Ok(Obj { entries, path }),
            other => {
                let shown = if path.is_empty() { "(root)" } else { &path };
                Err(wrong_type(shown, "an object", other))
            }
        }
    }

    fn child_path(&self, key: Key) -> String {
        if self.path.is_empty() {
            key.long.to_owned()
        } else {
            format!("{}.{}", self.path, key.long)
        }
    }

    /// The value under `key` in either form, with its path.
    fn get(&self, key: Key) -> Result<Option<(&'a Node, String)>, ReportError> {
        let mut hits = self.entries.iter().filter(|(name, _)| key.matches(name));
        let Some((_, first)) = hits.next() else {
            return Ok(None);
        };
        if let Some((second, _)) = hits.next() {
            return Err(ReportError::schema(
                self.child_path(key),
                format!("is given more than once (again as {second:?})"),
            ));
        }
        Ok(Some((first, self.child_path(key))))
    }

    fn require(&self, key: Key) -> Result<(&'a Node, String), ReportError> {
        self.get(key)?
            .ok_or_else(|| ReportError::schema(self.child_path(key), "is missing"))
    }

    fn optional_count(&self, key: Key) -> Result<Option<u64>, ReportError> {
        match self.get(key)? {
            Some((node, path)) => validate::count(node, &path).map(Some),
            None => Ok(None),
        }
    }
}
