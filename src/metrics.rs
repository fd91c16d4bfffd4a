//! The metric catalogue: every metric's name, type, labels and HELP, in exposition order. This
//! is the public API (docs/metrics.md is checked against [`METRICS`]); how values are computed
//! is [`crate::collector`]'s.
//!
//! HELP texts describe the metric only. That report metrics are cached between background
//! refreshes is said once, in the HELP of
//! `aws_iam_credential_report_generated_timestamp_seconds`, which also says how old they are.

/// One metric of the public API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDef {
    pub name: &'static str,
    pub kind: MetricKind,
    /// Every label, in order. Health series of a report file carry `target` in place of
    /// `account_id` until its account is known (docs/metrics.md).
    pub labels: &'static [&'static str],
    pub help: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Gauge,
    Counter,
}

impl MetricKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Gauge => "gauge",
            MetricKind::Counter => "counter",
        }
    }
}

const fn gauge(
    name: &'static str,
    labels: &'static [&'static str],
    help: &'static str,
) -> MetricDef {
    MetricDef {
        name,
        kind: MetricKind::Gauge,
        labels,
        help,
    }
}

pub const USERS: MetricDef = gauge(
    "aws_iam_users",
    &["account_id"],
    "IAM users in the credential report, root excluded.",
);
pub const CONSOLE_USERS: MetricDef = gauge(
    "aws_iam_console_users",
    &["account_id"],
    "IAM users with a console password.",
);
pub const CONSOLE_USERS_MFA_ENABLED: MetricDef = gauge(
    "aws_iam_console_users_mfa_enabled",
    &["account_id"],
    "Console users with MFA active.",
);
pub const CONSOLE_USERS_WITHOUT_MFA: MetricDef = gauge(
    "aws_iam_console_users_without_mfa",
    &["account_id"],
    "Console users without MFA now (non-compliant with CIS / Security Hub IAM.5): the credential report, corrected by live ListMFADevices checks in AWS mode.",
);
pub const USERS_MFA_ENABLED: MetricDef = gauge(
    "aws_iam_users_mfa_enabled",
    &["account_id"],
    "IAM users with MFA active, console or not.",
);
pub const MFA_LAG_CORRECTED: MetricDef = gauge(
    "aws_iam_console_users_mfa_lag_corrected",
    &["account_id", "direction"],
    "Console users whose live MFA state differs from the credential report, by direction: enabled (MFA since), removed (no device now), deleted (user gone). AWS mode with live checks.",
);
pub const MFA_STRENGTH: MetricDef = gauge(
    "aws_iam_console_users_mfa_strength",
    &["account_id", "strength"],
    "Console users with MFA now, by the weakest device they can sign in with: phishing_resistant (FIDO only), hardware, virtual, unknown (not looked at yet). Sums to aws_iam_console_users_mfa_enabled.",
);
pub const MFA_DEVICES: MetricDef = gauge(
    "aws_iam_mfa_devices",
    &["account_id", "kind"],
    "Assigned MFA devices of IAM users by kind: virtual (all, from ListVirtualMFADevices), hardware and fido (as far as users have been looked at).",
);
pub const CONSOLE_USER_WITHOUT_MFA: MetricDef = gauge(
    "aws_iam_console_user_without_mfa",
    &["account_id", "user"],
    "1 for each console user without MFA now: the report corrected by live checks in AWS mode (capped by --metrics.max-user-series).",
);
pub const USER_CREATED: MetricDef = gauge(
    "aws_iam_user_created_timestamp_seconds",
    &["account_id", "user"],
    "Creation time of each console user without MFA.",
);
pub const USER_PASSWORD_LAST_USED: MetricDef = gauge(
    "aws_iam_user_password_last_used_timestamp_seconds",
    &["account_id", "user"],
    "Last console sign-in of each console user without MFA, when the report knows it.",
);
pub const BELOW_REQUIRED_STRENGTH: MetricDef = gauge(
    "aws_iam_console_user_mfa_below_required_strength",
    &["account_id", "user", "strength"],
    "1 for each console user whose MFA is weaker than --mfa.required-strength, labelled with the strength found (capped by --metrics.max-user-series).",
);
pub const HYGIENE_PASSWORDS_UNUSED: MetricDef = gauge(
    "aws_iam_console_users_password_unused",
    &["account_id"],
    "Console users whose password was not used within --hygiene.unused-after (never used: counted from when it was set, else from the user's creation; users younger than the threshold never count). CIS 1.12, Security Hub IAM.22, AWS Config iam-user-unused-credentials-check.",
);
pub const HYGIENE_KEYS_UNUSED: MetricDef = gauge(
    "aws_iam_access_keys_unused",
    &["account_id"],
    "Active access keys not used within --hygiene.unused-after (never used: counted from their creation). CIS 1.12, Security Hub IAM.22, AWS Config iam-user-unused-credentials-check.",
);
pub const HYGIENE_ROTATION_OVERDUE: MetricDef = gauge(
    "aws_iam_access_keys_rotation_overdue",
    &["account_id"],
    "Active access keys last rotated longer ago than --hygiene.rotate-after. CIS 1.14, Security Hub IAM.3, AWS Config access-keys-rotated.",
);
pub const HYGIENE_TWO_ACTIVE_KEYS: MetricDef = gauge(
    "aws_iam_users_with_two_active_access_keys",
    &["account_id"],
    "IAM users with both access keys active. CIS 1.13.",
);
pub const USER_PASSWORD_UNUSED_SINCE: MetricDef = gauge(
    "aws_iam_user_password_unused_since_timestamp_seconds",
    &["account_id", "user"],
    "For each console user whose password is unused (see aws_iam_console_users_password_unused): its last use, else when it was set, else the user's creation (capped by --metrics.max-user-series).",
);
pub const ACCESS_KEY_UNUSED_SINCE: MetricDef = gauge(
    "aws_iam_access_key_unused_since_timestamp_seconds",
    &["account_id", "user", "key"],
    "For each unused active access key (see aws_iam_access_keys_unused): its last use, else its creation (capped by --metrics.max-user-series).",
);
pub const ACCESS_KEY_LAST_ROTATED: MetricDef = gauge(
    "aws_iam_access_key_last_rotated_timestamp_seconds",
    &["account_id", "user", "key"],
    "For each active access key overdue for rotation (see aws_iam_access_keys_rotation_overdue): when it was last rotated (capped by --metrics.max-user-series).",
);
pub const USER_TWO_ACTIVE_KEYS: MetricDef = gauge(
    "aws_iam_user_two_active_access_keys",
    &["account_id", "user"],
    "1 for each IAM user with both access keys active (capped by --metrics.max-user-series).",
);
pub const ROOT_ACCESS_KEY_LAST_USED: MetricDef = gauge(
    "aws_iam_root_access_key_last_used_timestamp_seconds",
    &["account_id"],
    "The latest use of the root user's access keys, when the report knows it. CIS 1.7.",
);
pub const HYGIENE_THRESHOLD: MetricDef = gauge(
    "aws_iam_hygiene_threshold_seconds",
    &["check"],
    "The credential-hygiene thresholds in force: unused (--hygiene.unused-after), rotation (--hygiene.rotate-after), root_used (--hygiene.root-used-within).",
);
pub const ROOT_MFA_ENABLED: MetricDef = gauge(
    "aws_iam_root_mfa_enabled",
    &["account_id"],
    "1 if the root user has MFA (GetAccountSummary in AWS mode, the root row in file mode).",
);
pub const ROOT_VIRTUAL_MFA: MetricDef = gauge(
    "aws_iam_root_virtual_mfa",
    &["account_id"],
    "1 if a virtual MFA device is assigned to the root user, 0 if not (AWS mode only).",
);
pub const ROOT_HARDWARE_MFA: MetricDef = gauge(
    "aws_iam_root_hardware_mfa",
    &["account_id"],
    "1 if the root user has MFA and no virtual device is assigned to it (a hardware or FIDO device, Security Hub IAM.6), else 0. AWS mode only.",
);
pub const ROOT_PASSWORD_ENABLED: MetricDef = gauge(
    "aws_iam_root_password_enabled",
    &["account_id"],
    "1 if the root user has a console password: the report's root row when it says true/false, else (AWS mode) GetAccountSummary AccountPasswordPresent; absent when neither tells.",
);
pub const ROOT_ACCESS_KEYS_ACTIVE: MetricDef = gauge(
    "aws_iam_root_access_keys_active",
    &["account_id"],
    "Active root access keys (0-2).",
);
pub const ROOT_PASSWORD_LAST_USED: MetricDef = gauge(
    "aws_iam_root_password_last_used_timestamp_seconds",
    &["account_id"],
    "Last console sign-in of the root user, when the report knows it.",
);
pub const REPORT_GENERATED: MetricDef = gauge(
    "aws_iam_credential_report_generated_timestamp_seconds",
    &["account_id"],
    "When AWS generated the credential report that the report metrics come from. The exporter caches: it refreshes in the background and a scrape never calls AWS (file mode: GeneratedTime, or the file's modification time for raw CSV).",
);
pub const REFRESH_SUCCESS: MetricDef = gauge(
    "aws_iam_refresh_success",
    &["account_id"],
    "1 if the last background refresh worked, 0 if it failed (the last good data is still served).",
);
pub const LAST_SUCCESSFUL_REFRESH: MetricDef = gauge(
    "aws_iam_last_successful_refresh_timestamp_seconds",
    &["account_id"],
    "When the last successful background refresh ended.",
);
pub const REFRESH_DURATION: MetricDef = gauge(
    "aws_iam_refresh_duration_seconds",
    &["account_id"],
    "How long the last background refresh took, successful or not.",
);
pub const REFRESH_ERRORS: MetricDef = MetricDef {
    name: "aws_iam_refresh_errors_total",
    kind: MetricKind::Counter,
    labels: &["account_id", "reason"],
    help: "Failed background refreshes, by reason.",
};
pub const USER_SERIES_DROPPED: MetricDef = gauge(
    "aws_iam_user_series_dropped",
    &["account_id"],
    "Console users without MFA whose per-user series were left out by --metrics.max-user-series.",
);
pub const MFA_DEVICE_CHECKS: MetricDef = MetricDef {
    name: "aws_iam_mfa_device_checks_total",
    kind: MetricKind::Counter,
    labels: &["account_id", "result"],
    help: "Live ListMFADevices calls, by result: ok, throttled, access_denied, other. A failed one leaves its user with the report's verdict.",
};
pub const MFA_DEVICES_OLDEST_CHECK: MetricDef = gauge(
    "aws_iam_mfa_devices_last_checked_oldest_timestamp_seconds",
    &["account_id"],
    "When the oldest device list behind a console user's MFA strength was fetched.",
);
pub const ACCOUNT_DISCOVERY_SUCCESS: MetricDef = gauge(
    "aws_iam_account_discovery_success",
    &[],
    "1 if the last account discovery (STS GetCallerIdentity, Organizations ListAccounts) worked, 0 if it failed (retried with capped backoff; the known accounts keep refreshing). AWS mode only.",
);
pub const ACCOUNT_DISCOVERY_LAST_SUCCESS: MetricDef = gauge(
    "aws_iam_account_discovery_last_success_timestamp_seconds",
    &[],
    "When the last successful account discovery ended.",
);
pub const ACCOUNT_DISCOVERY_ERRORS: MetricDef = MetricDef {
    name: "aws_iam_account_discovery_errors_total",
    kind: MetricKind::Counter,
    labels: &["reason"],
    help: "Failed account discoveries, by reason.",
};
pub const REFRESH_TASK_RESTARTS: MetricDef = MetricDef {
    name: "aws_iam_refresh_task_restarts_total",
    kind: MetricKind::Counter,
    labels: &[],
    help: "Per-account refresh loops that ended unexpectedly (a panic) and were restarted.",
};
pub const ACCOUNT_INFO: MetricDef = gauge(
    "aws_iam_account_info",
    &["account_id", "account_name"],
    "1 for every account the exporter knows, labelled with its name (AWS Organizations or --aws.account-name); join on account_id.",
);
pub const BUILD_INFO: MetricDef = gauge(
    "aws_iam_exporter_build_info",
    &["version", "revision"],
    "A metric with a constant 1 value labelled by the exporter's version and revision.",
);

