//! The IAM credential report: where it comes from (AWS or a file), how it is parsed, and what is
//! kept of it.
//!
//! Flow of one refresh: [`fetch`] or [`file`] yields a [`Fetched`] (raw CSV plus what AWS says
//! about the account), [`parse`] turns the CSV into an [`AccountReport`], and [`AccountData`]
//! joins the two into the immutable value the collector reads.

pub mod fetch;
pub mod file;
pub mod model;
pub mod parse;
pub mod timestamp;

pub use model::{AccountReport, NonCompliantUser, RootRow, UnixSeconds};
pub use parse::{parse, ReportError, MAX_REPORT_BYTES};

/// What AWS says about the account besides the report (AWS mode only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSummary {
    /// GetAccountSummary `AccountMFAEnabled`.
    pub root_mfa_enabled: bool,
    /// GetAccountSummary `AccountAccessKeysPresent`.
    pub root_access_keys_present: bool,
    /// Account ids whose root user (`arn:PARTITION:iam::ACCOUNT:root`) has an assigned virtual
    /// MFA device, from ListVirtualMFADevices.
    pub virtual_mfa_root_accounts: Vec<String>,
}

/// A downloaded or read report, not yet parsed.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub csv: Vec<u8>,
    /// GeneratedTime (AWS and CLI JSON) or the file's modification time (raw CSV).
    pub generated_at: Option<UnixSeconds>,
    pub summary: Option<AccountSummary>,
}

impl Fetched {
    /// Parses the CSV and joins it with the account summary.
    pub fn into_account_data(self) -> Result<AccountData, ReportError> {
        let report = parse(&self.csv)?;
        Ok(AccountData {
            root_virtual_mfa: self
                .summary
                .as_ref()
                .map(|s| s.virtual_mfa_root_accounts.contains(&report.account_id)),
            report,
            generated_at: self.generated_at,
            summary: self.summary,
        })
    }
}

/// Everything the metrics of one account come from: the last good refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountData {
    pub report: AccountReport,
    pub generated_at: Option<UnixSeconds>,
    pub summary: Option<AccountSummary>,
    /// Whether root's MFA is a virtual device; `None` in file mode (the report cannot tell).
    pub root_virtual_mfa: Option<bool>,
}

impl AccountData {
    /// Root MFA: GetAccountSummary in AWS mode, else the report's root row.
    pub fn root_mfa_enabled(&self) -> Option<bool> {
        match (&self.summary, &self.report.root) {
            (Some(s), _) => Some(s.root_mfa_enabled),
            (None, Some(root)) => Some(root.mfa_active),
            (None, None) => None,
        }
    }

    /// Active root access keys: the root row's count; without a root row, AWS mode falls back to
    /// GetAccountSummary's `AccountAccessKeysPresent` (0 or 1).
    pub fn root_access_keys_active(&self) -> Option<u8> {
        match (&self.report.root, &self.summary) {
            (Some(root), _) if root.access_keys_active.is_some() => root.access_keys_active,
            (_, Some(s)) => Some(u8::from(s.root_access_keys_present)),
            _ => None,
        }
    }
}
