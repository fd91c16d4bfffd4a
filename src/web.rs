//! `--web.config.file`: TLS and basic auth in the format of the Prometheus exporter-toolkit
//! (`tls_server_config`, `basic_auth_users` with bcrypt hashes, `http_server_config.headers`).
//!
//! As in the toolkit, the file (and the certificates it names) is re-read when it changes, so a
//! rotated certificate or a changed user takes effect without a restart; a file that is broken at
//! start-up stops the exporter with a clear error, one broken later is logged and the last good
//! configuration stays.

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::SystemTime;

use base64::Engine as _;
use hyper::header::{HeaderName, HeaderValue};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

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
struct TlsFile {
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    #[serde(default)]
    client_auth_type: Option<String>,
    #[serde(default)]
    client_ca_file: Option<PathBuf>,
    #[serde(default)]
    min_version: Option<String>,
    #[serde(default)]
    max_version: Option<String>,
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
    users: BTreeMap<String, String>,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// Files whose modification makes us re-read (the config file and what it names).
    watched: Vec<PathBuf>,
}

/// The outcome of a basic-auth check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Allowed,
    Denied,
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

        for (user, hash) in &file.basic_auth_users {
            hash.parse::<bcrypt::HashParts>()
                .map_err(|e| format!("basic_auth_users: {user}: not a bcrypt hash: {e}"))?;
        }
        let mut headers = Vec::new();
        if let Some(http) = &file.http_server_config {
            if http.http2 == Some(true) {
                return Err("http_server_config.http2: only HTTP/1.1 is served".into());
            }
            for (name, value) in &http.headers {
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
            headers,
            watched,
        })
    }

    pub fn auth_required(&self) -> bool {
        !self.users.is_empty()
    }

    /// Checks an `Authorization` header. The same work is done for an unknown user as for a
    /// wrong password, so timing does not tell which it was.
    fn check(&self, authorization: Option<&str>, cache: &AuthCache) -> Auth {
        let Some((user, password)) = authorization.and_then(parse_basic) else {
            return Auth::Denied;
        };
        let (hash, known) = match self.users.get(&user) {
            Some(hash) => (hash.as_str(), true),
            None => (DUMMY_HASH, false),
        };
        let key = cache.key(&user, &password, hash);
        if known && cache.contains(key) {
            return Auth::Allowed;
        }
        let ok = bcrypt::verify(&password, hash).unwrap_or(false) && known;
        if ok {
            cache.insert(key);
            Auth::Allowed
        } else {
            Auth::Denied
        }
    }
}

/// bcrypt("x", cost 10): verified against when the user is unknown, to take the same time.
const DUMMY_HASH: &str = "$2b$10$7EqJtq98hPqEX7fNZaFWoOhi5BWX4Z4Zx6Hzc8lQ6Zp9iJ3H0mU1e";

