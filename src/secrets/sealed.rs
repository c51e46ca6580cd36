//! Sealing and opening: `cp1.<key id>.<base64 of nonce, ciphertext and tag>`, AES-256-GCM
//! with a random 96-bit nonce per value and the value's context as associated data.

use aws_lc_rs::aead::{AES_256_GCM, Aad, NONCE_LEN, Nonce, RandomizedNonceKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::key::SecretKey;

/// The form's first word: a later form gets another.
const FORM: &str = "cp1";

/// Why a value could not be sealed or opened. Never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// No `SECRETS_KEY` is set, so nothing can be sealed.
    #[error("SECRETS_KEY is not set: secrets cannot be stored without it")]
    NoKey,
    /// The value was sealed under a key this process does not have.
    #[error("sealed under key {0}, which is neither SECRETS_KEY nor one of SECRETS_OLD_KEYS here")]
    UnknownKey(String),
    /// The value is not one this service sealed, or it was changed, or it belongs elsewhere.
    #[error("the sealed value does not open: altered, truncated, or moved from another row")]
    Broken,
}

/// What an opened value holds, and whether it should be sealed again under the current key.
#[derive(Debug)]
pub struct Opened {
    /// The secret.
    pub plain: Vec<u8>,
    /// Sealed under one of the old keys: seal it again.
    pub stale: bool,
}

struct Keyed {
    id: String,
    key: RandomizedNonceKey,
}

impl Keyed {
    fn new(key: &SecretKey) -> Keyed {
        // Any 32 bytes are a valid AES-256 key: `new` fails only on a wrong length.
        let key_bytes = key.bytes();
        Keyed {
            id: key.id(),
            key: RandomizedNonceKey::new(&AES_256_GCM, key_bytes)
                .unwrap_or_else(|_| unreachable!("a 32-byte key is an AES-256 key")),
        }
    }
}

/// The keys of this process: the current one seals and opens, the old ones only open.
#[derive(Default)]
pub struct Keyring {
    current: Option<Keyed>,
    old: Vec<Keyed>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("current", &self.current.as_ref().map(|k| &k.id))
            .field("old", &self.old.iter().map(|k| &k.id).collect::<Vec<_>>())
            .finish()
    }
}

impl Keyring {
    /// A keyring of `current` (none: nothing can be sealed) and the `old` keys.
    pub fn new(current: Option<&SecretKey>, old: &[SecretKey]) -> Keyring {
        Keyring {
            current: current.map(Keyed::new),
            old: old.iter().map(Keyed::new).collect(),
        }
    }

    /// Whether values can be sealed.
    pub fn can_seal(&self) -> bool {
        self.current.is_some()
    }

    /// The current key's id, if any.
    pub fn current_id(&self) -> Option<&str> {
        self.current.as_ref().map(|k| k.id.as_str())
    }

    /// Seals `plain` for `context` under the current key.
    pub fn seal(&self, context: &str, plain: &[u8]) -> Result<String, SealError> {
        let keyed = self.current.as_ref().ok_or(SealError::NoKey)?;
        let mut sealed = plain.to_vec();
        let nonce = keyed
            .key
            .seal_in_place_append_tag(Aad::from(context.as_bytes()), &mut sealed)
            .map_err(|_| SealError::Broken)?;
        let mut body = nonce.as_ref().to_vec();
        body.extend_from_slice(&sealed);
        Ok(format!(
            "{FORM}.{}.{}",
            keyed.id,
            URL_SAFE_NO_PAD.encode(body)
        ))
    }

    /// Opens a value sealed for `context`.
    pub fn open(&self, context: &str, sealed: &str) -> Result<Opened, SealError> {
        let mut parts = sealed.splitn(3, '.');
        let (Some(FORM), Some(id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(SealError::Broken);
        };
        let (keyed, stale) = match &self.current {
            Some(current) if current.id == id => (current, false),
            _ => (
                self.old
                    .iter()
                    .find(|old| old.id == id)
                    .ok_or_else(|| SealError::UnknownKey(id.to_owned()))?,
                true,
            ),
        };
        let body = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| SealError::Broken)?;
        if body.len() < NONCE_LEN {
            return Err(SealError::Broken);
        }
        let (nonce, ciphertext) = body.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Broken)?;
        let mut in_out = ciphertext.to_vec();
        let plain = keyed
            .key
            .open_in_place(nonce, Aad::from(context.as_bytes()), &mut in_out)
            .map_err(|_| SealError::Broken)?
            .to_vec();
        Ok(Opened { plain, stale })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_value_opens_only_with_its_key_and_context() {
        let (old, new) = (SecretKey::generate(), SecretKey::generate());
        let before = Keyring::new(Some(&old), &[]);
        let sealed = before.seal("proxy_pool/res", b"hunter2").expect("sealed");
        assert!(!sealed.contains("hunter2"));
        assert_ne!(
            sealed,
            before.seal("proxy_pool/res", b"hunter2").expect("sealed"),
            "a fresh nonce each time"
        );
        let opened = before.open("proxy_pool/res", &sealed).expect("opens");
        assert_eq!(
            (opened.plain.as_slice(), opened.stale),
            (&b"hunter2"[..], false)
        );
        assert_eq!(
            before.open("proxy_pool/dc", &sealed).map(|o| o.plain),
            Err(SealError::Broken),
            "moved to another row"
        );

        // Rotated: the new key seals, the old one still opens what it sealed (stale).
        let rotated = Keyring::new(Some(&new), std::slice::from_ref(&old));
        let opened = rotated.open("proxy_pool/res", &sealed).expect("opens");
        assert!(opened.stale);
        let resealed = rotated
            .seal("proxy_pool/res", &opened.plain)
            .expect("sealed");
        assert!(
            !rotated
                .open("proxy_pool/res", &resealed)
                .expect("opens")
                .stale
        );

        // Without the old key, it names the key it needs; without any, nothing is sealed.
        let forgot = Keyring::new(Some(&new), &[]);
        assert_eq!(
            forgot.open("proxy_pool/res", &sealed).map(|o| o.plain),
            Err(SealError::UnknownKey(old.id()))
        );
        assert_eq!(Keyring::default().seal("x", b"y"), Err(SealError::NoKey));

        // An altered value does not open.
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 2;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).expect("text");
        assert_eq!(
            before.open("proxy_pool/res", &altered).map(|o| o.plain),
            Err(SealError::Broken)
        );
    }
}
