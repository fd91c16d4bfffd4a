//! The state a scrape reads: per target (an account, or a report file), an immutable [`Status`]
//! swapped whole by that target's refresher, so a scrape never waits on AWS and never sees a
//! half-applied refresh.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use crate::error::Reason;
use crate::report::AccountData;

/// What is known about one target after its latest refresh.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// The target's key: its account id, `self`, or a report file's path.
    pub key: String,
    /// The account id before any report says it (from a role ARN or Organizations).
    pub account_hint: Option<String>,
    /// The account's name (Organizations, or `--aws.account-name`).
    pub account_name: Option<String>,
    /// The last good data; kept when a later refresh fails.
    pub data: Option<Arc<AccountData>>,
    /// Whether the latest refresh worked; `None` before the first one ended.
    pub last_refresh_ok: Option<bool>,
    pub last_success: Option<SystemTime>,
    pub last_duration: Option<Duration>,
    /// Failed refreshes, indexed by [`Reason::index`].
    pub errors: [u64; Reason::ALL.len()],
}

impl Status {
    /// The account id: from the last good report, else the hint.
    pub fn account_id(&self) -> Option<&str> {
        self.data
            .as_ref()
            .map(|d| d.report.account_id.as_str())
            .or(self.account_hint.as_deref())
    }
}

/// The outcome of account discovery (STS GetCallerIdentity, Organizations ListAccounts); only
/// AWS modes discover, file mode never has one.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    pub last_ok: bool,
    pub last_success: Option<SystemTime>,
    /// Failed discoveries, indexed by [`Reason::index`].
    pub errors: [u64; Reason::ALL.len()],
}

/// The handle shared by the refreshers (writers) and the HTTP server (readers).
#[derive(Debug, Default)]
pub struct Shared {
    targets: RwLock<BTreeMap<String, Arc<Status>>>,
    discovery: RwLock<Option<Discovery>>,
    /// Per-target refresh loops that ended unexpectedly and were restarted.
    task_restarts: AtomicU64,
    /// Bumped by every change, so an encoded /metrics body can be reused until the next one.
    generation: AtomicU64,
}

impl Shared {
    pub fn new() -> Self {
        Self::default()
    }

