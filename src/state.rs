//! The state a scrape reads: an immutable [`Status`] swapped whole by the refresher, so a scrape
//! never waits on AWS and never sees a half-applied refresh.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use crate::error::Reason;
use crate::report::AccountData;

/// What is known after the latest refresh.
#[derive(Debug, Clone, Default)]
pub struct Status {
    /// The last good data; kept when a later refresh fails.
    pub data: Option<Arc<AccountData>>,
    /// Whether the latest refresh worked; `None` before the first one ended.
    pub last_refresh_ok: Option<bool>,
    pub last_success: Option<SystemTime>,
    pub last_duration: Option<Duration>,
    /// Failed refreshes, indexed by [`Reason::index`].
    pub errors: [u64; Reason::ALL.len()],
}

/// The handle shared by the refresher (writer) and the HTTP server (readers).
#[derive(Debug, Default)]
pub struct Shared {
    status: RwLock<Arc<Status>>,
}

impl Shared {
    pub fn new() -> Self {
        Self::default()
    }

    /// The current status; cheap (an `Arc` clone), never blocks on a refresh in progress.
    pub fn status(&self) -> Arc<Status> {
        Arc::clone(&self.status.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Ready once a refresh has succeeded.
    pub fn is_ready(&self) -> bool {
        self.status().data.is_some()
    }

    pub fn record_success(&self, data: AccountData, at: SystemTime, took: Duration) {
        self.update(|s| {
            s.data = Some(Arc::new(data));
            s.last_refresh_ok = Some(true);
            s.last_success = Some(at);
            s.last_duration = Some(took);
        });
    }

    /// Counts the failure; the last good data stays.
    pub fn record_failure(&self, reason: Reason, took: Duration) {
        self.update(|s| {
            s.last_refresh_ok = Some(false);
            s.last_duration = Some(took);
            s.errors[reason.index()] += 1;
        });
    }

    fn update(&self, change: impl FnOnce(&mut Status)) {
        let mut guard = self.status.write().unwrap_or_else(PoisonError::into_inner);
        let mut next = Status::clone(&guard);
        change(&mut next);
        *guard = Arc::new(next);
    }
}
