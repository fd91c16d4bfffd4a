//! Scheduling many targets: every cycle the target list is resolved again (Organizations
//! discovery), new targets get their own refresh loop, gone ones are stopped and forgotten.
//! Refreshes run with bounded concurrency, each target on its own schedule, offset by a stable
//! jitter so hundreds of accounts do not all call AWS at the same second.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::MissedTickBehavior;

use crate::accounts::{Accounts, Target};
use crate::hash::stable_hash;
use crate::refresh::{Checks, Clock, Refresher, SystemClock};
use crate::state::Shared;

/// The least a crashed refresh loop waits before it starts again.
const MIN_RESTART_DELAY: Duration = Duration::from_secs(5);

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
    checks: Checks,
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
            checks: Checks::default(),
        }
    }

    /// Live MFA and hygiene checks for every target.
    pub fn with_checks(mut self, checks: Checks) -> Self {
        self.checks = checks;
        self
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
        .with_clock(Arc::clone(&self.clock))
        .with_checks(self.checks))
    }

    /// Resolves the targets, recording the outcome where discovery can fail (AWS modes).
    async fn discover(&self) -> Result<Vec<Target>, crate::Error> {
        let result = self.accounts.targets().await;
        if self.accounts.discovers() {
            self.shared.record_discovery(
                result
                    .as_ref()
                    .map(|_| self.clock.now())
                    .map_err(|e| e.reason()),
            );
        }
        result
    }

    /// `--once`: every target refreshed once (bounded concurrency). True if all succeeded;
    /// a failed discovery is logged, recorded and false.
    pub async fn refresh_once(&self) -> bool {
        let targets = match self.discover().await {
            Ok(targets) => targets,
            Err(error) => {
                tracing::error!(
                    reason = error.reason().as_str(),
                    "listing accounts failed: {error}"
                );
                return false;
            }
        };
        let mut runs = JoinSet::new();
        for target in &targets {
            self.shared
                .register(&target.key, target.account_id.clone(), target.name.clone());
            let refresher = match self.refresher(target).await {
                Ok(refresher) => refresher,
                Err(error) => {
                    tracing::error!(target_key = %target.key, "cannot set up the account: {error}");
                    return false;
                }
            };
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
        all_ok
    }

    /// Runs until dropped: re-resolves the targets every interval (sooner, with capped backoff,
    /// after a failed discovery) and keeps one supervised loop per target. A loop that ends
    /// (a panic) is logged, counted and restarted; dropping this future stops them all.
    pub async fn run(self) {
        let mut loops = Loops::default();
        let mut wanted: HashMap<String, Target> = HashMap::new();
        let spread = if self.accounts.is_fleet() {
            (self.interval / 10).min(MAX_JITTER)
        } else {
            Duration::ZERO
        };
        let mut retry = DiscoveryBackoff::new(self.interval);
        let mut next_discovery = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(next_discovery) => {}
                Some((key, ended)) = loops.join_next() => {
                    let Some(target) = wanted.get(&key) else { continue };
                    self.shared.record_task_restart();
                    tracing::error!(target_key = %key, "refresh loop ended unexpectedly ({ended}); restarting it");
                    // Not at once: a loop that panics at every refresh must not become a hot loop.
                    let delay = jitter(&key, spread).max(MIN_RESTART_DELAY);
                    match self.refresher(target).await {
                        Ok(refresher) => loops.spawn(key, run_target(refresher, self.interval, delay, Arc::clone(&self.permits))),
                        Err(error) => tracing::error!(target_key = %key, "cannot restart the refresh loop; retried at the next discovery: {error}"),
                    }
                    continue;
                }
            }
            let targets = match self.discover().await {
                Ok(targets) => {
                    retry.reset();
                    next_discovery = tokio::time::Instant::now() + self.interval;
                    targets
                }
                Err(error) => {
                    let delay = retry.next();
                    next_discovery = tokio::time::Instant::now() + delay;
                    tracing::warn!(
                        reason = error.reason().as_str(),
                        retry_in = %humantime::format_duration(delay),
                        accounts = wanted.len(),
                        "listing accounts failed, keeping the current ones: {error}"
                    );
                    continue;
                }
            };
            let keep: HashMap<String, Target> =
                targets.into_iter().map(|t| (t.key.clone(), t)).collect();
            for key in wanted.keys().filter(|k| !keep.contains_key(*k)) {
                tracing::info!(target_key = %key, "account left the selection; its series are removed");
                loops.abort(key);
                self.shared.remove(key);
            }
            wanted = keep;
            for target in wanted.values() {
                self.shared
                    .register(&target.key, target.account_id.clone(), target.name.clone());
                if loops.contains(&target.key) {
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
                loops.spawn(
                    target.key.clone(),
                    run_target(refresher, self.interval, delay, Arc::clone(&self.permits)),
                );
            }
        }
    }
}

