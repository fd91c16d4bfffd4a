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

use crate::arn::root_account_of_arn;
use crate::aws::aws_error;
use crate::error::{Error, Reason};
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
}

impl AwsSource {
    /// A source over an IAM client (credentials, endpoint and timeouts are the client's).
    pub fn new(client: Client) -> Self {
        Self {
            client,
            backoff: Backoff::default(),
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
        let mut pages = self
            .client
            .list_virtual_mfa_devices()
            .assignment_status(AssignmentStatusType::Assigned)
            .into_paginator()
            .items()
            .send();
        while let Some(device) = pages.next().await {
            let device = device.map_err(|e| aws_error("ListVirtualMFADevices", e))?;
            if let Some(account) = device.user().and_then(|u| root_account_of_arn(u.arn())) {
                virtual_mfa_root_accounts.push(account.to_owned());
            }
        }
        Ok(AccountSummary {
            root_mfa_enabled: value(SummaryKeyType::AccountMfaEnabled),
            root_access_keys_present: value(SummaryKeyType::AccountAccessKeysPresent),
            root_password_present: get(SummaryKeyType::AccountPasswordPresent),
            virtual_mfa_root_accounts,
        })
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
