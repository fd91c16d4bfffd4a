//! The background refresher: fetch (AWS or file) → parse → swap the snapshot, on a schedule, with
//! an overall deadline. A failure keeps the last good data and is logged in one line.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::time::MissedTickBehavior;

use crate::error::Error;
use crate::report::fetch::AwsSource;
use crate::report::file::FileSource;
use crate::report::Fetched;
use crate::state::Shared;

/// Where reports come from.
#[derive(Debug, Clone)]
pub enum Source {
    Aws(AwsSource),
    File(FileSource),
}

impl Source {
    pub async fn fetch(&self) -> Result<Fetched, Error> {
        match self {
            Source::Aws(aws) => aws.fetch().await,
            Source::File(file) => file.fetch().await,
        }
    }

    /// For log lines: "aws" or the file's path.
    pub fn describe(&self) -> String {
        match self {
            Source::Aws(_) => "aws".to_owned(),
            Source::File(file) => file.path().display().to_string(),
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

#[derive(Debug)]
pub struct Refresher {
    source: Source,
    shared: Arc<Shared>,
    clock: Arc<dyn Clock>,
    timeout: Duration,
    max_user_series: usize,
}

impl Refresher {
    pub fn new(
        source: Source,
        shared: Arc<Shared>,
        timeout: Duration,
        max_user_series: usize,
    ) -> Self {
        Self {
            source,
            shared,
            clock: Arc::new(SystemClock),
            timeout,
            max_user_series,
        }
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// One refresh: fetch and parse within the deadline, then publish the result. On failure
    /// the error is counted and returned; the previous data stays in place.
    pub async fn refresh(&self) -> Result<(), Error> {
        let started = Instant::now();
        let result = tokio::time::timeout(self.timeout, async {
            let fetched = self.source.fetch().await?;
            // Parsing a large report is CPU work: keep it off the async workers.
            tokio::task::spawn_blocking(move || fetched.into_account_data())
                .await
                .map_err(|e| Error::Internal(format!("report parser stopped: {e}")))?
                .map_err(Error::from)
        })
        .await
        .unwrap_or_else(|_| Err(Error::Timeout(self.timeout.into())));
        let took = self.clock.elapsed(started);

        match result {
            Ok(data) => {
                let previous = self.shared.status().data.clone();
                let dropped = |n: usize| n.saturating_sub(self.max_user_series);
                let now_dropped = dropped(data.report.console_users_without_mfa.len());
                let was_dropped =
                    previous.map_or(0, |p| dropped(p.report.console_users_without_mfa.len()));
                if now_dropped > 0 && now_dropped != was_dropped {
                    tracing::warn!(
                        account_id = %data.report.account_id,
                        dropped = now_dropped,
                        max_user_series = self.max_user_series,
                        "more console users without MFA than --metrics.max-user-series; per-user series left out (counts stay exact)"
                    );
                }
                // Info on the first success and on recovery; routine successes at debug.
                let recovered = self.shared.status().last_refresh_ok != Some(true);
                let took_text = humantime::format_duration(round_ms(took)).to_string();
                if recovered {
                    tracing::info!(
                        source = %self.source.describe(),
                        account_id = %data.report.account_id,
                        users = data.report.users,
                        console_users_without_mfa = data.report.console_users_without_mfa.len(),
                        took = %took_text,
                        "refresh succeeded"
                    );
                } else {
                    tracing::debug!(account_id = %data.report.account_id, took = %took_text, "refresh succeeded");
                }
                self.shared.record_success(data, self.clock.now(), took);
                Ok(())
            }
            Err(error) => {
                self.shared.record_failure(error.reason(), took);
                Err(error)
            }
        }
    }

    /// Refreshes now and then every `interval`, forever. Missed ticks are delayed, not burst.
    pub async fn run(self, interval: Duration) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(error) = self.refresh().await {
                let status = self.shared.status();
                tracing::warn!(
                    source = %self.source.describe(),
                    account_id = status.data.as_ref().map_or("unknown", |d| d.report.account_id.as_str()),
                    reason = error.reason().as_str(),
                    retry_in = %humantime::format_duration(interval),
                    serving = if status.data.is_some() { "last good data" } else { "no data yet" },
                    "refresh failed: {error}"
                );
            }
        }
    }
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
