//! Rules for the report's scalar fields: report id, version, counters,
//! ports, addresses, interface names. Each takes the decoded node and the
//! field's path (for the error) and returns the typed value.

use std::net::{Ipv6Addr, SocketAddr};

use super::error::ReportError;
use super::node::Node;

/// The only report version AWS defines.
pub const SUPPORTED_VERSION: &str = "1.0";

/// Largest counter accepted. The API returns counts as `MetricValue.count`,
/// a signed 64-bit long in the AWS SDKs, so anything larger could not be
/// read back through ListMetricValues.
pub const MAX_COUNT: u64 = i64::MAX as u64;

/// Longest interface name kept. AWS documents none; this bounds what one
/// report can make the broker store per port or connection.
pub const MAX_INTERFACE_LEN: usize = 256;

fn wrong_type(path: &str, expected: &str, found: &Node) -> ReportError {
    ReportError::schema(path, format!("must be {expected}, found {}", found.kind()))
}

/// `header.report_id`: a non-negative integer. JSON `1.0` or `1e3` are
/// floating-point numbers and refused, as AWS asks for an integer.
pub(crate) fn report_id(node: &Node, path: &str) -> Result<u64, ReportError> {
    match node {
        Node::UInt(id) => Ok(*id),
        Node::NegInt(_) => Err(ReportError::schema(path, "must not be negative")),
        other => Err(wrong_type(path, "an integer", other)),
    }
}

/// `header.version`: "Major.Minor". A well-formed version other than 1.0
/// is a version we do not speak (`UnsupportedFormat`); anything else is a
/// malformed header.
pub(crate) fn version(node: &Node, path: &str) -> Result<(), ReportError> {
    let Node::Text(v) = node else {
        return Err(wrong_type(path, "a string", node));
    };
    let well_formed = v.split_once('.').is_some_and(|(major, minor)| {
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit());
        digits(major) && digits(minor)
    });
    if !well_formed {
        return Err(ReportError::schema(
            path,
            format!("must be \"Major.Minor\", found {v:?}"),
        ));
    }
    if v != SUPPORTED_VERSION {
        return Err(ReportError::UnsupportedVersion(v.clone()));
    }
    Ok(())
}

/// A counter or total: an integer in 0..=MAX_COUNT.
pub(crate) fn count(node: &Node, path: &str) -> Result<u64, ReportError> {
    match node {
        Node::UInt(n) if *n <= MAX_COUNT => Ok(*n),
        Node::UInt(_) => Err(ReportError::schema(
            path,
            format!("must be at most {MAX_COUNT}"),
        )),
        Node::NegInt(_) => Err(ReportError::schema(path, "must not be negative")),
        other => Err(wrong_type(path, "an integer", other)),
    }
}

/// A port number in `min..=65535`: listening ports start at 1 (spec: >0),
/// `local_port` at 0 (spec: ≥0).
pub(crate) fn port(node: &Node, path: &str, min: u16) -> Result<u16, ReportError> {
    let out_of_range = || ReportError::schema(path, format!("must be in {min}..=65535"));
    match node {
        Node::UInt(n) => match u16::try_from(*n) {
            Ok(p) if p >= min => Ok(p),
            _ => Err(out_of_range()),
        },
        Node::NegInt(_) => Err(out_of_range()),
        other => Err(wrong_type(path, "an integer", other)),
    }
}

/// `remote_addr`: "ip:port". IPv6 is accepted both bracketed
/// (`[2001:db8::1]:443`, the standard form) and bare (`2001:db8::1:443`,
/// what agents that join ip and port with a colon send): for the bare form
/// the last colon separates the port. The port must be 1..=65535. IPv4-mapped
/// IPv6 addresses are stored as IPv4 so CIDR sets match them.
pub(crate) fn remote_addr(node: &Node, path: &str) -> Result<SocketAddr, ReportError> {
    let Node::Text(s) = node else {
        return Err(wrong_type(path, "a string \"ip:port\"", node));
    };
    let parsed = s.parse::<SocketAddr>().ok().or_else(|| {
        let (ip, port) = s.rsplit_once(':')?;
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let ip: Ipv6Addr = ip.parse().ok()?;
        Some(SocketAddr::new(ip.into(), port.parse().ok()?))
    });
    let Some(addr) = parsed else {
        return Err(ReportError::schema(
            path,
            format!("must be \"ip:port\" with an IPv4 or IPv6 address, found {s:?}"),
        ));
    };
    if addr.port() == 0 {
        return Err(ReportError::schema(path, "port must be in 1..=65535"));
    }
    Ok(SocketAddr::new(addr.ip().to_canonical(), addr.port()))
}

