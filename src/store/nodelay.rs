//! `TCP_NODELAY` on this process's connections to PostgreSQL.
//!
//! sqlx 0.9.0 stopped setting it (sqlx#4335; fixed upstream by #4336, not released when this
//! was written) and offers no option to. Without it, a statement larger than one write of
//! the connection's buffer — a job whose payload is over about 16 KB, a batch — leaves its
//! last segment waiting for the server's delayed ACK: about 40 ms per statement instead of a
//! few (measured: one job with a 16.6 KB payload took ~45 ms to store, one with 15 KB ~8 ms).
//! sqlx does not hand out its socket, so after each new connection the process's own
//! sockets connected to the database's address are found in `/proc/self/fd` and the option
//! is set on those that lack it. Remove this once sqlx sets it again.

use std::net::SocketAddr;
use std::os::fd::{BorrowedFd, RawFd};

/// Sets `TCP_NODELAY` on every socket of this process connected to one of `peers` that does
/// not have it yet; returns how many it set. Where `/proc` cannot be read, sets none.
pub fn towards(peers: &[SocketAddr]) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc/self/fd") else {
        return 0;
    };
    entries
        .flatten()
        .filter(|entry| {
            std::fs::read_link(entry.path())
                .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))
        })
        .filter_map(|entry| entry.file_name().to_str()?.parse::<RawFd>().ok())
        .filter(|&fd| set_if_towards(fd, peers))
        .count()
}

/// Sets the option on `fd` when it is a TCP socket connected to one of `peers` without it.
fn set_if_towards(fd: RawFd, peers: &[SocketAddr]) -> bool {
    // SAFETY: `fd` was listed in /proc/self/fd just now and is only borrowed for two
    // `getsockopt`/`getpeername` calls and one `setsockopt`. Should another task close it
    // meanwhile and the number be reused, the calls fail on a file that is not a socket, or
    // set an option that is harmless on any TCP socket; nothing is read or written through it.
    let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
    let socket = socket2::SockRef::from(&borrowed);
    let Some(peer) = socket.peer_addr().ok().and_then(|a| a.as_socket()) else {
        return false;
    };
    if !peers.contains(&peer) || socket.tcp_nodelay().unwrap_or(true) {
        return false;
    }
    socket.set_tcp_nodelay(true).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_the_option_on_sockets_towards_the_peer_only() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
        let other = std::net::TcpListener::bind("127.0.0.1:0").expect("other listener");
        let peer = listener.local_addr().expect("address");
        let towards_peer = std::net::TcpStream::connect(peer).expect("connect");
        let elsewhere = std::net::TcpStream::connect(other.local_addr().expect("address"))
            .expect("connect elsewhere");
        assert!(!towards_peer.nodelay().expect("read the option"));
        assert_eq!(towards(&[peer]), 1);
        assert!(towards_peer.nodelay().expect("read the option"));
        assert!(!elsewhere.nodelay().expect("read the option"));
        assert_eq!(towards(&[peer]), 0, "already set");
    }
}
