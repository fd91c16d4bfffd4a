//! The one error type of a refresh, and the bounded `reason` label it maps to.

use crate::report::ReportError;

/// Why a refresh failed: the values of `aws_iam_refresh_errors_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    AccessDenied,
    Credentials,
    Throttled,
    ReportNotReady,
    ReportInvalid,
    Network,
    Timeout,
    Io,
    Other,
}

impl Reason {
    /// Every reason, in the order the counter family lists them.
    pub const ALL: [Reason; 9] = [
        Reason::AccessDenied,
        Reason::Credentials,
        Reason::Throttled,
        Reason::ReportNotReady,
        Reason::ReportInvalid,
        Reason::Network,
        Reason::Timeout,
        Reason::Io,
        Reason::Other,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::AccessDenied => "access_denied",
            Reason::Credentials => "credentials",
            Reason::Throttled => "throttled",
            Reason::ReportNotReady => "report_not_ready",
            Reason::ReportInvalid => "report_invalid",
            Reason::Network => "network",
            Reason::Timeout => "timeout",
            Reason::Io => "io",
            Reason::Other => "other",
        }
    }

    /// Position in [`Reason::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A failed refresh.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid credential report: {0}")]
    Report(#[from] ReportError),
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A call to AWS failed; `message` carries the SDK's whole cause chain.
    #[error("{operation}: {message}")]
    Aws {
        operation: &'static str,
        reason: Reason,
        message: String,
    },
    #[error("credential report still not ready; gave up polling (at most {attempts} polls, within the refresh deadline)")]
    ReportNotReady { attempts: u32 },
    #[error("refresh took longer than its {0} deadline")]
    Timeout(humantime::Duration),
    #[error("account {account_id} is already served by target {other}")]
    DuplicateAccount { account_id: String, other: String },
    #[error("configuration: {0}")]
    Config(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The bounded label value for `aws_iam_refresh_errors_total`.
    pub fn reason(&self) -> Reason {
        match self {
            Error::Report(_) => Reason::ReportInvalid,
            Error::Io { .. } => Reason::Io,
            Error::Aws { reason, .. } => *reason,
            Error::ReportNotReady { .. } => Reason::ReportNotReady,
            Error::Timeout(_) => Reason::Timeout,
            Error::DuplicateAccount { .. } | Error::Config(_) | Error::Internal(_) => Reason::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Reason;

    #[test]
    fn reason_index_matches_all() {
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{}", r.as_str());
        }
    }
}
