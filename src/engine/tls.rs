//! The TLS settings of the http engine's clients, made once per process. reqwest builds them
//! anew for every client, loading the platform's trusted roots (about 3 ms of CPU here), and
//! the engine builds a client per attempt (each attempt has an egress of its own): made once,
//! an attempt's client costs microseconds. The settings are reqwest's own defaults: the
//! platform verifier, its recommended protocol versions, HTTP/2 and HTTP/1.1 offered.

use std::sync::{Arc, OnceLock};

use rustls::ClientConfig;

/// The settings, or why they could not be made (kept: every attempt reports it alike).
static CONFIG: OnceLock<Result<ClientConfig, String>> = OnceLock::new();

/// A copy of the process's TLS settings (cheap: their parts are shared).
pub fn client_config() -> Result<ClientConfig, String> {
    CONFIG.get_or_init(build).clone()
}

fn build() -> Result<ClientConfig, String> {
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let verifier = rustls_platform_verifier::Verifier::new(provider.clone())
        .map_err(|e| format!("cannot load the platform's TLS roots: {e}"))?;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("cannot choose TLS versions: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}
