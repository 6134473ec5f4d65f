//! The report's key names, long and short, as AWS documents them
//! (DetectMetricsMessages; spec §6.3). A device may use either form for any
//! key; the parser looks each key up by both.

/// One report key: its long name and, where AWS defines one, its short name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub long: &'static str,
    pub short: Option<&'static str>,
}

impl Key {
    const fn both(long: &'static str, short: &'static str) -> Key {
        Key {
            long,
            short: Some(short),
        }
    }

    /// Custom metric value kinds have no short form in the AWS docs.
    const fn long_only(long: &'static str) -> Key {
        Key { long, short: None }
    }

    /// Whether `name` is this key in either form (names are case-sensitive).
    pub fn matches(&self, name: &str) -> bool {
        name == self.long || self.short == Some(name)
    }
}

// Root.
pub const HEADER: Key = Key::both("header", "hed");
pub const METRICS: Key = Key::both("metrics", "met");
pub const CUSTOM_METRICS: Key = Key::both("custom_metrics", "cmet");

// Header.
pub const REPORT_ID: Key = Key::both("report_id", "rid");
pub const VERSION: Key = Key::both("version", "v");

// Metrics.
pub const TCP_CONNECTIONS: Key = Key::both("tcp_connections", "tc");
pub const ESTABLISHED_CONNECTIONS: Key = Key::both("established_connections", "ec");
pub const CONNECTIONS: Key = Key::both("connections", "cs");
pub const REMOTE_ADDR: Key = Key::both("remote_addr", "rad");
pub const LOCAL_PORT: Key = Key::both("local_port", "lp");
pub const LOCAL_INTERFACE: Key = Key::both("local_interface", "li");
pub const TOTAL: Key = Key::both("total", "t");
pub const LISTENING_TCP_PORTS: Key = Key::both("listening_tcp_ports", "tp");
pub const LISTENING_UDP_PORTS: Key = Key::both("listening_udp_ports", "up");
pub const PORTS: Key = Key::both("ports", "pts");
pub const PORT: Key = Key::both("port", "pt");
pub const INTERFACE: Key = Key::both("interface", "if");
pub const NETWORK_STATS: Key = Key::both("network_stats", "ns");
pub const BYTES_IN: Key = Key::both("bytes_in", "bi");
pub const BYTES_OUT: Key = Key::both("bytes_out", "bo");
pub const PACKETS_IN: Key = Key::both("packets_in", "pi");
pub const PACKETS_OUT: Key = Key::both("packets_out", "po");

// Custom metric value kinds (spec §6.2).
pub const NUMBER: Key = Key::long_only("number");
pub const NUMBER_LIST: Key = Key::long_only("number_list");
pub const STRING_LIST: Key = Key::long_only("string_list");
pub const IP_LIST: Key = Key::long_only("ip_list");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_match_and_nothing_else() {
        assert!(HEADER.matches("header"));
        assert!(HEADER.matches("hed"));
        assert!(!HEADER.matches("Header"));
        assert!(!HEADER.matches("hd"));
        assert!(NUMBER.matches("number"));
        assert!(!NUMBER.matches(""));
    }

    #[test]
    fn short_names_are_unique_within_each_parent() {
        // Keys that can appear in the same object must not share a form,
        // or a lookup could not tell them apart.
        let groups: &[&[Key]] = &[
            &[HEADER, METRICS, CUSTOM_METRICS],
            &[REPORT_ID, VERSION],
            &[
                TCP_CONNECTIONS,
                LISTENING_TCP_PORTS,
                LISTENING_UDP_PORTS,
                NETWORK_STATS,
            ],
            &[ESTABLISHED_CONNECTIONS],
            &[CONNECTIONS, TOTAL],
            &[REMOTE_ADDR, LOCAL_PORT, LOCAL_INTERFACE],
            &[PORTS, TOTAL],
            &[PORT, INTERFACE],
            &[BYTES_IN, BYTES_OUT, PACKETS_IN, PACKETS_OUT],
            &[NUMBER, NUMBER_LIST, STRING_LIST, IP_LIST],
        ];
        for group in groups {
            let mut names: Vec<&str> = group
                .iter()
                .flat_map(|k| std::iter::once(k.long).chain(k.short))
                .collect();
            let n = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), n, "{group:?}");
        }
    }
}
