//! A real S3-compatible server for the tests: `s3s-fs` (from crates.io; `scripts/test`
//! installs it and sets `S3S_FS`), over a directory of the test's own, with its own keys.

use std::path::PathBuf;
use std::time::Duration;

use control_plane::artifact::{ArtifactLocation, Bucket, S3Access};

use crate::common::{TestDataDir, eventually};

/// The access key every test server takes.
pub const ACCESS_KEY: &str = "cp-test-access";
/// Its secret.
pub const SECRET_KEY: &str = "cp-test-secret-0123456789";

/// A running `s3s-fs`, stopped when dropped.
pub struct S3Server {
    child: std::process::Child,
    /// Its URL.
    pub endpoint: String,
    /// Where it keeps buckets (one directory each) and objects (files).
    pub root: TestDataDir,
}

/// The server binary: `S3S_FS`, else `s3s-fs` on PATH.
fn binary() -> PathBuf {
    std::env::var_os("S3S_FS").map_or_else(|| PathBuf::from("s3s-fs"), PathBuf::from)
}

impl S3Server {
    /// Starts a server on a free port with one bucket, `bucket`.
    pub async fn start(bucket: &str) -> S3Server {
        let root = TestDataDir::new();
        std::fs::create_dir_all(root.0.join(bucket)).expect("the bucket's directory");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free port");
        let child = std::process::Command::new(binary())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(&root.0)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("the S3 tests need s3s-fs: scripts/test installs it (or set S3S_FS)");
        let server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            root,
        };
        eventually("s3s-fs to listen", Duration::from_secs(10), || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
        })
        .await;
        server
    }

    /// How the app reaches it, with its keys.
    pub fn access(&self) -> S3Access {
        S3Access {
            endpoint: Some(self.endpoint.clone()),
            region: Some("us-east-1".to_owned()),
            access_key_id: Some(ACCESS_KEY.to_owned()),
            secret_access_key: Some(SECRET_KEY.to_owned()),
            session_token: None,
        }
    }

    /// `s3://bucket/prefix` on it.
    pub fn location(bucket: &str, prefix: &str) -> ArtifactLocation {
        ArtifactLocation::Bucket(Bucket {
            name: bucket.to_owned(),
            prefix: prefix.to_owned(),
        })
    }

    /// The file an object is kept in.
    pub fn object_file(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.0.join(bucket).join(key)
    }

    /// Stops the server (a store that no longer answers).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
