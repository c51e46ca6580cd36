//! The ports of this process that no job may reach, whatever ALLOW_PRIVATE_TARGETS says: the
//! DevTools endpoints of its browsers, its egress proxies, and the service's own listeners
//! (the API, `/metrics`, and the ports named by `GUARDED_PORTS`). A page that reached a
//! DevTools port could read every running job's url and close other tenants' pages; one that
//! reached the API would call it from inside.
//!
//! The registry is the process's: every engine (the http client, every browser context, the
//! webhook courier) leaves through an egress that asks it before connecting. A port is refused
//! on every address that reaches this machine, however it is spelt: `127.0.0.0/8`, `0.0.0.0`,
//! `::`, `::1`, IPv4-mapped and IPv4-compatible IPv6, and any address of the machine's own
//! interfaces. Decimal, octal and hex spellings (`2130706433`, `0177.1`) are read into one of
//! those by the url parser or the resolver before they get here.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::{LazyLock, Mutex};

/// How many holders guard each port (a port may be guarded by two holders at once: a
/// listener and the setting naming it).
static GUARDED: LazyLock<Mutex<HashMap<u16, usize>>> = LazyLock::new(Default::default);

/// One hold on a guarded port; the port stays guarded until every hold on it is dropped.
#[derive(Debug)]
#[must_use = "the port is guarded only while this lives"]
pub struct OwnPort(u16);

impl OwnPort {
    /// Guards `port` until the returned hold is dropped.
    pub fn guard(port: u16) -> OwnPort {
        if let Ok(mut ports) = GUARDED.lock() {
            *ports.entry(port).or_default() += 1;
        }
        OwnPort(port)
    }

    /// The port held.
    pub fn port(&self) -> u16 {
        self.0
    }
}

impl Drop for OwnPort {
    fn drop(&mut self) {
        if let Ok(mut ports) = GUARDED.lock()
            && let Some(holds) = ports.get_mut(&self.0)
        {
            *holds -= 1;
            if *holds == 0 {
                ports.remove(&self.0);
            }
        }
    }
}

/// Whether `port` is one of this process's own.
fn is_guarded(port: u16) -> bool {
    // A poisoned lock guards everything: refusing is the safe answer.
    GUARDED
        .lock()
        .map_or(true, |ports| ports.contains_key(&port))
}

/// Why a connection is refused: `host:port` is one of this process's own ports.
pub fn refusal(host: &str, port: u16, addrs: &[SocketAddr]) -> Option<String> {
    let own = is_guarded(port) && addrs.iter().any(|addr| reaches_this_machine(addr.ip()));
    own.then(|| {
        format!(
            "target {host}:{port} is refused: it is one of this service's own ports (a browser's \
             DevTools endpoint, an egress proxy or a listener of the service)"
        )
    })
}

/// Whether a connection to `ip` ends on this machine, in any spelling of the address.
pub fn reaches_this_machine(ip: IpAddr) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            // `::a.b.c.d` (IPv4-compatible, deprecated but still routed by some stacks).
            None if v6.segments()[..6] == [0; 6] && !v6.is_loopback() => {
                let [.., a, b, c, d] = v6.octets();
                IpAddr::V4(Ipv4Addr::new(a, b, c, d))
            }
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    };
    match ip {
        // `0.0.0.0/8` is "this host" (Linux connects 0.0.0.0 to itself).
        IpAddr::V4(v4) if v4.is_loopback() || v4.octets()[0] == 0 => true,
        IpAddr::V6(v6) if v6.is_loopback() || v6.is_unspecified() => true,
        // An address of one of this machine's interfaces is one a socket may bind to.
        other => UdpSocket::bind(SocketAddr::new(other, 0)).is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_of_this_machine_is_recognised() {
        for local in [
            "127.0.0.1",
            "127.8.9.10",
            "0.0.0.0",
            "0.1.2.3",
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:0.0.0.0",
            "::127.0.0.1",
            "::0.0.0.0",
        ] {
            let ip: IpAddr = local.parse().expect("an address");
            assert!(reaches_this_machine(ip), "{local} reaches this machine");
        }
        for remote in ["8.8.8.8", "2606:4700::1111", "::ffff:8.8.8.8", "192.0.2.1"] {
            let ip: IpAddr = remote.parse().expect("an address");
            assert!(!reaches_this_machine(ip), "{remote} is elsewhere");
        }
    }

    #[test]
    fn a_port_is_guarded_while_a_hold_lives() {
        // A port no other test of this process guards.
        let port = 1;
        let local = [SocketAddr::from(([127, 0, 0, 1], port))];
        assert!(refusal("x", port, &local).is_none());
        let first = OwnPort::guard(port);
        let second = OwnPort::guard(port);
        assert!(refusal("x", port, &local).is_some());
        let elsewhere = [SocketAddr::from(([8, 8, 8, 8], port))];
        assert!(refusal("x", port, &elsewhere).is_none());
        drop(first);
        assert!(refusal("x", port, &local).is_some());
        drop(second);
        assert!(refusal("x", port, &local).is_none());
    }
}
