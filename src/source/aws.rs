//! AWS mode: the IAM calls of one refresh — GenerateCredentialReport until COMPLETE,
//! GetCredentialReport, GetAccountSummary and ListVirtualMFADevices — with the SDK's timeouts and
//! retries ([`crate::aws`]) and our own capped backoff on top. Yields an unparsed
//! [`Fetched`]; parsing is [`crate::report`]'s.

use std::time::Duration;

use tokio::time::Instant;

use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_iam::operation::get_credential_report::GetCredentialReportError;
use aws_sdk_iam::types::{AssignmentStatusType, ReportStateType, SummaryKeyType};
use aws_sdk_iam::Client;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::task::JoinSet;

use crate::arn::root_account_of_arn;
use crate::aws::aws_error;
use crate::error::{Error, Reason};
use crate::mfa::{
    self, Budget, CheckResult, Checked, DeviceKind, Live, LiveFacts, Look, ReportConsole,
};
use crate::report::{AccountData, ConsoleUser, UnixSeconds};
use crate::report::{AccountSummary, Fetched, ReportError, MAX_REPORT_BYTES};

/// Polling of a report that is being generated: capped exponential backoff, bounded attempts.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub attempts: u32,
}

impl Default for Backoff {
    /// 1 s, 2 s, 4 s, 8 s, then 16 s: about two minutes over 10 attempts.
    fn default() -> Self {
        Self {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(16),
            attempts: 10,
        }
    }
}

impl Backoff {
    fn delay(&self, attempt: u32) -> Duration {
        self.initial
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max)
    }
}

/// One AWS account reached through aws-config's default credential chain.
#[derive(Debug, Clone)]
pub struct AwsSource {
    client: Client,
    backoff: Backoff,
    live: Arc<tokio::sync::Mutex<LiveState>>,
}

impl AwsSource {
    /// A source over an IAM client (credentials, endpoint and timeouts are the client's).
    pub fn new(client: Client) -> Self {
        Self {
            client,
            backoff: Backoff::default(),
            live: Arc::default(),
        }
    }

    /// Downloads the report and the account summary, concurrently.
    ///
    /// `deadline` is the refresh's: polling stops when the next wait would pass it, so the error
    /// names the real cause (throttled, not ready) rather than a bare timeout.
    pub async fn fetch(&self, deadline: Instant) -> Result<Fetched, Error> {
        let ((csv, generated_at), summary) =
            tokio::try_join!(self.report(deadline), self.summary())?;
        Ok(Fetched {
            csv,
            generated_at,
            summary: Some(summary),
        })
    }

    /// GenerateCredentialReport until COMPLETE, then GetCredentialReport; a report that is not
    /// ready, missing or expired sends us back to polling, within `backoff.attempts` attempts.
    async fn report(&self, deadline: Instant) -> Result<(Vec<u8>, Option<i64>), Error> {
        let mut attempt = 0;
        let mut wait = |why: &str| {
            let delay = self.backoff.delay(attempt);
            attempt += 1;
            if Instant::now() + delay >= deadline {
                return None;
            }
            tracing::debug!(why, attempt, delay = %humantime::format_duration(delay), "credential report not ready; polling");
            (attempt <= self.backoff.attempts).then_some(delay)
        };
        let not_ready = || Error::ReportNotReady {
            attempts: self.backoff.attempts,
        };
        loop {
            match self.client.generate_credential_report().send().await {
                Ok(out) if out.state() == Some(&ReportStateType::Complete) => {}
                Ok(out) => {
                    let state = out.state().map_or("none", |s| s.as_str()).to_owned();
                    tokio::time::sleep(wait(&state).ok_or_else(not_ready)?).await;
                    continue;
                }
                Err(e) => {
                    let error = aws_error("GenerateCredentialReport", e);
                    if error.reason() != Reason::Throttled {
                        return Err(error);
                    }
                    // LimitExceeded or Throttling: back off, and give up with this error.
                    match wait("throttled") {
                        Some(delay) => tokio::time::sleep(delay).await,
                        None => return Err(error),
                    }
                    continue;
                }
            }
            match self.client.get_credential_report().send().await {
                Ok(out) => {
                    let content = out.content().map(|b| b.as_ref()).unwrap_or_default();
                    if content.len() > MAX_REPORT_BYTES {
                        return Err(ReportError::TooLarge {
                            size: content.len(),
                            limit: MAX_REPORT_BYTES,
                        }
                        .into());
                    }
                    return Ok((content.to_vec(), out.generated_time().map(|t| t.secs())));
                }
                Err(SdkError::ServiceError(e))
                    if matches!(
                        e.err(),
                        GetCredentialReportError::CredentialReportNotReadyException(_)
                            | GetCredentialReportError::CredentialReportNotPresentException(_)
                            | GetCredentialReportError::CredentialReportExpiredException(_)
                    ) =>
                {
                    let code = e.err().code().unwrap_or("not ready").to_owned();
                    tokio::time::sleep(wait(&code).ok_or_else(not_ready)?).await;
                }
                Err(e) => return Err(aws_error("GetCredentialReport", e)),
            }
        }
    }

