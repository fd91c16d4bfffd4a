//! The IAM credential report, pure: no I/O, no SDK types. A [`crate::source`] yields a
//! [`Fetched`] (raw CSV plus what AWS says about the account); [`parse`] turns the CSV into an
//! [`AccountReport`]; [`Fetched::into_account_data`] joins the two into the immutable
//! [`AccountData`] the collector reads. [`decode`] turns a report file's bytes into a `Fetched`.

pub mod decode;
pub mod hygiene;
pub mod model;
pub mod parse;
pub mod timestamp;

use std::collections::BTreeMap;

use crate::mfa::Live;

pub use decode::decode_file;
pub use model::{AccountReport, ConsoleUser, RootRow, UnixSeconds};
pub use parse::{parse, parse_keeping, Keep, ReportError, MAX_REPORT_BYTES};

/// What AWS says about the account besides the report (AWS mode only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSummary {
    /// GetAccountSummary `AccountMFAEnabled`.
    pub root_mfa_enabled: bool,
    /// GetAccountSummary `AccountAccessKeysPresent`.
    pub root_access_keys_present: bool,
    /// GetAccountSummary `AccountPasswordPresent`; `None` when the answer lacks the key (older
    /// endpoints, moto).
    pub root_password_present: Option<bool>,
    /// Account ids whose root user (`arn:PARTITION:iam::ACCOUNT:root`) has an assigned virtual
    /// MFA device, from ListVirtualMFADevices.
    pub virtual_mfa_root_accounts: Vec<String>,
    /// IAM user name → virtual MFA devices assigned to the user (root excluded), from the same
    /// ListVirtualMFADevices answer.
    pub virtual_mfa_users: BTreeMap<String, u32>,
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
        self.into_account_data_keeping(Keep {
            hygiene: None,
            console_users_with_mfa: true,
        })
    }

    /// [`Self::into_account_data`], keeping what `keep` asks for.
    pub fn into_account_data_keeping(self, keep: Keep) -> Result<AccountData, ReportError> {
        let report = parse_keeping(&self.csv, keep)?;
        Ok(AccountData {
            live: None,
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
    /// Live MFA checks (AWS mode, unless turned off): the report corrected to now.
    pub live: Option<Live>,
}

impl AccountData {
    /// Console users without MFA now, in name order: the report's, corrected by live checks.
    pub fn console_users_without_mfa(&self) -> &[ConsoleUser] {
        match &self.live {
            None => &self.report.console_users_without_mfa,
            Some(live) => &live.offenders,
        }
    }

    /// Console users with MFA now.
    pub fn console_users_mfa_enabled(&self) -> u64 {
        match &self.live {
            None => self.report.console_users_mfa_enabled,
            Some(live) => live.verdict.strength.len() as u64,
        }
    }

    /// Console users now: with MFA plus without (users deleted since the report left out).
    pub fn console_users(&self) -> u64 {
        match &self.live {
            None => self.report.console_users,
            Some(live) => (live.verdict.strength.len() + live.verdict.without_mfa.len()) as u64,
        }
    }

    /// Root has MFA and no virtual device is assigned to it: hardware or FIDO (IAM.6). AWS
    /// mode only.
    pub fn root_hardware_mfa(&self) -> Option<bool> {
        let virtual_mfa = self.root_virtual_mfa?;
        let enabled = self.summary.as_ref()?.root_mfa_enabled;
        Some(enabled && !virtual_mfa)
    }

    /// Root MFA: GetAccountSummary in AWS mode, else the report's root row.
    pub fn root_mfa_enabled(&self) -> Option<bool> {
        match (&self.summary, &self.report.root) {
            (Some(s), _) => Some(s.root_mfa_enabled),
            (None, Some(root)) => Some(root.mfa_active),
            (None, None) => None,
        }
    }

    /// Whether root has a console password. The report's root row wins when it says true or
    /// false: it is AWS's own statement, of the same moment as the rest of the report. Reports
    /// written before late 2024 say `not_supported` there; then AWS mode falls back to
    /// GetAccountSummary's `AccountPasswordPresent`, so an Organizations member whose root
    /// credentials were removed centrally is known to have none. File mode has no summary: the
    /// value stays unknown (absent series).
    pub fn root_password_enabled(&self) -> Option<bool> {
        let row = self.report.root.as_ref().and_then(|r| r.password_enabled);
        row.or_else(|| self.summary.as_ref().and_then(|s| s.root_password_present))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn data(row: Option<Option<bool>>, summary: Option<Option<bool>>) -> AccountData {
        AccountData {
            report: AccountReport {
                account_id: "123456789012".into(),
                users: 0,
                console_users: 0,
                console_users_mfa_enabled: 0,
                users_mfa_enabled: 0,
                console_users_without_mfa: vec![],
                console_users_with_mfa: vec![],
                root: row.map(|password_enabled| RootRow {
                    password_enabled,
                    mfa_active: false,
                    access_keys_active: None,
                    password_last_used: None,
                    access_keys_last_used: None,
                }),
                hygiene: None,
            },
            generated_at: None,
            summary: summary.map(|root_password_present| AccountSummary {
                root_mfa_enabled: false,
                root_access_keys_present: false,
                root_password_present,
                virtual_mfa_root_accounts: vec![],
                virtual_mfa_users: BTreeMap::new(),
            }),
            root_virtual_mfa: None,
            live: None,
        }
    }

    /// Root password: (root row, GetAccountSummary AccountPasswordPresent) → the verdict.
    /// Row: `Some(Some(b))` says b, `Some(None)` says not_supported, `None` is no root row.
    /// Summary: `Some(Some(b))` present with 1/0, `Some(None)` without the key, `None` file mode.
    #[test]
    fn root_password_decision_table() {
        let rows = [
            ("row true", Some(Some(true))),
            ("row false", Some(Some(false))),
            ("row not_supported", Some(None)),
            ("no root row", None),
        ];
        let summaries = [
            ("summary 1", Some(Some(true))),
            ("summary 0", Some(Some(false))),
            ("summary without key", Some(None)),
            ("file mode", None),
        ];
        let want = |row: Option<Option<bool>>, summary: Option<Option<bool>>| match row {
            Some(Some(said)) => Some(said),
            _ => summary.flatten(),
        };
        let mut seen = 0;
        for (row_name, row) in rows {
            for (summary_name, summary) in summaries {
                let got = data(row, summary).root_password_enabled();
                assert_eq!(got, want(row, summary), "{row_name} × {summary_name}");
                seen += 1;
            }
        }
        assert_eq!(seen, 16);
        // The cases the on-call engineer cares about, spelled out.
        assert_eq!(
            data(Some(None), Some(Some(false))).root_password_enabled(),
            Some(false),
            "not_supported row, AWS says no password: no page"
        );
        assert_eq!(
            data(Some(Some(true)), Some(Some(false))).root_password_enabled(),
            Some(true),
            "the row wins"
        );
        assert_eq!(
            data(Some(None), None).root_password_enabled(),
            None,
            "file mode stays unknown"
        );
        assert_eq!(
            data(Some(None), Some(None)).root_password_enabled(),
            None,
            "no key: unknown, never 0"
        );
    }
}
