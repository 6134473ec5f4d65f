//! The typed result of a valid report: the device-side metrics by their
//! Device Defender names, the details they were derived from, and the
//! custom metrics.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::custom::{CustomValue, CustomValueError};

/// The device-side built-in metrics (spec §6.1, "device" rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DeviceMetric {
    AllBytesOut,
    AllBytesIn,
    AllPacketsOut,
    AllPacketsIn,
    NumListeningTcpPorts,
    NumListeningUdpPorts,
    NumEstablishedTcpConnections,
    ListeningTcpPorts,
    ListeningUdpPorts,
    DestinationIpAddresses,
}

impl DeviceMetric {
    pub const ALL: [DeviceMetric; 10] = [
        DeviceMetric::AllBytesOut,
        DeviceMetric::AllBytesIn,
        DeviceMetric::AllPacketsOut,
        DeviceMetric::AllPacketsIn,
        DeviceMetric::NumListeningTcpPorts,
        DeviceMetric::NumListeningUdpPorts,
        DeviceMetric::NumEstablishedTcpConnections,
        DeviceMetric::ListeningTcpPorts,
        DeviceMetric::ListeningUdpPorts,
        DeviceMetric::DestinationIpAddresses,
    ];

    /// The metric's name in behaviours and the API.
    pub fn name(self) -> &'static str {
        match self {
            DeviceMetric::AllBytesOut => "aws:all-bytes-out",
            DeviceMetric::AllBytesIn => "aws:all-bytes-in",
            DeviceMetric::AllPacketsOut => "aws:all-packets-out",
            DeviceMetric::AllPacketsIn => "aws:all-packets-in",
            DeviceMetric::NumListeningTcpPorts => "aws:num-listening-tcp-ports",
            DeviceMetric::NumListeningUdpPorts => "aws:num-listening-udp-ports",
            DeviceMetric::NumEstablishedTcpConnections => "aws:num-established-tcp-connections",
            DeviceMetric::ListeningTcpPorts => "aws:listening-tcp-ports",
            DeviceMetric::ListeningUdpPorts => "aws:listening-udp-ports",
            DeviceMetric::DestinationIpAddresses => "aws:destination-ip-addresses",
        }
    }

    pub fn from_name(name: &str) -> Option<DeviceMetric> {
        DeviceMetric::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl fmt::Display for DeviceMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A reported value, borrowed from the report, by kind. The kinds follow
/// the API's `MetricValue` members (`count`, `ports`, `cidrs`, `number`,
/// `numbers`, `strings`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ReportedValue<'a> {
    Count(u64),
    Ports(&'a [u16]),
    IpAddresses(&'a [IpAddr]),
    Number(f64),
    Numbers(&'a [f64]),
    Strings(&'a [String]),
}

/// The device-side metrics a report carried. `None` means the report did
/// not carry that block, so the metric gets no datapoint; an empty list is
/// a real value (it conforms to any set criteria and clears a violation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceMetrics {
    /// `network_stats.bytes_out`: a delta since the previous report.
    pub all_bytes_out: Option<u64>,
    pub all_bytes_in: Option<u64>,
    pub all_packets_out: Option<u64>,
    pub all_packets_in: Option<u64>,
    /// `listening_tcp_ports.total`, or the number of ports listed.
    pub num_listening_tcp_ports: Option<u64>,
    pub num_listening_udp_ports: Option<u64>,
    /// `tcp_connections.established_connections.total`, or the number listed.
    pub num_established_tcp_connections: Option<u64>,
    /// The distinct listening ports, in first-reported order.
    pub listening_tcp_ports: Option<Vec<u16>>,
    pub listening_udp_ports: Option<Vec<u16>>,
    /// The distinct remote IPs of established connections, in first-reported order.
    pub destination_ip_addresses: Option<Vec<IpAddr>>,
}

impl DeviceMetrics {
    pub fn get(&self, metric: DeviceMetric) -> Option<ReportedValue<'_>> {
        let count = |v: Option<u64>| v.map(ReportedValue::Count);
        match metric {
            DeviceMetric::AllBytesOut => count(self.all_bytes_out),
            DeviceMetric::AllBytesIn => count(self.all_bytes_in),
            DeviceMetric::AllPacketsOut => count(self.all_packets_out),
            DeviceMetric::AllPacketsIn => count(self.all_packets_in),
            DeviceMetric::NumListeningTcpPorts => count(self.num_listening_tcp_ports),
            DeviceMetric::NumListeningUdpPorts => count(self.num_listening_udp_ports),
            DeviceMetric::NumEstablishedTcpConnections => {
                count(self.num_established_tcp_connections)
            }
            DeviceMetric::ListeningTcpPorts => self
                .listening_tcp_ports
                .as_deref()
                .map(ReportedValue::Ports),
            DeviceMetric::ListeningUdpPorts => self
                .listening_udp_ports
                .as_deref()
                .map(ReportedValue::Ports),
            DeviceMetric::DestinationIpAddresses => self
                .destination_ip_addresses
                .as_deref()
                .map(ReportedValue::IpAddresses),
        }
    }
}

/// One established TCP connection as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub remote: SocketAddr,
    pub local_port: Option<u16>,
    pub local_interface: Option<String>,
}

/// One listening port as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListeningPort {
    pub port: u16,
    pub interface: Option<String>,
}

