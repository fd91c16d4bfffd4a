//! The web configuration file as written (exporter-toolkit format) and its validation: unknown
//! keys, bad hashes, headers and certificates are errors, as in the toolkit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hyper::header::{HeaderName, HeaderValue};
use rustls::ServerConfig;

use super::tls::tls_config;

/// The file as written (unknown keys are errors, as in the toolkit).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    tls_server_config: Option<TlsFile>,
    #[serde(default)]
    http_server_config: Option<HttpFile>,
    #[serde(default)]
    basic_auth_users: BTreeMap<String, String>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsFile {
    pub(super) cert_file: Option<PathBuf>,
    pub(super) key_file: Option<PathBuf>,
    #[serde(default)]
    pub(super) client_auth_type: Option<String>,
    #[serde(default)]
    pub(super) client_ca_file: Option<PathBuf>,
    #[serde(default)]
    pub(super) min_version: Option<String>,
    #[serde(default)]
    pub(super) max_version: Option<String>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    http2: Option<bool>,
}

/// A loaded, valid configuration.
#[derive(Debug, Default)]
pub struct WebConfig {
    pub tls: Option<Arc<ServerConfig>>,
    pub(super) users: BTreeMap<String, String>,
    /// A hash of the same cost as the costliest user's, for unknown users.
    pub(super) dummy_hash: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Files whose modification makes us re-read (the config file and what it names).
    pub(super) watched: Vec<PathBuf>,
}

impl WebConfig {
    /// Parses and checks a file: certificates and keys loaded, hashes well-formed.
    pub fn load(path: &Path) -> Result<WebConfig, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let file: File = serde_yaml_ng::from_str(&text)
            .map_err(|e| format!("parsing {}: {e}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let mut watched = vec![path.to_path_buf()];

        let mut cost = 0;
        for (user, hash) in &file.basic_auth_users {
            let parts = hash
                .parse::<bcrypt::HashParts>()
                .map_err(|e| format!("basic_auth_users: {user}: not a bcrypt hash: {e}"))?;
            cost = cost.max(parts.get_cost());
        }
        // An unknown user is checked against a hash as costly as the costliest real one, so the
        // answer's timing does not tell which users exist.
        let dummy_hash = if file.basic_auth_users.is_empty() {
            String::new()
        } else {
            bcrypt::hash("not a password", cost).map_err(|e| format!("basic_auth_users: {e}"))?
        };
        let mut headers = Vec::new();
        if let Some(http) = &file.http_server_config {
            if http.http2 == Some(true) {
                return Err("http_server_config.http2: only HTTP/1.1 is served".into());
            }
            for (name, value) in &http.headers {
                allowed_header(name, value)?;
                let name = HeaderName::try_from(name.as_str())
                    .map_err(|e| format!("header {name:?}: {e}"))?;
                let value = HeaderValue::try_from(value.as_str())
                    .map_err(|e| format!("header {name}: {e}"))?;
                headers.push((name, value));
            }
        }
        let tls = match &file.tls_server_config {
            None => None,
            Some(t) => {
                let (Some(cert), Some(key)) = (&t.cert_file, &t.key_file) else {
                    return Err(
                        "tls_server_config: cert_file and key_file are both required".into(),
                    );
                };
                let (cert, key) = (resolve(cert), resolve(key));
                let ca = t.client_ca_file.as_deref().map(resolve);
                watched.extend([cert.clone(), key.clone()]);
                watched.extend(ca.clone());
                Some(Arc::new(tls_config(t, &cert, &key, ca.as_deref())?))
            }
        };
        Ok(WebConfig {
            tls,
            users: file.basic_auth_users,
            dummy_hash,
            headers,
            watched,
        })
    }
}

impl WebConfig {
    pub fn auth_required(&self) -> bool {
        !self.users.is_empty()
    }
}

/// The headers `http_server_config.headers` may set, with their allowed values (`None`: any), as
/// in the exporter-toolkit. Others (`Content-Type`, `Content-Length`, …) could break responses.
const CONFIGURABLE_HEADERS: &[(&str, Option<&[&str]>)] = &[
    ("Strict-Transport-Security", None),
    ("X-Content-Type-Options", Some(&["nosniff"])),
    ("X-Frame-Options", Some(&["deny", "sameorigin"])),
    ("X-XSS-Protection", None),
    ("Content-Security-Policy", None),
];

fn allowed_header(name: &str, value: &str) -> Result<(), String> {
    let Some((canonical, values)) = CONFIGURABLE_HEADERS
        .iter()
        .find(|(allowed, _)| allowed.eq_ignore_ascii_case(name))
    else {
        return Err(format!(
            "http_server_config.headers: header {name:?} can not be configured (allowed: {})",
            CONFIGURABLE_HEADERS
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    match values {
        Some(values) if !values.contains(&value) => Err(format!(
            "http_server_config.headers: {canonical} must be one of {values:?}, not {value:?}"
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::allowed_header;

    #[test]
    fn only_the_toolkit_headers_can_be_set() {
        for (name, value) in [
            ("X-Frame-Options", "deny"),
            ("x-frame-options", "sameorigin"),
            ("Strict-Transport-Security", "max-age=31536000"),
            ("X-Content-Type-Options", "nosniff"),
            ("Content-Security-Policy", "default-src 'self'"),
        ] {
            assert!(allowed_header(name, value).is_ok(), "{name}: {value}");
        }
        for (name, value) in [
            ("Content-Type", "text/html"),
            ("Content-Length", "0"),
            ("Transfer-Encoding", "chunked"),
            ("Set-Cookie", "a=b"),
            ("X-Frame-Options", "allow-from x"),
            ("X-Content-Type-Options", "sniff"),
        ] {
            assert!(allowed_header(name, value).is_err(), "{name}: {value}");
        }
    }
}