/// Every metric the exporter can expose, in exposition order.
pub const METRICS: &[MetricDef] = &[
    USERS,
    CONSOLE_USERS,
    CONSOLE_USERS_MFA_ENABLED,
    CONSOLE_USERS_WITHOUT_MFA,
    USERS_MFA_ENABLED,
    MFA_LAG_CORRECTED,
    MFA_STRENGTH,
    MFA_DEVICES,
    MFA_DEVICE_CHECKS,
    MFA_DEVICES_OLDEST_CHECK,
    CONSOLE_USER_WITHOUT_MFA,
    USER_CREATED,
    USER_PASSWORD_LAST_USED,
    BELOW_REQUIRED_STRENGTH,
    HYGIENE_PASSWORDS_UNUSED,
    HYGIENE_KEYS_UNUSED,
    HYGIENE_ROTATION_OVERDUE,
    HYGIENE_TWO_ACTIVE_KEYS,
    ROOT_ACCESS_KEY_LAST_USED,
    USER_PASSWORD_UNUSED_SINCE,
    ACCESS_KEY_UNUSED_SINCE,
    ACCESS_KEY_LAST_ROTATED,
    USER_TWO_ACTIVE_KEYS,
    HYGIENE_THRESHOLD,
    ROOT_MFA_ENABLED,
    ROOT_VIRTUAL_MFA,
    ROOT_HARDWARE_MFA,
    ROOT_PASSWORD_ENABLED,
    ROOT_ACCESS_KEYS_ACTIVE,
    ROOT_PASSWORD_LAST_USED,
    REPORT_GENERATED,
    REFRESH_SUCCESS,
    LAST_SUCCESSFUL_REFRESH,
    REFRESH_DURATION,
    REFRESH_ERRORS,
    USER_SERIES_DROPPED,
    ACCOUNT_DISCOVERY_SUCCESS,
    ACCOUNT_DISCOVERY_LAST_SUCCESS,
    ACCOUNT_DISCOVERY_ERRORS,
    REFRESH_TASK_RESTARTS,
    ACCOUNT_INFO,
    BUILD_INFO,
];
