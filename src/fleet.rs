//! Scheduling many targets: every cycle the target list is resolved again (Organizations
//! discovery), new targets get their own refresh loop, gone ones are stopped and forgotten.
//! Refreshes run with bounded concurrency, each target on its own schedule, offset by a stable
//! jitter so hundreds of accounts do not all call AWS at the same second.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::MissedTickBehavior;

use crate::accounts::{stable_hash, Accounts, Target};
use crate::refresh::{Clock, Refresher, SystemClock};
use crate::state::Shared;

/// The longest a target waits before its first refresh.
const MAX_JITTER: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Fleet {
    accounts: Accounts,
    shared: Arc<Shared>,
    interval: Duration,
    timeout: Duration,
    permits: Arc<Semaphore>,
    clock: Arc<dyn Clock>,
}

impl Fleet {
    pub fn new(
        accounts: Accounts,
        shared: Arc<Shared>,
        interval: Duration,
        timeout: Duration,
        max_concurrency: usize,
    ) -> Self {
        Self {
            accounts,
            shared,
            interval,
            timeout,
            permits: Arc::new(Semaphore::new(max_concurrency.max(1))),
            clock: Arc::new(SystemClock),
        }
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    async fn refresher(&self, target: &Target) -> Result<Refresher, crate::Error> {
        let source = self.accounts.source(target).await?;
        Ok(Refresher::new(
            target.key.clone(),
            source,
            Arc::clone(&self.shared),
            self.timeout,
        )
        .with_clock(Arc::clone(&self.clock)))
    }

    /// `--once`: every target refreshed once (bounded concurrency). True if all succeeded.
    pub async fn refresh_once(&self) -> Result<bool, crate::Error> {
        let targets = self.accounts.targets().await?;
        let mut runs = JoinSet::new();
        for target in &targets {
            self.shared
                .register(&target.key, target.account_id.clone(), target.name.clone());
            let refresher = self.refresher(target).await?;
            let permits = Arc::clone(&self.permits);
            runs.spawn(async move {
                let _permit = permits.acquire_owned().await.ok();
                match refresher.refresh().await {
                    Ok(()) => true,
                    Err(error) => {
                        tracing::error!(
                            target_key = refresher.key(),
                            reason = error.reason().as_str(),
                            "refresh failed: {error}"
                        );
                        false
                    }
                }
            });
        }
        let mut all_ok = true;
        while let Some(ok) = runs.join_next().await {
            all_ok &= ok.unwrap_or(false);
        }
        Ok(all_ok)
    }

    /// Runs forever: re-resolves the targets every interval and keeps one loop per target.
    pub async fn run(self) {
        let mut loops: HashMap<String, JoinHandle<()>> = HashMap::new();
        let mut cycle = tokio::time::interval(self.interval);
        cycle.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let spread = if self.accounts.is_fleet() {
            (self.interval / 10).min(MAX_JITTER)
        } else {
            Duration::ZERO
        };
        loop {
            cycle.tick().await;
            let targets = match self.accounts.targets().await {
                Ok(targets) => targets,
                Err(error) => {
                    tracing::warn!(
                        reason = error.reason().as_str(),
                        retry_in = %humantime::format_duration(self.interval),
                        accounts = loops.len(),
                        "listing accounts failed, keeping the current ones: {error}"
                    );
                    continue;
                }
            };
            let keep: HashMap<&str, &Target> =
                targets.iter().map(|t| (t.key.as_str(), t)).collect();
            loops.retain(|key, task| {
                if keep.contains_key(key.as_str()) {
                    return true;
                }
                tracing::info!(target_key = %key, "account left the selection; its series are removed");
                task.abort();
                self.shared.remove(key);
                false
            });
            for target in &targets {
                self.shared
                    .register(&target.key, target.account_id.clone(), target.name.clone());
                if loops.contains_key(&target.key) {
                    continue;
                }
                let refresher = match self.refresher(target).await {
                    Ok(refresher) => refresher,
                    Err(error) => {
                        tracing::warn!(target_key = %target.key, "cannot set up the account: {error}");
                        continue;
                    }
                };
                let delay = jitter(&target.key, spread);
                let task = tokio::spawn(run_target(
                    refresher,
                    self.interval,
                    delay,
                    Arc::clone(&self.permits),
                ));
                loops.insert(target.key.clone(), task);
            }
        }
    }
}

/// One target's loop: wait its jitter, then refresh every interval, holding a permit meanwhile.
async fn run_target(
    refresher: Refresher,
    interval: Duration,
    delay: Duration,
    permits: Arc<Semaphore>,
) {
    tokio::time::sleep(delay).await;
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Ok(_permit) = permits.acquire().await else {
            return; // the semaphore closed: shutting down
        };
        refresher.refresh_logged(Some(interval)).await;
    }
}

/// A stable offset in `[0, spread)` from the key: the same account always starts at the same
/// point of the cycle, and accounts spread over it.
fn jitter(key: &str, spread: Duration) -> Duration {
    let millis = u64::try_from(spread.as_millis()).unwrap_or(u64::MAX);
    if millis == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(stable_hash(key) % millis)
}

#[cfg(test)]
mod tests {
    use super::jitter;
    use std::time::Duration;

    #[test]
    fn jitter_is_stable_bounded_and_spread() {
        let spread = Duration::from_secs(30);
        assert_eq!(
            jitter("123456789012", spread),
            jitter("123456789012", spread)
        );
        let offsets: Vec<Duration> = (0..100)
            .map(|i| jitter(&format!("{:012}", i * 104_729), spread))
            .collect();
        assert!(offsets.iter().all(|d| *d < spread));
        let early = offsets.iter().filter(|d| **d < spread / 2).count();
        assert!(
            (30..70).contains(&early),
            "{early} of 100 in the first half"
        );
        assert_eq!(jitter("x", Duration::ZERO), Duration::ZERO);
    }
}
