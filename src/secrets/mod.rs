//! Secrets at rest: what the service must keep but never show (proxy credentials, and the
//! state of logged-in profiles after them) is sealed with AES-256-GCM under a key from the
//! `SECRETS_KEY` setting before it reaches the database.
//!
//! Each sealed value names the key that sealed it (a short id derived from the key, never
//! the key), so a key can be rotated: the new key becomes `SECRETS_KEY`, the old one moves
//! to `SECRETS_OLD_KEYS`, values are opened with whichever key sealed them and sealed again
//! under the new one by their owners, and once none is left under the old key it is dropped.
//! Each value is bound to what it belongs to (its `context`, e.g. `proxy_pool/res`), so a
//! sealed value copied onto another row does not open.

mod key;
mod sealed;

pub use key::{KEY_BYTES, SecretKey, dev_key};
pub use sealed::{Keyring, Opened, SealError};
