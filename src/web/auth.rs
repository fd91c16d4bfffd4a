//! Basic auth: parsing the header, checking bcrypt hashes off the async workers, and caching
//! outcomes so bcrypt runs once per (user, password) change.
//!
//! bcrypt is deliberately slow (a cost-12 hash takes a few hundred milliseconds of CPU). Run on a
//! tokio worker, a handful of requests with wrong passwords would stall every scrape, the probes
//! and the refresh loops. So a check runs on the blocking pool, at most [`Verifier`]'s permits at
//! once (the rest wait without holding a worker), and both good and failed outcomes are
//! remembered for a while: Prometheus repeating its password, or a client repeating a wrong one,
//! costs no bcrypt at all.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::sync::Semaphore;

use super::config::WebConfig;

/// The outcome of a basic-auth check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    Allowed,
    Denied,
}

/// How long a failed (user, password) pair is answered from memory.
const FAILED_TTL: Duration = Duration::from_secs(60);
/// Most remembered outcomes of each kind; the oldest half is dropped beyond it.
const CACHE_SIZE: usize = 4096;

/// Checks passwords: a bounded number of bcrypt runs at once, on the blocking pool.
#[derive(Debug)]
pub(super) struct Verifier {
    permits: Arc<Semaphore>,
    cache: AuthCache,
}

impl Default for Verifier {
    fn default() -> Self {
        // Half the cores (at least one): the other half keeps serving scrapes and probes.
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Self::new((cores / 2).max(1))
    }
}

impl Verifier {
    pub(super) fn new(concurrent_checks: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrent_checks.max(1))),
            cache: AuthCache::default(),
        }
    }

    /// Checks an `Authorization` header against `config`'s users. An unknown user costs the same
    /// bcrypt run as a wrong password, so timing does not tell which it was.
    pub(super) async fn check(&self, config: &WebConfig, authorization: Option<&str>) -> Auth {
        let Some((user, password)) = authorization.and_then(parse_basic) else {
            return Auth::Denied;
        };
        let (hash, known) = match config.users.get(&user) {
            Some(hash) => (hash.clone(), true),
            None => (config.dummy_hash.clone(), false),
        };
        let key = self.cache.key(&user, &password, &hash);
        match self.cache.get(key) {
            Some(true) if known => return Auth::Allowed,
            Some(false) => return Auth::Denied,
            _ => {}
        }
        let Ok(_permit) = self.permits.acquire().await else {
            return Auth::Denied;
        };
        let verified = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash))
            .await
            .is_ok_and(|r| r.unwrap_or(false));
        let ok = verified && known;
        self.cache.put(key, ok);
        if ok {
            Auth::Allowed
        } else {
            Auth::Denied
        }
    }
}

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

/// Outcomes of (user, password, hash) checks, by a keyed hash (never the password itself): good
/// ones until the configuration changes them, failed ones for [`FAILED_TTL`].
#[derive(Debug, Default)]
struct AuthCache {
    hasher: RandomState,
    outcomes: Mutex<HashMap<u64, (bool, Instant)>>,
}

impl AuthCache {
    fn key(&self, user: &str, password: &str, hash: &str) -> u64 {
        self.hasher.hash_one((user, password, hash))
    }

    fn get(&self, key: u64) -> Option<bool> {
        let outcomes = self.outcomes.lock().unwrap_or_else(PoisonError::into_inner);
        let (ok, at) = outcomes.get(&key)?;
        (*ok || at.elapsed() < FAILED_TTL).then_some(*ok)
    }

    fn put(&self, key: u64, ok: bool) {
        let mut outcomes = self.outcomes.lock().unwrap_or_else(PoisonError::into_inner);
        if outcomes.len() >= CACHE_SIZE {
            // Failed outcomes go first, then the older half of the rest.
            outcomes.retain(|_, (ok, at)| *ok && at.elapsed() < FAILED_TTL * 60);
            if outcomes.len() >= CACHE_SIZE / 2 {
                outcomes.clear();
            }
        }
        outcomes.insert(key, (ok, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user: &str, password: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    }

    #[tokio::test]
    async fn outcomes_are_remembered_so_bcrypt_runs_once() {
        let config = WebConfig {
            users: [("prom".to_owned(), bcrypt::hash("secret", 4).unwrap())].into(),
            dummy_hash: bcrypt::hash("not a password", 4).unwrap(),
            ..WebConfig::default()
        };
        let verifier = Verifier::new(1);
        let key = |user: &str, password: &str| {
            let hash = config
                .users
                .get(user)
                .map_or(config.dummy_hash.as_str(), String::as_str);
            verifier.cache.key(user, password, hash)
        };
        assert_eq!(verifier.cache.get(key("prom", "wrong")), None);
        assert_eq!(
            verifier
                .check(&config, Some(&header("prom", "wrong")))
                .await,
            Auth::Denied
        );
        assert_eq!(
            verifier.cache.get(key("prom", "wrong")),
            Some(false),
            "failure remembered"
        );
        assert_eq!(
            verifier.check(&config, Some(&header("nobody", "x"))).await,
            Auth::Denied
        );
        assert_eq!(verifier.cache.get(key("nobody", "x")), Some(false));
        assert_eq!(
            verifier
                .check(&config, Some(&header("prom", "secret")))
                .await,
            Auth::Allowed
        );
        assert_eq!(
            verifier.cache.get(key("prom", "secret")),
            Some(true),
            "success remembered"
        );
        // A remembered outcome needs no bcrypt permit: with none left, it still answers.
        let _all = verifier.permits.acquire().await.unwrap();
        assert_eq!(
            verifier
                .check(&config, Some(&header("prom", "secret")))
                .await,
            Auth::Allowed
        );
        assert_eq!(
            verifier
                .check(&config, Some(&header("prom", "wrong")))
                .await,
            Auth::Denied
        );
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = AuthCache::default();
        for i in 0..3 * CACHE_SIZE {
            cache.put(cache.key("u", &i.to_string(), "h"), false);
        }
        let size = cache.outcomes.lock().unwrap().len();
        assert!(size <= CACHE_SIZE, "{size}");
    }
}
