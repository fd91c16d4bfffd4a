//! Refreshing one target: fetch (AWS or file) → parse → publish, with an overall deadline. A
//! failure keeps the last good data and is logged in one line. [`crate::fleet`] schedules many.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::error::Error;
use crate::mfa::Budget;
use crate::report::hygiene::{At, Thresholds};
use crate::report::timestamp::unix_seconds;
use crate::report::Keep;
use crate::source::Source;
use crate::state::Shared;

/// What a refresh computes besides the report's MFA verdicts (from the flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checks {
    /// Live MFA checks (AWS sources only); `None`: report-only verdicts.
    pub live_mfa: Option<Budget>,
    /// Credential-hygiene checks (`--collector.hygiene`); `None`: off.
    pub hygiene: Option<Thresholds>,
    /// `--metrics.max-user-series`: no account is ever given more per-user series, so no more
    /// users of a hygiene check are kept.
    pub per_user_cap: usize,
}

impl Default for Checks {
    fn default() -> Self {
        Self {
            live_mfa: None,
            hygiene: None,
            per_user_cap: usize::MAX,
        }
    }
}

/// Wall-clock time, replaceable so tests can pin it.
pub trait Clock: Debug + Send + Sync {
    fn now(&self) -> SystemTime;

    /// Time since `start` (monotonic).
    fn elapsed(&self, start: Instant) -> Duration {
        start.elapsed()
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock stopped at one instant: refreshes then report that time and a zero duration.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub SystemTime);

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        self.0
    }

    fn elapsed(&self, _start: Instant) -> Duration {
        Duration::ZERO
    }
}

/// Refreshes one target (`key` in [`Shared`]).
#[derive(Debug)]
pub struct Refresher {
    key: String,
    source: Source,
    shared: Arc<Shared>,
    clock: Arc<dyn Clock>,
    timeout: Duration,
    /// What a refresh computes besides the report's MFA verdicts.
    checks: Checks,
}

impl Refresher {
    pub fn new(
        key: impl Into<String>,
        source: Source,
        shared: Arc<Shared>,
        timeout: Duration,
    ) -> Self {
        Self {
            key: key.into(),
            source,
            shared,
            clock: Arc::new(SystemClock),
            timeout,
            checks: Checks::default(),
        }
    }

    /// Turns on live MFA checks (AWS sources; a file source ignores them) and hygiene checks.
    pub fn with_checks(mut self, checks: Checks) -> Self {
        self.checks = checks;
        self
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    /// One refresh: fetch and parse within the deadline, then publish the result. On failure
    /// the error is counted and returned; the previous data stays in place.
    pub async fn refresh(&self) -> Result<(), Error> {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + self.timeout;
        let result = tokio::time::timeout_at(deadline, async {
            let fetched = self.source.fetch(deadline).await?;
            let keep = Keep {
                hygiene: self.checks.hygiene.map(|thresholds| At {
                    now: unix_seconds(self.clock.now()),
                    thresholds,
                    keep: self.checks.per_user_cap,
                }),
                // Only live MFA checks look at the console users with MFA.
                console_users_with_mfa: self.checks.live_mfa.is_some()
                    && matches!(self.source, Source::Aws(_)),
            };
            // Parsing a large report is CPU work: keep it off the async workers.
            tokio::task::spawn_blocking(move || fetched.into_account_data_keeping(keep))
                .await
                .map_err(|e| Error::Internal(format!("report parser stopped: {e}")))?
                .map_err(Error::from)
        })
        .await
        .unwrap_or_else(|_| Err(Error::Timeout(self.timeout.into())));
        // Live checks never fail the refresh: they stop at the deadline and fall back to the
        // report's verdict for whom they could not look at.
        let result = match (result, &self.source, self.checks.live_mfa) {
            (Ok(mut data), Source::Aws(aws), Some(budget)) => {
                if let Some(summary) = &data.summary {
                    let now = unix_seconds(self.clock.now());
                    data.live = Some(aws.live_mfa(&data, summary, budget, now, deadline).await);
                }
                Ok(data)
            }
            (result, _, _) => result,
        };
        let took = self.clock.elapsed(started);
        // Info on the first success and on recovery; routine successes at debug.
        let recovered = self
            .shared
            .status(&self.key)
            .and_then(|s| s.last_refresh_ok)
            != Some(true);
        let result = result.and_then(|data| {
            let account_id = data.report.account_id.clone();
            let summary = (
                data.report.users,
                data.report.console_users_without_mfa.len(),
            );
            self.shared
                .record_success(&self.key, data, self.clock.now(), took)
                .map(|()| (account_id.clone(), summary))
                .map_err(|other| Error::DuplicateAccount { account_id, other })
        });
        match result {
            Ok((account_id, (users, without_mfa))) => {
                let took_text = humantime::format_duration(round_ms(took)).to_string();
                if recovered {
                    tracing::info!(
                        target_key = %self.key,
                        %account_id,
                        users,
                        console_users_without_mfa = without_mfa,
                        took = %took_text,
                        "refresh succeeded"
                    );
                } else {
                    tracing::debug!(%account_id, took = %took_text, "refresh succeeded");
                }
                Ok(())
            }
            Err(error) => {
                self.shared.record_failure(&self.key, error.reason(), took);
                Err(error)
            }
        }
    }

    /// [`Self::refresh`], logging a failure in one line: what failed, for which account, what is
    /// served meanwhile and when the next try is (`None`: there is none).
    pub async fn refresh_logged(&self, retry_in: Option<Duration>) -> bool {
        let Err(error) = self.refresh().await else {
            return true;
        };
        let status = self.shared.status(&self.key);
        let account = status
            .as_ref()
            .and_then(|s| s.account_id())
            .unwrap_or("unknown");
        let serving = if status.as_ref().is_some_and(|s| s.data.is_some()) {
            "last good data"
        } else {
            "no data yet"
        };
        let retry = retry_in.map_or_else(
            || "never".to_owned(),
            |d| humantime::format_duration(d).to_string(),
        );
        tracing::warn!(
            target_key = %self.key,
            account_id = account,
            reason = error.reason().as_str(),
            retry_in = %retry,
            serving,
            "refresh failed: {error}"
        );
        false
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
