//! `--web.config.file`: TLS and basic auth in the format of the Prometheus exporter-toolkit
//! (`tls_server_config`, `basic_auth_users` with bcrypt hashes, `http_server_config.headers`):
//! [`config`] reads and validates the file, [`tls`] builds rustls, [`auth`] checks passwords; this
//! file keeps the configuration in force.
//!
//! As in the toolkit, the file (and the certificates it names) is re-read when it changes, so a
//! rotated certificate or a changed user takes effect without a restart; a file that is broken at
//! start-up stops the exporter with a clear error, one broken later is logged and the last good
//! configuration stays.

mod auth;
mod config;
mod tls;

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

pub use auth::Auth;
use auth::Verifier;
pub use config::WebConfig;

/// How often the background task looks for a changed file.
const RELOAD_EVERY: Duration = Duration::from_secs(1);

/// The configuration in force. Requests only read it; a background task ([`Self::watch`])
/// re-reads the files when they change, off the async workers.
#[derive(Debug)]
pub struct WebConfigWatcher {
    path: PathBuf,
    current: RwLock<(Vec<Option<SystemTime>>, Arc<WebConfig>)>,
    verifier: Verifier,
}

impl WebConfigWatcher {
    /// Loads the file; an error here should stop the exporter.
    pub fn new(path: &Path) -> Result<Self, String> {
        let config = WebConfig::load(path)?;
        let stamps = stamps(&config.watched);
        Ok(Self {
            path: path.to_path_buf(),
            current: RwLock::new((stamps, Arc::new(config))),
            verifier: Verifier::default(),
        })
    }

    /// The configuration in force: no I/O.
    pub fn current(&self) -> Arc<WebConfig> {
        let guard = self.current.read().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(&guard.1)
    }

    /// Re-reads the files if any changed (blocking I/O: call it off the async workers). A file
    /// that no longer loads is logged once per change and the last good configuration stays.
    pub fn reload_if_changed(&self) {
        let old_stamps = {
            let guard = self.current.read().unwrap_or_else(PoisonError::into_inner);
            guard.0.clone()
        };
        let watched = self.current().watched.clone();
        let now = stamps(&watched);
        if now == old_stamps {
            return;
        }
        let loaded = WebConfig::load(&self.path);
        let mut guard = self.current.write().unwrap_or_else(PoisonError::into_inner);
        match loaded {
            Ok(new) => {
                tracing::info!(file = %self.path.display(), "web configuration reloaded");
                *guard = (stamps(&new.watched), Arc::new(new));
            }
            Err(error) => {
                tracing::error!(file = %self.path.display(), "web configuration not reloaded, keeping the last good one: {error}");
                guard.0 = now;
            }
        }
    }

    /// Runs forever: looks for changed files every second, on the blocking pool.
    pub async fn watch(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(RELOAD_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let watcher = Arc::clone(&self);
            if let Err(error) =
                tokio::task::spawn_blocking(move || watcher.reload_if_changed()).await
            {
                tracing::error!("web configuration reload stopped: {error}");
            }
        }
    }

    /// Basic auth for a request under `config`: allowed when no users are configured.
    pub async fn authorize(&self, config: &WebConfig, authorization: Option<&str>) -> Auth {
        if !config.auth_required() {
            return Auth::Allowed;
        }
        self.verifier.check(config, authorization).await
    }
}

/// Modification times of the watched files (`None`: missing).
fn stamps(paths: &[PathBuf]) -> Vec<Option<SystemTime>> {
    paths
        .iter()
        .map(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

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

    #[tokio::test]
    async fn basic_auth() {
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
            w.authorize(&c, Some(&header("prom", "secret"))).await,
            Auth::Allowed
        );
        assert_eq!(
            w.authorize(&c, Some(&header("prom", "secret"))).await,
            Auth::Allowed,
            "cached"
        );
        assert_eq!(
            w.authorize(&c, Some(&header("prom", "wrong"))).await,
            Auth::Denied
        );
        assert_eq!(
            w.authorize(&c, Some(&header("nobody", "secret"))).await,
            Auth::Denied
        );
        assert_eq!(w.authorize(&c, None).await, Auth::Denied);
        assert_eq!(w.authorize(&c, Some("Bearer x")).await, Auth::Denied);
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
            "requests never read files: nothing changes until the watcher looks"
        );
        w.reload_if_changed();
        assert!(
            w.current().auth_required(),
            "broken file: the last good config stays"
        );
        std::fs::write(&path, "{}\n").unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(SystemTime::now() + std::time::Duration::from_secs(10))
            .unwrap();
        w.reload_if_changed();
        assert!(!w.current().auth_required(), "a good file is taken");
    }
}
