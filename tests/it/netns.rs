//! A test of its own network: the outer `#[test]` runs one ignored test of this binary inside
//! a fresh network and mount namespace (loopback only, stand-in public addresses on it, its
//! own resolver config pointing at 127.0.0.1), where nothing of the machine's network is
//! reachable — nor its PostgreSQL or Redis, so such tests use the SQLite backend.

use std::net::Ipv4Addr;

use crate::common::TestDataDir;

/// The variable the inner test checks, so it refuses to run outside its namespace.
pub const INSIDE: &str = "CP_IN_NETNS";

/// Runs the ignored test `inner` (its full path, e.g. `rebinding::inside`) inside a namespace
/// whose loopback also holds `addresses`, and asserts that it ran and passed.
pub fn run_inside(inner: &str, addresses: &[Ipv4Addr]) {
    let dir = TestDataDir::new();
    let resolv = dir.0.join("resolv.conf");
    std::fs::write(
        &resolv,
        "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n",
    )
    .expect("resolv.conf");
    let mut script = String::from("ip link set lo up");
    for address in addresses {
        script.push_str(&format!(" && ip addr add {address}/32 dev lo"));
    }
    script.push_str(" && mount --bind \"$0\" /etc/resolv.conf && exec \"$@\"");
    let output = std::process::Command::new("unshare")
        .args(["--net", "--mount", "sh", "-c", &script])
        .arg(&resolv)
        .arg(std::env::current_exe().expect("the test binary"))
        .args([
            inner,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(INSIDE, "1")
        .output()
        .expect("unshare (util-linux) and ip (iproute2) are needed; run as root");
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "inside the namespace:\n{text}");
    assert!(
        text.contains("1 passed"),
        "the inner test did not run:\n{text}"
    );
}

/// Fails an inner test started any other way than through [`run_inside`].
pub fn assert_inside() {
    assert_eq!(
        std::env::var(INSIDE).as_deref(),
        Ok("1"),
        "run through the outer test"
    );
}