    /// Changes whenever any status changes.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn discovery(&self) -> Option<Discovery> {
        self.discovery
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records the outcome of one account discovery.
    pub fn record_discovery(&self, result: Result<SystemTime, Reason>) {
        let mut discovery = self
            .discovery
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let d = discovery.get_or_insert_with(Discovery::default);
        match result {
            Ok(at) => {
                d.last_ok = true;
                d.last_success = Some(at);
            }
            Err(reason) => {
                d.last_ok = false;
                d.errors[reason.index()] += 1;
            }
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn task_restarts(&self) -> u64 {
        self.task_restarts.load(Ordering::Relaxed)
    }

    pub fn record_task_restart(&self) {
        self.task_restarts.fetch_add(1, Ordering::Relaxed);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Every target's status, in key order; cheap (`Arc` clones), never blocks on a refresh.
    pub fn snapshot(&self) -> Vec<Arc<Status>> {
        self.read().values().cloned().collect()
    }

    pub fn status(&self, key: &str) -> Option<Arc<Status>> {
        self.read().get(key).cloned()
    }

    /// Ready once any target has refreshed successfully.
    pub fn is_ready(&self) -> bool {
        self.read().values().any(|s| s.data.is_some())
    }

    /// Adds a target, or updates its hint and name; its data and counters stay. The only way a
    /// target enters the state.
    pub fn register(&self, key: &str, account_hint: Option<String>, account_name: Option<String>) {
        let mut targets = self.targets.write().unwrap_or_else(PoisonError::into_inner);
        let mut next = match targets.get(key) {
            Some(status) => Status::clone(status),
            None => Status {
                key: key.to_owned(),
                ..Status::default()
            },
        };
        next.account_hint = account_hint;
        next.account_name = account_name;
        targets.insert(key.to_owned(), Arc::new(next));
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Forgets a target for good: its series leave /metrics, and a refresh of it that ends
    /// later (aborted, but past its last await) changes nothing.
    pub fn remove(&self, key: &str) {
        let mut targets = self.targets.write().unwrap_or_else(PoisonError::into_inner);
        targets.remove(key);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Publishes a good refresh — unless another target already serves the same account (two
    /// files of one account, a role and the own account): then nothing changes and the other
    /// target's key is returned. Checked under the write lock, so two concurrent refreshes of
    /// one account cannot both get in.
    pub fn record_success(
        &self,
        key: &str,
        data: AccountData,
        at: SystemTime,
        took: Duration,
    ) -> Result<(), String> {
        let mut targets = self.targets.write().unwrap_or_else(PoisonError::into_inner);
        if !targets.contains_key(key) {
            return Ok(()); // removed meanwhile: stays removed
        }
        let account = data.report.account_id.as_str();
        if let Some(other) = targets.values().find(|s| {
            s.key != key
                && s.data
                    .as_ref()
                    .is_some_and(|d| d.report.account_id == account)
        }) {
            return Err(other.key.clone());
        }
        let mut next = targets
            .get(key)
            .map(|s| Status::clone(s))
            .unwrap_or_default();
        next.data = Some(Arc::new(data));
        next.last_refresh_ok = Some(true);
        next.last_success = Some(at);
        next.last_duration = Some(took);
        targets.insert(key.to_owned(), Arc::new(next));
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Counts the failure; the last good data stays.
    pub fn record_failure(&self, key: &str, reason: Reason, took: Duration) {
        self.update(key, |s| {
            s.last_refresh_ok = Some(false);
            s.last_duration = Some(took);
            s.errors[reason.index()] += 1;
        });
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Status>>> {
        self.targets.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Changes a registered target; a key that is not (or no longer) registered is left alone.
    fn update(&self, key: &str, change: impl FnOnce(&mut Status)) {
        let mut targets = self.targets.write().unwrap_or_else(PoisonError::into_inner);
        let Some(current) = targets.get(key) else {
            return;
        };
        let mut next = Status::clone(current);
        change(&mut next);
        targets.insert(key.to_owned(), Arc::new(next));
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{AccountData, AccountReport};

    fn data(account: &str) -> AccountData {
        AccountData {
            report: AccountReport {
                account_id: account.into(),
                users: 1,
                console_users: 0,
                console_users_mfa_enabled: 0,
                users_mfa_enabled: 0,
                console_users_without_mfa: vec![],
                console_users_with_mfa: vec![],
                root: None,
                hygiene: None,
            },
            generated_at: None,
            summary: None,
            root_virtual_mfa: None,
            live: None,
        }
    }

    #[test]
    fn failure_keeps_data_and_removal_forgets() {
        let shared = Shared::new();
        shared.register("a", Some("111111111111".into()), Some("prod".into()));
        assert!(!shared.is_ready());
        assert_eq!(
            shared.status("a").unwrap().account_id(),
            Some("111111111111")
        );
        let at = SystemTime::UNIX_EPOCH;
        let before = shared.generation();
        assert_eq!(
            shared.record_success("a", data("111111111111"), at, Duration::ZERO),
            Ok(())
        );
        assert!(
            shared.generation() > before,
            "a change bumps the generation"
        );
        shared.record_failure("a", Reason::Throttled, Duration::from_secs(1));
        let a = shared.status("a").unwrap();
        assert!(a.data.is_some() && a.last_refresh_ok == Some(false));
        assert_eq!(a.errors[Reason::Throttled.index()], 1);
        assert_eq!(a.account_name.as_deref(), Some("prod"));
        assert!(shared.is_ready());
        // One account, one target: b cannot publish a's account; a can publish it again.
        shared.register("b", None, None);
        let taken = shared.record_success("b", data("111111111111"), at, Duration::ZERO);
        assert_eq!(taken, Err("a".to_owned()));
        assert!(
            shared.status("b").is_some_and(|b| b.data.is_none()),
            "nothing recorded for b"
        );
        assert_eq!(
            shared.record_success("a", data("111111111111"), at, Duration::ZERO),
            Ok(())
        );
        shared.remove("a");
        shared.remove("b");
        assert!(shared.snapshot().is_empty());
    }

    #[test]
    fn a_removed_target_stays_removed() {
        let shared = Shared::new();
        shared.register("a", Some("111111111111".into()), None);
        shared.remove("a");
        // A refresh that was aborted but got past its last await ends now.
        let at = SystemTime::UNIX_EPOCH;
        assert_eq!(
            shared.record_success("a", data("111111111111"), at, Duration::ZERO),
            Ok(())
        );
        shared.record_failure("a", Reason::Network, Duration::ZERO);
        assert!(shared.status("a").is_none(), "no resurrection");
        assert!(shared.snapshot().is_empty());
    }

    #[test]
    fn discovery_is_recorded() {
        let shared = Shared::new();
        assert!(
            shared.discovery().is_none(),
            "file mode: no discovery series"
        );
        shared.record_discovery(Err(Reason::AccessDenied));
        let d = shared.discovery().unwrap();
        assert!(!d.last_ok && d.last_success.is_none());
        assert_eq!(d.errors[Reason::AccessDenied.index()], 1);
        shared.record_discovery(Ok(SystemTime::UNIX_EPOCH));
        let d = shared.discovery().unwrap();
        assert!(d.last_ok && d.last_success == Some(SystemTime::UNIX_EPOCH));
        assert_eq!(d.errors[Reason::AccessDenied.index()], 1, "kept");
    }
}
