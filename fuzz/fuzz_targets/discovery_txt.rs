//! mDNS TXT record parser (`proto/discovery.md`): records from anyone on the LAN.
//!
//! Input layout: newline-separated fields `id`, `v`, `team`, `tcp`, `quic`, then one
//! address per line. A missing field or one that is not UTF-8 is `None` (mdns-sd gives
//! no string for it). An address line is parsed as text, else its raw bytes are taken
//! as IPv6 (16 bytes or more) or IPv4 (4 or more).
#![no_main]

use fieldmesh::discovery::parse_resolved;
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn ip_of(line: &[u8]) -> Option<IpAddr> {
    if let Some(ip) = std::str::from_utf8(line).ok().and_then(|s| s.parse().ok()) {
        return Some(ip);
    }
    if let Some(b) = line.get(..16) {
        let b: [u8; 16] = b.try_into().ok()?;
        return Some(IpAddr::V6(Ipv6Addr::from(b)));
    }
    let b: [u8; 4] = line.get(..4)?.try_into().ok()?;
    Some(IpAddr::V4(Ipv4Addr::from(b)))
}

fuzz_target!(|data: &[u8]| {
    let lines: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    let field = |i: usize| lines.get(i).and_then(|l| std::str::from_utf8(l).ok());
    let ips: Vec<IpAddr> = lines.iter().skip(5).filter_map(|l| ip_of(l)).collect();
    let Ok(ev) = parse_resolved(
        field(0),
        field(1),
        field(2),
        field(3),
        field(4),
        ips.iter().copied(),
    ) else {
        return;
    };
    assert!(!ev.addrs.is_empty());
    assert_eq!(field(1), Some(fieldmesh::discovery::TXT_VERSION));
    assert_eq!(ev.team, field(2).unwrap_or_default());
    // Every address is one of the listed IPs with one of the advertised ports.
    let ports = [field(3), field(4)]
        .iter()
        .filter(|p| {
            p.and_then(|p| p.parse::<u16>().ok())
                .is_some_and(|p| p != 0)
        })
        .count();
    assert!(ev.addrs.len() <= ips.len() * ports);
});