/// A custom metric the report carried but that is not retained, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotRetained {
    pub name: String,
    pub reason: CustomValueError,
}

/// A valid device metrics report.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceReport {
    /// `header.report_id`.
    pub report_id: u64,
    pub metrics: DeviceMetrics,
    /// The established connections listed (empty when none were).
    pub connections: Vec<Connection>,
    pub listening_tcp_ports: Vec<ListeningPort>,
    pub listening_udp_ports: Vec<ListeningPort>,
    /// Custom metrics that passed the value rules, by name.
    pub custom_metrics: BTreeMap<String, CustomValue>,
    /// Custom metrics dropped by the value rules (the report is still accepted).
    pub not_retained: Vec<NotRetained>,
}

impl DeviceReport {
    /// The value reported for a metric, by the name behaviours use:
    /// `aws:…` for built-ins, otherwise a custom metric name.
    pub fn value(&self, metric_name: &str) -> Option<ReportedValue<'_>> {
        if let Some(m) = DeviceMetric::from_name(metric_name) {
            return self.metrics.get(m);
        }
        self.custom_metrics.get(metric_name).map(|v| match v {
            CustomValue::Number(x) => ReportedValue::Number(*x),
            CustomValue::NumberList(xs) => ReportedValue::Numbers(xs),
            CustomValue::StringList(ss) => ReportedValue::Strings(ss),
            CustomValue::IpList(ips) => ReportedValue::IpAddresses(ips),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_distinct() {
        for m in DeviceMetric::ALL {
            assert_eq!(DeviceMetric::from_name(m.name()), Some(m));
            assert!(m.name().starts_with("aws:"));
        }
        let mut names: Vec<_> = DeviceMetric::ALL.iter().map(|m| m.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DeviceMetric::ALL.len());
        assert_eq!(DeviceMetric::from_name("aws:num-messages-sent"), None);
    }

    #[test]
    fn value_by_name() {
        let mut custom = BTreeMap::new();
        custom.insert("battery".to_owned(), CustomValue::Number(42.0));
        custom.insert(
            "peers".to_owned(),
            CustomValue::IpList(vec!["10.0.0.1".parse().expect("ip")]),
        );
        let report = DeviceReport {
            report_id: 1,
            metrics: DeviceMetrics {
                all_bytes_out: Some(10),
                listening_udp_ports: Some(vec![]),
                ..DeviceMetrics::default()
            },
            connections: vec![],
            listening_tcp_ports: vec![],
            listening_udp_ports: vec![],
            custom_metrics: custom,
            not_retained: vec![],
        };
        assert_eq!(
            report.value("aws:all-bytes-out"),
            Some(ReportedValue::Count(10))
        );
        assert_eq!(report.value("aws:all-bytes-in"), None);
        assert_eq!(
            report.value("aws:listening-udp-ports"),
            Some(ReportedValue::Ports(&[]))
        );
        assert_eq!(report.value("battery"), Some(ReportedValue::Number(42.0)));
        assert!(matches!(
            report.value("peers"),
            Some(ReportedValue::IpAddresses([_]))
        ));
        assert_eq!(report.value("missing"), None);
    }
}