    /// GetAccountSummary and ListVirtualMFADevices (all pages, assigned devices only).
    async fn summary(&self) -> Result<AccountSummary, Error> {
        let out = self
            .client
            .get_account_summary()
            .send()
            .await
            .map_err(|e| aws_error("GetAccountSummary", e))?;
        let get = |key: SummaryKeyType| out.summary_map().and_then(|m| m.get(&key)).map(|v| *v > 0);
        let value = |key: SummaryKeyType| get(key).unwrap_or(false);
        let mut virtual_mfa_root_accounts = Vec::new();
        let mut virtual_mfa_users: BTreeMap<String, u32> = BTreeMap::new();
        let mut pages = self
            .client
            .list_virtual_mfa_devices()
            .assignment_status(AssignmentStatusType::Assigned)
            .into_paginator()
            .items()
            .send();
        while let Some(device) = pages.next().await {
            let device = device.map_err(|e| aws_error("ListVirtualMFADevices", e))?;
            let Some(user) = device.user() else { continue };
            match root_account_of_arn(user.arn()) {
                Some(account) => virtual_mfa_root_accounts.push(account.to_owned()),
                None => {
                    *virtual_mfa_users
                        .entry(user.user_name().to_owned())
                        .or_default() += 1
                }
            }
        }
        Ok(AccountSummary {
            root_mfa_enabled: value(SummaryKeyType::AccountMfaEnabled),
            root_access_keys_present: value(SummaryKeyType::AccountAccessKeysPresent),
            root_password_present: get(SummaryKeyType::AccountPasswordPresent),
            virtual_mfa_root_accounts,
            virtual_mfa_users,
        })
    }

