//! Where connections come from: TCP connects from a chosen source address, and the source
//! address range that lets one machine open more connections than one address has ephemeral
//! ports.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

use tokio::net::{TcpSocket, TcpStream};

/// Connects to `authority` (`host:port`) with Nagle off, from `source` (port chosen by the
/// kernel) if given.
///
/// # Errors
///
/// The name does not resolve (to an address of `source`'s family), binding `source` fails
/// (e.g. `EADDRNOTAVAIL` for an address this host does not have), or the connection fails.
pub(crate) async fn connect(authority: &str, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let mut last_error = None;
    for addr in tokio::net::lookup_host(authority).await? {
        if source.is_some_and(|source| source.is_ipv4() != addr.is_ipv4()) {
            continue;
        }
        let socket = if addr.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        if let Some(source) = source {
            socket.bind(SocketAddr::new(source, 0))?;
        }
        match socket.connect(addr).await {
            Ok(stream) => {
                // Benchmarks measure latency, and the tool batches its writes by hand.
                stream.set_nodelay(true)?;
                return Ok(stream);
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!("{authority} has no address of the source address's family"),
        )
    }))
}

/// Source addresses to spread connections over, given as `--source-addrs`.
///
/// Linux gives each local address its own ephemeral ports (about 28,000 by default), so a
/// range such as 127.0.0.2–127.0.0.254 (all loopback on Linux) holds far more connections to
/// one server port than 127.0.0.1 alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SourceAddrs {
    /// 127.0.0.2–127.0.0.254 when the target is a loopback IPv4 address, else none.
    Auto,
    /// Let the kernel choose.
    None,
    /// Round robin over this inclusive IPv4 range.
    Range(Ipv4Addr, Ipv4Addr),
}

/// The range `auto` picks for a loopback target.
const LOOPBACK_RANGE: (Ipv4Addr, Ipv4Addr) =
    (Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 254));

impl SourceAddrs {
    /// The concrete range for a target host (`auto` resolved): `None` to let the kernel choose.
    pub(crate) fn resolve(self, target_host: &str) -> Option<(Ipv4Addr, Ipv4Addr)> {
        match self {
            SourceAddrs::None => None,
            SourceAddrs::Range(first, last) => Some((first, last)),
            SourceAddrs::Auto => {
                let host = target_host.trim_start_matches('[').trim_end_matches(']');
                match host.parse::<IpAddr>() {
                    Ok(IpAddr::V4(ip)) if ip.is_loopback() => Some(LOOPBACK_RANGE),
                    Ok(_) => None,
                    Err(_) => (host == "localhost").then_some(LOOPBACK_RANGE),
                }
            }
        }
    }
}

impl FromStr for SourceAddrs {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "auto" => return Ok(SourceAddrs::Auto),
            "none" => return Ok(SourceAddrs::None),
            _ => {}
        }
        let (first, last) = text.split_once('-').unwrap_or((text, text));
        let parse = |s: &str| {
            s.trim()
                .parse::<Ipv4Addr>()
                .map_err(|_| format!("`{s}` is not an IPv4 address (want auto, none or A-B)"))
        };
        let (first, last) = (parse(first)?, parse(last)?);
        if first > last {
            return Err(format!("source range {first}-{last} is empty"));
        }
        Ok(SourceAddrs::Range(first, last))
    }
}

impl fmt::Display for SourceAddrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceAddrs::Auto => f.write_str("auto"),
            SourceAddrs::None => f.write_str("none"),
            SourceAddrs::Range(first, last) => write!(f, "{first}-{last}"),
        }
    }
}

/// The `index`-th source address of an inclusive range, round robin.
pub(crate) fn nth_source((first, last): (Ipv4Addr, Ipv4Addr), index: u64) -> IpAddr {
    let (first, last) = (u32::from(first), u32::from(last));
    let count = u64::from(last.saturating_sub(first)) + 1;
    // `index % count` is below `count`, which fits in u32 + 1; the sum stays within the range.
    let offset = u32::try_from(index % count).unwrap_or(0);
    IpAddr::V4(Ipv4Addr::from(first.saturating_add(offset)))
}

