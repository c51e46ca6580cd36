//! One key for sealing secrets: 32 random bytes, written as base64 (`openssl rand -base64
//! 32`), never shown by `Debug` and never quoted by an error.

use std::path::Path;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

/// The length of a key.
pub const KEY_BYTES: usize = 32;

/// A key from a setting.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey([u8; KEY_BYTES]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretKey({})", self.id())
    }
}

impl SecretKey {
    /// Reads a key from its base64 text. The error says what was wrong, never the text.
    pub fn parse(text: &str) -> Result<SecretKey, String> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| "expected the base64 of 32 random bytes (openssl rand -base64 32)")?;
        let bytes: [u8; KEY_BYTES] = bytes.as_slice().try_into().map_err(|_| {
            format!(
                "expected the base64 of {KEY_BYTES} random bytes (openssl rand -base64 32), \
                 got {} bytes",
                bytes.len()
            )
        })?;
        if bytes.iter().all(|b| *b == bytes[0]) {
            return Err(
                "the key's bytes are all the same: make one with openssl rand -base64 32"
                    .to_owned(),
            );
        }
        Ok(SecretKey(bytes))
    }

    /// A new random key.
    pub fn generate() -> SecretKey {
        SecretKey(rand::random())
    }

    /// The key's base64 text.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(self.0)
    }

    /// The key's bytes.
    pub(super) fn bytes(&self) -> &[u8; KEY_BYTES] {
        &self.0
    }

    /// A short name for the key, stored beside what it sealed: the first 8 hex digits of a
    /// hash of the key (32 bits of a one-way hash say nothing useful about 256 random ones).
    pub fn id(&self) -> String {
        let digest = Sha256::new()
            .chain_update(b"control-plane secrets key id\0")
            .chain_update(self.0)
            .finalize();
        digest[..4].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The key `dev` uses when `SECRETS_KEY` is unset: made once in its data directory
/// (`secrets.key`, readable by its owner only) and read from there after, so what it sealed
/// opens again after a restart.
pub fn dev_key(data_dir: &Path) -> Result<SecretKey, String> {
    let path = data_dir.join("secrets.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => SecretKey::parse(&text).map_err(|why| format!("{}: {why}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate();
            write_private(&path, &key.to_base64())
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            Ok(key)
        }
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(text.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_from_base64_and_errors_never_quote_them() {
        let key = SecretKey::generate();
        let parsed = SecretKey::parse(&key.to_base64()).expect("a generated key parses");
        assert_eq!(parsed, key);
        assert_eq!(key.id().len(), 8);
        assert!(!format!("{key:?}").contains(&key.to_base64()));
        for bad in [
            "hunter2hunter2",
            "aHVudGVyMg==",
            &STANDARD.encode([7u8; 32]),
        ] {
            let error = SecretKey::parse(bad).expect_err(bad);
            assert!(!error.contains(bad), "{error}");
        }
    }

    #[test]
    fn dev_keeps_its_key_across_starts_readable_by_its_owner_only() {
        let dir = std::env::temp_dir().join(format!("cp-key-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir).expect("dir");
        let first = dev_key(&dir).expect("made");
        let again = dev_key(&dir).expect("read");
        assert_eq!(first, again);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.join("secrets.key"))
                .expect("the key file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