/// The per-target loops, by key. Dropping it aborts them all (a `JoinSet`).
#[derive(Default)]
struct Loops {
    set: JoinSet<()>,
    keys: HashMap<tokio::task::Id, String>,
    handles: HashMap<String, AbortHandle>,
}

impl Loops {
    fn spawn(&mut self, key: String, task: impl Future<Output = ()> + Send + 'static) {
        let handle = self.set.spawn(task);
        self.keys.insert(handle.id(), key.clone());
        self.handles.insert(key, handle);
    }

    fn contains(&self, key: &str) -> bool {
        self.handles.contains_key(key)
    }

    /// Stops a loop on purpose: its end is not reported by [`Self::join_next`].
    fn abort(&mut self, key: &str) {
        if let Some(handle) = self.handles.remove(key) {
            self.keys.remove(&handle.id());
            handle.abort();
        }
    }

    /// The next loop that ended on its own (panicked, or returned), with why. Pending while
    /// none has; never returns for loops stopped by [`Self::abort`].
    async fn join_next(&mut self) -> Option<(String, String)> {
        loop {
            let (id, why) = match self.set.join_next_with_id().await? {
                Ok((id, ())) => (id, "returned".to_owned()),
                Err(e) if e.is_cancelled() => {
                    self.keys.remove(&e.id());
                    continue;
                }
                Err(e) => (e.id(), panic_message(e)),
            };
            if let Some(key) = self.keys.remove(&id) {
                self.handles.remove(&key);
                return Some((key, why));
            }
        }
    }
}

fn panic_message(error: tokio::task::JoinError) -> String {
    match error.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .map_or_else(|| "panicked".to_owned(), |m| format!("panicked: {m}")),
        Err(error) => error.to_string(),
    }
}

/// Retry delays of a failed discovery: 2 s, doubling, at most the refresh interval and 5 min.
#[derive(Debug)]
struct DiscoveryBackoff {
    next: Duration,
    max: Duration,
}

impl DiscoveryBackoff {
    const INITIAL: Duration = Duration::from_secs(2);

    fn new(interval: Duration) -> Self {
        let max = interval.min(Duration::from_secs(300));
        Self {
            next: Self::INITIAL.min(max),
            max,
        }
    }

    fn next(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    fn reset(&mut self) {
        self.next = Self::INITIAL.min(self.max);
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
    use super::{jitter, DiscoveryBackoff, Loops};
    use std::time::Duration;

    #[test]
    fn discovery_backoff_doubles_caps_and_resets() {
        let mut b = DiscoveryBackoff::new(Duration::from_secs(15 * 60));
        let delays: Vec<u64> = (0..10).map(|_| b.next().as_secs()).collect();
        assert_eq!(delays, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        b.reset();
        assert_eq!(b.next(), Duration::from_secs(2));
        let mut short = DiscoveryBackoff::new(Duration::from_secs(1));
        assert_eq!(
            short.next(),
            Duration::from_secs(1),
            "never longer than the interval"
        );
    }

    #[tokio::test]
    async fn loops_report_panics_but_not_aborts_and_stop_when_dropped() {
        let mut loops = Loops::default();
        loops.spawn("panics".into(), async { panic!("boom") });
        loops.spawn("aborted".into(), std::future::pending());
        let (stopped_tx, stopped_rx) = tokio::sync::oneshot::channel::<()>();
        loops.spawn("runs".into(), async move {
            let _tx = stopped_tx; // dropped when the task is aborted
            std::future::pending::<()>().await;
        });
        loops.abort("aborted");
        let (key, why) = loops.join_next().await.unwrap();
        assert_eq!(key, "panics");
        assert!(why.contains("boom"), "{why}");
        assert!(!loops.contains("panics") && !loops.contains("aborted"));
        assert!(loops.contains("runs"));
        // No other loop ended on its own: join_next stays pending.
        let pending = tokio::time::timeout(Duration::from_millis(50), loops.join_next()).await;
        assert!(pending.is_err(), "an aborted loop is not reported");
        drop(loops);
        assert!(stopped_rx.await.is_err(), "dropping the loops stops them");
    }

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
