//! What the exporter keeps from one credential report: counts, the non-compliant users and
//! the root account. Built once per refresh by [`super::parse`] and never mutated.

use super::hygiene::Hygiene;

/// Seconds since the Unix epoch (UTC). Credential-report timestamps have one-second resolution.
pub type UnixSeconds = i64;

/// The summary of one account's credential report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountReport {
    /// The 12-digit account id, taken from the ARNs in the report.
    pub account_id: String,
    /// IAM users in the report (the root row excluded).
    pub users: u64,
    /// Users with a console password.
    pub console_users: u64,
    /// Console users with MFA active.
    pub console_users_mfa_enabled: u64,
    /// Users with MFA active, console or not.
    pub users_mfa_enabled: u64,
    /// Console users without MFA, sorted by name (the order the per-user cap keeps).
    pub console_users_without_mfa: Vec<ConsoleUser>,
    /// Console users with MFA, sorted by name: the ones live checks look at in AWS mode.
    pub console_users_with_mfa: Vec<ConsoleUser>,
    /// The `<root_account>` row, when the report has one (AWS always writes it; moto does not).
    pub root: Option<RootRow>,
    /// Credential-hygiene findings, when the checks ran (`--collector.hygiene`).
    pub hygiene: Option<Hygiene>,
}

/// A console user (a user with a console password).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleUser {
    pub name: String,
    pub created: UnixSeconds,
    /// Last console sign-in; `None` when the report says `N/A` or `no_information`.
    pub password_last_used: Option<UnixSeconds>,
}

/// The root account as the `<root_account>` row describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootRow {
    /// `None` when the report says `not_supported` (e.g. centrally managed root in an Organization).
    pub password_enabled: Option<bool>,
    pub mfa_active: bool,
    /// Active root access keys (0-2); `None` when the report has no access-key columns.
    pub access_keys_active: Option<u8>,
    pub password_last_used: Option<UnixSeconds>,
    /// The latest last use of root's access keys, when known.
    pub access_keys_last_used: Option<UnixSeconds>,
}