    /// Live MFA for one refresh: ListMFADevices for the users [`mfa::plan`] picks (at most
    /// [`LIVE_CONCURRENCY`] at once, none started past `deadline`), the looks kept for the next
    /// refreshes, and the verdict now. Never fails: a failed look leaves that user with the
    /// report's verdict (or the last good look) and is counted, and one line per refresh says
    /// how many failed and why.
    pub async fn live_mfa(
        &self,
        data: &AccountData,
        summary: &AccountSummary,
        budget: Budget,
        now: UnixSeconds,
        deadline: Instant,
    ) -> Live {
        let (account_id, report) = (&data.report.account_id, &data.report);
        let report_generated_at = data.generated_at;
        let without: Vec<String> = report
            .console_users_without_mfa
            .iter()
            .map(|u| u.name.clone())
            .collect();
        let with: Vec<String> = report
            .console_users_with_mfa
            .iter()
            .map(|u| u.name.clone())
            .collect();
        let console = ReportConsole {
            without_mfa: &without,
            with_mfa: &with,
        };
        let mut state = self.live.lock().await;
        let calls = mfa::plan(
            console,
            &summary.virtual_mfa_users,
            &state.virtual_before,
            &state.looks,
            now,
            budget,
        );
        let mut failed = [0u64; CheckResult::ALL.len()];
        let mut runs: JoinSet<(String, Result<Look, CheckResult>)> = JoinSet::new();
        let mut pending = calls.into_iter();
        let mut denied = false;
        loop {
            // After an AccessDenied the policy lacks iam:ListMFADevices: no use asking again.
            while runs.len() < LIVE_CONCURRENCY && Instant::now() < deadline && !denied {
                let Some(user) = pending.next() else { break };
                let client = self.client.clone();
                runs.spawn(async move {
                    let look = tokio::time::timeout_at(deadline, list_mfa_devices(&client, &user))
                        .await
                        .unwrap_or(Err(CheckResult::Other));
                    (user, look)
                });
            }
            let Some(done) = runs.join_next().await else {
                break;
            };
            let Ok((user, look)) = done else { continue };
            match look {
                Ok(look) => {
                    state.checks[CheckResult::Ok.index()] += 1;
                    state.looks.insert(user, Checked { look, at: now });
                }
                Err(result) => {
                    state.checks[result.index()] += 1;
                    failed[result.index()] += 1;
                    denied |= result == CheckResult::AccessDenied;
                }
            }
        }
        let skipped = pending.len();
        // Forget users who left the report; remember who had a virtual device.
        let in_report: BTreeSet<&str> = without.iter().chain(&with).map(String::as_str).collect();
        state.looks.retain(|u, _| in_report.contains(u.as_str()));
        state.virtual_before = summary.virtual_mfa_users.keys().cloned().collect();
        let facts = LiveFacts {
            virtual_devices: summary.virtual_mfa_users.clone(),
            looks: state.looks.clone(),
            listed_at: now,
            report_generated_at,
        };
        let failures: u64 = failed.iter().sum();
        if failures > 0 || skipped > 0 {
            tracing::warn!(
                %account_id,
                failed = failures,
                throttled = failed[CheckResult::Throttled.index()],
                access_denied = failed[CheckResult::AccessDenied.index()],
                other = failed[CheckResult::Other.index()],
                not_started = skipped,
                "live MFA checks (ListMFADevices) incomplete; those users keep the report's verdict"
            );
        }
        let verdict = mfa::verdict(console, &facts);
        let mut offenders: Vec<ConsoleUser> = report
            .console_users_without_mfa
            .iter()
            .chain(&report.console_users_with_mfa)
            .filter(|u| verdict.without_mfa.contains(&u.name))
            .cloned()
            .collect();
        offenders.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        Live {
            verdict,
            offenders,
            checks: state.checks,
        }
    }
}

/// Most ListMFADevices calls of one account in flight at once.
const LIVE_CONCURRENCY: usize = 4;

/// Live MFA state of one account, kept between refreshes.
#[derive(Debug, Default)]
struct LiveState {
    looks: BTreeMap<String, Checked>,
    /// Users with an assigned virtual device at the last refresh.
    virtual_before: BTreeSet<String>,
    checks: [u64; CheckResult::ALL.len()],
}

/// One user's devices now: their kinds, or `Deleted` for NoSuchEntity.
async fn list_mfa_devices(client: &Client, user: &str) -> Result<Look, CheckResult> {
    match client.list_mfa_devices().user_name(user).send().await {
        Ok(out) => Ok(Look::Devices(
            out.mfa_devices()
                .iter()
                .map(|d| DeviceKind::of_serial(d.serial_number()))
                .collect(),
        )),
        Err(SdkError::ServiceError(e)) if e.err().is_no_such_entity_exception() => {
            Ok(Look::Deleted)
        }
        Err(e) => Err(match aws_error("ListMFADevices", e).reason() {
            Reason::Throttled => CheckResult::Throttled,
            Reason::AccessDenied => CheckResult::AccessDenied,
            _ => CheckResult::Other,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Backoff::default();
        let delays: Vec<u64> = (0..7).map(|a| b.delay(a).as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 16, 16]);
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(16));
    }
}