/// Addresses in an inclusive range.
pub(crate) fn range_len((first, last): (Ipv4Addr, Ipv4Addr)) -> u64 {
    u64::from(u32::from(last).saturating_sub(u32::from(first))) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_ranges_parse() {
        let range = |a: [u8; 4], b: [u8; 4]| SourceAddrs::Range(a.into(), b.into());
        let rows = [
            ("auto", SourceAddrs::Auto),
            ("none", SourceAddrs::None),
            (
                "127.0.0.2-127.0.0.254",
                range([127, 0, 0, 2], [127, 0, 0, 254]),
            ),
            ("10.0.0.1", range([10, 0, 0, 1], [10, 0, 0, 1])),
            (" 10.0.0.1 - 10.0.1.0", range([10, 0, 0, 1], [10, 0, 1, 0])),
        ];
        for (text, want) in rows {
            assert_eq!(text.parse::<SourceAddrs>(), Ok(want), "{text}");
        }
        for bad in [
            "",
            "-",
            "127.0.0.5-127.0.0.4",
            "::1",
            "127.0.0.1-",
            "127.0.0.256",
            "a-b",
            "1-2-3",
        ] {
            assert!(bad.parse::<SourceAddrs>().is_err(), "{bad}");
        }
        assert_eq!(
            range([127, 0, 0, 2], [127, 0, 0, 254]).to_string(),
            "127.0.0.2-127.0.0.254"
        );
    }

    #[test]
    fn auto_spreads_only_loopback_targets() {
        assert_eq!(SourceAddrs::Auto.resolve("127.0.0.1"), Some(LOOPBACK_RANGE));
        assert_eq!(SourceAddrs::Auto.resolve("localhost"), Some(LOOPBACK_RANGE));
        assert_eq!(SourceAddrs::Auto.resolve("10.1.2.3"), None);
        assert_eq!(SourceAddrs::Auto.resolve("[::1]"), None);
        assert_eq!(SourceAddrs::Auto.resolve("example.com"), None);
        assert_eq!(SourceAddrs::None.resolve("127.0.0.1"), None);
    }

    #[test]
    fn sources_go_round_robin() {
        let (first, last) = LOOPBACK_RANGE;
        assert_eq!(range_len(LOOPBACK_RANGE), 253);
        assert_eq!(nth_source(LOOPBACK_RANGE, 0), IpAddr::V4(first));
        assert_eq!(nth_source(LOOPBACK_RANGE, 252), IpAddr::V4(last));
        assert_eq!(nth_source(LOOPBACK_RANGE, 253), IpAddr::V4(first));
        let one = (first, first);
        assert_eq!(nth_source(one, u64::MAX), IpAddr::V4(first));
        let all = (Ipv4Addr::new(0, 0, 0, 0), Ipv4Addr::new(255, 255, 255, 255));
        assert_eq!(range_len(all), 1 << 32);
        assert_eq!(
            nth_source(all, (1 << 32) + 5),
            IpAddr::V4(Ipv4Addr::new(0, 0, 0, 5))
        );
    }

    #[tokio::test]
    async fn connects_from_the_chosen_source() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("address").to_string();
        let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 7));
        let (client, accepted) = tokio::join!(connect(&addr, Some(source)), listener.accept());
        let client = client.expect("connect from 127.0.0.7");
        assert_eq!(client.local_addr().expect("local").ip(), source);
        assert_eq!(accepted.expect("accept").1.ip(), source);
        assert!(client.nodelay().expect("nodelay"));
        let v6 = IpAddr::V6(std::net::Ipv6Addr::LOCALHOST);
        assert!(connect(&addr, Some(v6)).await.is_err());
    }
}