/// `interface` / `local_interface`: a string of bounded length.
pub(crate) fn interface(node: &Node, path: &str) -> Result<String, ReportError> {
    match node {
        Node::Text(s) if s.len() <= MAX_INTERFACE_LEN => Ok(s.clone()),
        Node::Text(_) => Err(ReportError::schema(
            path,
            format!("must be at most {MAX_INTERFACE_LEN} bytes"),
        )),
        other => Err(wrong_type(path, "a string", other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Node {
        Node::Text(s.to_owned())
    }

    #[test]
    fn report_ids() {
        assert_eq!(report_id(&Node::UInt(1530304554), "h"), Ok(1530304554));
        assert_eq!(report_id(&Node::UInt(0), "h"), Ok(0));
        assert_eq!(report_id(&Node::UInt(u64::MAX), "h"), Ok(u64::MAX));
        for bad in [Node::NegInt(-1), Node::Float(1.0), text("1"), Node::Null] {
            assert!(report_id(&bad, "h").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn versions() {
        assert_eq!(version(&text("1.0"), "v"), Ok(()));
        for unsupported in ["2.0", "1.1", "01.0"] {
            assert_eq!(
                version(&text(unsupported), "v"),
                Err(ReportError::UnsupportedVersion(unsupported.into()))
            );
        }
        for malformed in ["1", "1.", ".0", "1.0.0", "a.b", "", " 1.0", "+1.0"] {
            assert!(
                matches!(
                    version(&text(malformed), "v"),
                    Err(ReportError::Schema { .. })
                ),
                "{malformed:?}"
            );
        }
        assert!(matches!(
            version(&Node::Float(1.0), "v"),
            Err(ReportError::Schema { .. })
        ));
    }

    #[test]
    fn counts() {
        assert_eq!(count(&Node::UInt(0), "c"), Ok(0));
        assert_eq!(count(&Node::UInt(MAX_COUNT), "c"), Ok(MAX_COUNT));
        for bad in [
            Node::UInt(MAX_COUNT + 1),
            Node::NegInt(-1),
            Node::Float(3.0),
            text("3"),
            Node::Bool(true),
        ] {
            assert!(count(&bad, "c").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ports() {
        assert_eq!(port(&Node::UInt(1), "p", 1), Ok(1));
        assert_eq!(port(&Node::UInt(65535), "p", 1), Ok(65535));
        assert_eq!(port(&Node::UInt(0), "p", 0), Ok(0));
        for bad in [
            Node::UInt(0),
            Node::UInt(65536),
            Node::NegInt(-80),
            Node::Float(80.0),
            text("80"),
        ] {
            assert!(port(&bad, "p", 1).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn remote_addrs() {
        let ok = |s: &str| remote_addr(&text(s), "r").expect(s);
        assert_eq!(
            ok("192.168.0.1:8000"),
            "192.168.0.1:8000".parse().expect("sa")
        );
        assert_eq!(
            ok("[2001:db8::1]:443"),
            "[2001:db8::1]:443".parse().expect("sa")
        );
        assert_eq!(
            ok("2001:db8::1:443"),
            "[2001:db8::1]:443".parse().expect("sa")
        );
        assert_eq!(ok("::1:22"), "[::1]:22".parse().expect("sa"));
        assert_eq!(
            ok("[::ffff:10.0.0.1]:80"),
            "10.0.0.1:80".parse().expect("sa")
        );
        for bad in [
            "192.168.0.1",
            "192.168.0.1:0",
            "192.168.0.1:65536",
            "192.168.0.1:+80",
            "host:80",
            "1.2.3.4/24:80",
            "2001:db8::1",
            "",
            ":80",
        ] {
            assert!(remote_addr(&text(bad), "r").is_err(), "{bad:?}");
        }
        assert!(remote_addr(&Node::UInt(1), "r").is_err());
    }

    #[test]
    fn interfaces() {
        assert_eq!(interface(&text("eth0"), "i"), Ok("eth0".into()));
        assert!(interface(&text(&"x".repeat(MAX_INTERFACE_LEN)), "i").is_ok());
        assert!(interface(&text(&"x".repeat(MAX_INTERFACE_LEN + 1)), "i").is_err());
        assert!(interface(&Node::UInt(0), "i").is_err());
    }
}
