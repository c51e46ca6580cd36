//! Signing deliveries the Standard Webhooks way (<https://www.standardwebhooks.com>): the
//! receiver checks `webhook-signature` = `v1,` + base64(HMAC-SHA256(secret,
//! "{webhook-id}.{webhook-timestamp}.{body}")) with the secret both sides know.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The prefix of a secret in its written form.
const PREFIX: &str = "whsec_";
/// The shortest and longest secret accepted, in bytes (the spec asks for 24 to 64).
const KEY_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

/// The key deliveries are signed with (`WEBHOOK_SECRET`, written `whsec_<base64>`).
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(redacted)")
    }
}

impl std::str::FromStr for WebhookSecret {
    type Err = String;

    fn from_str(text: &str) -> Result<WebhookSecret, String> {
        let encoded = text
            .trim()
            .strip_prefix(PREFIX)
            .ok_or("must start with whsec_ (whsec_ followed by base64)")?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|e| format!("the part after whsec_ is not base64: {e}"))?;
        if !KEY_BYTES.contains(&key.len()) {
            return Err(format!(
                "the key is {} bytes; it must be {} to {} (e.g. whsec_$(openssl rand -base64 32))",
                key.len(),
                KEY_BYTES.start(),
                KEY_BYTES.end()
            ));
        }
        Ok(WebhookSecret(key))
    }
}

/// The `WEBHOOK_SECRET` setting: a secret, or none when unset or empty (so a deployment can
/// pass the variable through empty, as compose does).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretSetting(pub Option<WebhookSecret>);

impl std::str::FromStr for SecretSetting {
    type Err = String;

    fn from_str(text: &str) -> Result<SecretSetting, String> {
        if text.trim().is_empty() {
            return Ok(SecretSetting(None));
        }
        text.parse().map(|secret| SecretSetting(Some(secret)))
    }
}

impl WebhookSecret {
    /// The `webhook-signature` header of a delivery.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        // Any key length is valid for HMAC; new_from_slice cannot fail here.
        let mut mac = match Hmac::<Sha256>::new_from_slice(&self.0) {
            Ok(mac) => mac,
            Err(_) => return String::new(),
        };
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_the_standard_webhooks_reference_does() {
        // The example of the Standard Webhooks libraries' test suites.
        let secret: WebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
            .parse()
            .expect("secret");
        let signature = secret.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn malformed_secrets_are_refused_and_never_printed() {
        for bad in [
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "whsec_!!!",
            "whsec_c2hvcnQ=",
        ] {
            assert!(bad.parse::<WebhookSecret>().is_err(), "{bad}");
        }
        let secret: WebhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
            .parse()
            .expect("ok");
        assert!(!format!("{secret:?}").contains("MfKQ"));
    }
}
