//! API keys: `cp_<id>_<secret>`. The id is public (it names the key in lists and logs); the
//! secret is 256 random bits shown once at creation. Only the secret's SHA-256 is stored:
//! the secret is random, not a password, so a slow hash would add nothing but latency.

use std::fmt;

use rand::RngCore;
use sha2::{Digest, Sha256};

/// The prefix every key starts with, so secret scanners and people recognise one.
const PREFIX: &str = "cp_";
/// Random bytes of a key id (hex: twice as many characters).
const ID_BYTES: usize = 6;
/// Random bytes of a key secret.
const SECRET_BYTES: usize = 32;

/// The public name of a key: 12 lower-case hex characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(String);

impl KeyId {
    /// Parses a key id as printed by `keys create` or `keys list`.
    pub fn parse(text: &str) -> Option<KeyId> {
        is_hex(text, ID_BYTES * 2).then(|| KeyId(text.to_owned()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A whole key as a client presents it. Its `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    id: KeyId,
    secret: String,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({PREFIX}{}_…)", self.id)
    }
}

impl ApiKey {
    /// A new random key.
    pub fn generate() -> ApiKey {
        let mut rng = rand::rng();
        let mut id = [0u8; ID_BYTES];
        let mut secret = [0u8; SECRET_BYTES];
        rng.fill_bytes(&mut id);
        rng.fill_bytes(&mut secret);
        ApiKey {
            id: KeyId(hex(&id)),
            secret: hex(&secret),
        }
    }

    /// Parses `cp_<id>_<secret>`; `None` for anything else.
    pub fn parse(text: &str) -> Option<ApiKey> {
        let rest = text.strip_prefix(PREFIX)?;
        let (id, secret) = rest.split_once('_')?;
        let id = KeyId::parse(id)?;
        is_hex(secret, SECRET_BYTES * 2).then(|| ApiKey {
            id,
            secret: secret.to_owned(),
        })
    }

    /// The key's public id.
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// The hash stored for this key.
    pub fn secret_hash(&self) -> String {
        hex(&Sha256::digest(self.secret.as_bytes()))
    }

    /// Whether this key's secret hashes to `stored`, compared in constant time.
    pub fn matches(&self, stored: &str) -> bool {
        let ours = self.secret_hash();
        ours.len() == stored.len()
            && ours
                .bytes()
                .zip(stored.bytes())
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0
    }

    /// The key as the client must send it. Shown once, at creation.
    pub fn reveal(&self) -> String {
        format!("{PREFIX}{}_{}", self.id, self.secret)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_hex(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_match_only_their_hash() {
        let key = ApiKey::generate();
        let text = key.reveal();
        assert!(text.starts_with("cp_"));
        assert_eq!(text.len(), 3 + 12 + 1 + 64);
        let parsed = ApiKey::parse(&text).expect("parses");
        assert_eq!(parsed, key);
        assert!(parsed.matches(&key.secret_hash()));
        assert!(!ApiKey::generate().matches(&key.secret_hash()));
        assert!(!format!("{key:?}").contains(&key.secret));
    }

    #[test]
    fn malformed_keys_are_refused() {
        let good = ApiKey::generate().reveal();
        for bad in [
            "",
            "cp_",
            &good[..good.len() - 1],
            &good.replace("cp_", "xx_"),
            &good.to_uppercase(),
            &format!("{good}0"),
        ] {
            assert!(ApiKey::parse(bad).is_none(), "{bad:?} should be refused");
        }
    }
}