fn parse_basic(header: &str) -> Option<(String, String)> {
    let encoded = header
        .strip_prefix("Basic ")
        .or_else(|| header.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

fn tls_config(
    t: &TlsFile,
    cert: &Path,
    key: &Path,
    ca: Option<&Path>,
) -> Result<ServerConfig, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect())
        .map_err(|e| format!("cert_file {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("cert_file {}: no certificate", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("key_file {}: {e}", key.display()))?;
    let version = |v: &Option<String>, default| match v.as_deref() {
        None => Ok(default),
        Some("TLS12") => Ok(12),
        Some("TLS13") => Ok(13),
        Some(other) => Err(format!(
            "TLS version {other:?}: only TLS12 and TLS13 are supported"
        )),
    };
    let (min, max) = (version(&t.min_version, 12)?, version(&t.max_version, 13)?);
    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [(12, &rustls::version::TLS12), (13, &rustls::version::TLS13)]
            .into_iter()
            .filter(|(v, _)| (min..=max).contains(v))
            .map(|(_, p)| p)
            .collect();
    if versions.is_empty() {
        return Err("min_version is above max_version".into());
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_server_config: {e}"))?;
    let auth_type = t.client_auth_type.as_deref().unwrap_or("NoClientCert");
    let builder = match auth_type {
        "NoClientCert" => builder.with_no_client_auth(),
        "VerifyClientCertIfGiven" | "RequireAndVerifyClientCert" => {
            let ca = ca.ok_or_else(|| format!("client_auth_type {auth_type} needs client_ca_file"))?;
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca).map_err(|e| format!("client_ca_file {}: {e}", ca.display()))? {
                let cert = cert.map_err(|e| format!("client_ca_file {}: {e}", ca.display()))?;
                roots.add(cert).map_err(|e| format!("client_ca_file {}: {e}", ca.display()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if auth_type == "VerifyClientCertIfGiven" {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| format!("client_ca_file: {e}"))?)
        }
        other => {
            return Err(format!(
                "client_auth_type {other:?}: supported are NoClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"
            ))
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("cert_file/key_file: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Successful (user, password, hash) checks, by a keyed hash, so bcrypt runs once per change.
#[derive(Debug, Default)]
struct AuthCache {
    hasher: RandomState,
    ok: Mutex<HashSet<u64>>,
}

impl AuthCache {
    fn key(&self, user: &str, password: &str, hash: &str) -> u64 {
        self.hasher.hash_one((user, password, hash))
    }

    fn contains(&self, key: u64) -> bool {
        self.ok
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&key)
    }

    fn insert(&self, key: u64) {
        let mut ok = self.ok.lock().unwrap_or_else(PoisonError::into_inner);
        if ok.len() >= 1024 {
            ok.clear();
        }
        ok.insert(key);
    }
}

/// The configuration in force, re-read when the file or a file it names changes.
#[derive(Debug)]
pub struct WebConfigWatcher {
    path: PathBuf,
    current: RwLock<(Vec<Option<SystemTime>>, Arc<WebConfig>)>,
    cache: AuthCache,
}

impl WebConfigWatcher {
    /// Loads the file; an error here should stop the exporter.
    pub fn new(path: &Path) -> Result<Self, String> {
        let config = WebConfig::load(path)?;
        let stamps = stamps(&config.watched);
        Ok(Self {
            path: path.to_path_buf(),
            current: RwLock::new((stamps, Arc::new(config))),
            cache: AuthCache::default(),
        })
    }

    /// The configuration now: a few `stat` calls, and a reload when something changed. A file
    /// that no longer loads is logged once per change and the last good configuration stays.
    pub fn current(&self) -> Arc<WebConfig> {
        let (old_stamps, config) = {
            let guard = self.current.read().unwrap_or_else(PoisonError::into_inner);
            (guard.0.clone(), Arc::clone(&guard.1))
        };
        let now = stamps(&config.watched);
        if now == old_stamps {
            return config;
        }
        let mut guard = self.current.write().unwrap_or_else(PoisonError::into_inner);
        match WebConfig::load(&self.path) {
            Ok(new) => {
                tracing::info!(file = %self.path.display(), "web configuration reloaded");
                let new = Arc::new(new);
                *guard = (stamps(&new.watched), Arc::clone(&new));
                new
            }
            Err(error) => {
                tracing::error!(file = %self.path.display(), "web configuration not reloaded, keeping the last good one: {error}");
                guard.0 = now;
                Arc::clone(&guard.1)
            }
        }
    }

    /// Basic auth for a request under the current configuration.
    pub fn authorize(&self, config: &WebConfig, authorization: Option<&str>) -> Auth {
        if !config.auth_required() {
            return Auth::Allowed;
        }
        config.check(authorization, &self.cache)
    }
}

fn stamps(paths: &[PathBuf]) -> Vec<Option<SystemTime>> {
    paths
        .iter()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("iam-mfa-web-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn basic_auth() {
        let hash = bcrypt::hash("secret", 4).unwrap();
        let d = dir("auth");
        let path = write(
            &d,
            "web.yml",
            &format!("basic_auth_users:\n  prom: '{hash}'\n"),
        );
        let w = WebConfigWatcher::new(&path).unwrap();
        let c = w.current();
        let header = |u: &str, p: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        };
        assert_eq!(
            w.authorize(&c, Some(&header("prom", "secret"))),
            Auth::Allowed
        );
        assert_eq!(
            w.authorize(&c, Some(&header("prom", "secret"))),
            Auth::Allowed,
            "cached"
        );
        assert_eq!(
            w.authorize(&c, Some(&header("prom", "wrong"))),
            Auth::Denied
        );
        assert_eq!(
            w.authorize(&c, Some(&header("nobody", "secret"))),
            Auth::Denied
        );
        assert_eq!(w.authorize(&c, None), Auth::Denied);
        assert_eq!(w.authorize(&c, Some("Bearer x")), Auth::Denied);
    }

    #[test]
    fn broken_files_are_rejected() {
        let d = dir("broken");
        for (name, text) in [
            (
                "unknown-key.yml",
                "tls_server_config:\n  cert_file: a\n  key_file: b\n  colour: red\n",
            ),
            ("bad-hash.yml", "basic_auth_users:\n  prom: plain-text\n"),
            (
                "missing-cert.yml",
                "tls_server_config:\n  cert_file: nope.crt\n  key_file: nope.key\n",
            ),
            ("no-key.yml", "tls_server_config:\n  cert_file: a\n"),
            ("not-yaml.yml", "basic_auth_users: [\n"),
            (
                "bad-header.yml",
                "http_server_config:\n  headers:\n    'bad header': x\n",
            ),
        ] {
            let path = write(&d, name, text);
            assert!(WebConfigWatcher::new(&path).is_err(), "{name}");
        }
    }

    #[test]
    fn a_broken_reload_keeps_the_last_good_config() {
        let hash = bcrypt::hash("one", 4).unwrap();
        let d = dir("reload");
        let path = write(
            &d,
            "web.yml",
            &format!("basic_auth_users:\n  a: '{hash}'\n"),
        );
        let w = WebConfigWatcher::new(&path).unwrap();
        assert!(w.current().auth_required());
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&path, "basic_auth_users: [\n").unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(SystemTime::now() + std::time::Duration::from_secs(5))
            .unwrap();
        assert!(
            w.current().auth_required(),
            "broken file: the last good config stays"
        );
        std::fs::write(&path, "{}\n").unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(SystemTime::now() + std::time::Duration::from_secs(10))
            .unwrap();
        assert!(!w.current().auth_required(), "a good file is taken");
    }
}
