//! Command-line flags, Prometheus style (`--web.listen-address`), each with an
//! `IAM_MFA_EXPORTER_…` environment variable.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::accounts::{Selection, Shard};
use crate::arn::{is_account_id, role_account};

/// The default port: 9100-9999 is fully allocated on the Prometheus default port allocations
/// page, so we take the first port after the newest allocation we could see (docs/README).
pub const DEFAULT_PORT: u16 = 10027;

const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (revision ",
    env!("IAM_MFA_EXPORTER_REVISION"),
    ")"
);

/// Prometheus exporter for AWS IAM MFA compliance, from the IAM credential report.
#[derive(Debug, Clone, Parser)]
#[command(name = "iam-mfa-exporter", version = VERSION, about)]
pub struct Config {
    /// Address to listen on for HTTP requests (":PORT" listens on every IPv4 interface).
    #[arg(
        long = "web.listen-address",
        env = "IAM_MFA_EXPORTER_WEB_LISTEN_ADDRESS",
        default_value = ":10027"
    )]
    pub listen_address: String,

    /// Path under which to expose metrics.
    #[arg(long = "web.telemetry-path", env = "IAM_MFA_EXPORTER_WEB_TELEMETRY_PATH", default_value = "/metrics", value_parser = parse_path)]
    pub telemetry_path: String,

    /// TLS and basic auth: a web configuration file in the Prometheus exporter-toolkit format
    /// (tls_server_config, basic_auth_users, http_server_config.headers). Re-read on change.
    #[arg(long = "web.config.file", env = "IAM_MFA_EXPORTER_WEB_CONFIG_FILE")]
    pub web_config_file: Option<PathBuf>,

    /// Most HTTP requests served at once; more get 503 at once (0: no limit).
    #[arg(
        long = "web.max-requests",
        env = "IAM_MFA_EXPORTER_WEB_MAX_REQUESTS",
        default_value_t = 40
    )]
    pub max_requests: usize,

    /// Read the credential report from this file (raw CSV or the JSON of `aws iam
    /// get-credential-report`) instead of AWS. Re-read at every refresh. Repeatable: one file
    /// per account (never split on commas: a path may hold one).
    #[arg(long = "report.file", env = "IAM_MFA_EXPORTER_REPORT_FILE")]
    pub report_files: Vec<PathBuf>,

    /// AWS region for the IAM client (default: the SDK's chain, then us-east-1; IAM is global).
    #[arg(long = "aws.region", env = "IAM_MFA_EXPORTER_AWS_REGION")]
    pub aws_region: Option<String>,

    /// Assume this IAM role and refresh its account. Repeatable (role names may hold commas).
    #[arg(long = "aws.role-arn", env = "IAM_MFA_EXPORTER_AWS_ROLE_ARN", value_parser = parse_role_arn)]
    pub role_arns: Vec<String>,

    /// External ID to pass when assuming roles.
    #[arg(long = "aws.external-id", env = "IAM_MFA_EXPORTER_AWS_EXTERNAL_ID")]
    pub external_id: Option<String>,

    /// Session name of assumed-role sessions (shows in CloudTrail).
    #[arg(
        long = "aws.session-name",
        env = "IAM_MFA_EXPORTER_AWS_SESSION_NAME",
        default_value = "iam-mfa-exporter"
    )]
    pub session_name: String,

    /// Discover the ACTIVE accounts of the AWS Organization (ListAccounts) every refresh cycle
    /// and assume --aws.assume-role-name in each.
    #[arg(
        long = "aws.organization",
        env = "IAM_MFA_EXPORTER_AWS_ORGANIZATION",
        requires = "assume_role_name"
    )]
    pub organization: bool,

    /// Role to assume for ListAccounts (e.g. in the management account, for a delegated setup).
    #[arg(long = "aws.organization-role-arn", env = "IAM_MFA_EXPORTER_AWS_ORGANIZATION_ROLE_ARN", value_parser = parse_role_arn)]
    pub organization_role_arn: Option<String>,

    /// Name of the role to assume in each discovered account.
    #[arg(
        long = "aws.assume-role-name",
        env = "IAM_MFA_EXPORTER_AWS_ASSUME_ROLE_NAME"
    )]
    pub assume_role_name: Option<String>,

    /// Only these account ids (comma-separated or repeated).
    #[arg(long = "aws.include-accounts", env = "IAM_MFA_EXPORTER_AWS_INCLUDE_ACCOUNTS", value_delimiter = ',', value_parser = parse_account_id)]
    pub include_accounts: Vec<String>,

    /// Never these account ids.
    #[arg(long = "aws.exclude-accounts", env = "IAM_MFA_EXPORTER_AWS_EXCLUDE_ACCOUNTS", value_delimiter = ',', value_parser = parse_account_id)]
    pub exclude_accounts: Vec<String>,

    /// With --aws.role-arn or --aws.organization: also refresh the exporter's own account, with
    /// its own credentials.
    #[arg(long = "aws.include-self", env = "IAM_MFA_EXPORTER_AWS_INCLUDE_SELF")]
    pub include_self: bool,

    /// Most accounts refreshed at the same time.
    #[arg(long = "aws.max-concurrency", env = "IAM_MFA_EXPORTER_AWS_MAX_CONCURRENCY", default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..))]
    pub max_concurrency: u16,

    /// Name an account: ID=NAME, repeatable, one account per flag (names may hold commas); wins
    /// over the Organizations name.
    #[arg(long = "aws.account-name", env = "IAM_MFA_EXPORTER_AWS_ACCOUNT_NAME", value_parser = parse_account_name)]
    pub account_names: Vec<(String, String)>,

    /// Refresh only shard I of N (I/N, from 0): accounts by a stable hash of their id, for
    /// splitting a large Organization across replicas.
    #[arg(long = "aws.shard", env = "IAM_MFA_EXPORTER_AWS_SHARD", value_parser = Shard::parse)]
    pub shard: Option<Shard>,

    /// How often to refresh the report in the background (AWS builds a new one at most every 4h).
    #[arg(long = "refresh.interval", env = "IAM_MFA_EXPORTER_REFRESH_INTERVAL", default_value = "15m", value_parser = parse_duration)]
    pub refresh_interval: Duration,

    /// Deadline for one whole refresh (generate, poll, download, parse).
    #[arg(long = "refresh.timeout", env = "IAM_MFA_EXPORTER_REFRESH_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub refresh_timeout: Duration,

    /// Most console users without MFA given per-user series; the rest are counted in
    /// aws_iam_user_series_dropped.
    #[arg(
        long = "metrics.max-user-series",
        env = "IAM_MFA_EXPORTER_METRICS_MAX_USER_SERIES",
        default_value_t = 1000
    )]
    pub max_user_series: usize,

    /// Refresh once, print the metrics (Prometheus text format) to stdout and exit: 0 on
    /// success, 1 on failure. For cron and node_exporter's textfile collector.
    #[arg(long = "once", env = "IAM_MFA_EXPORTER_ONCE")]
    pub once: bool,

    /// Only log messages with the given severity or above.
    #[arg(long = "log.level", env = "IAM_MFA_EXPORTER_LOG_LEVEL", default_value = "info", value_parser = ["error", "warn", "info", "debug", "trace"])]
    pub log_level: String,

    /// Output format of log messages.
    #[arg(long = "log.format", env = "IAM_MFA_EXPORTER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Logfmt)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Logfmt,
    Json,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| e.to_string())?;
    if d.is_zero() {
        return Err("must be greater than zero".into());
    }
    Ok(d)
}

impl Config {
    /// The accounts part of the flags.
    pub fn selection(&self) -> Selection {
        Selection {
            report_files: self.report_files.clone(),
            role_arns: self.role_arns.clone(),
            external_id: self.external_id.clone(),
            session_name: self.session_name.clone(),
            organization: self.organization,
            organization_role_arn: self.organization_role_arn.clone(),
            assume_role_name: self.assume_role_name.clone(),
            include_accounts: self.include_accounts.clone(),
            exclude_accounts: self.exclude_accounts.clone(),
            include_self: self.include_self,
            account_names: self.account_names.iter().cloned().collect(),
            shard: self.shard,
        }
    }
}

fn parse_role_arn(s: &str) -> Result<String, String> {
    role_account(s)
        .map(|_| s.to_owned())
        .ok_or_else(|| "expected an IAM role ARN: arn:aws:iam::123456789012:role/NAME".into())
}

fn parse_account_id(s: &str) -> Result<String, String> {
    if is_account_id(s) {
        Ok(s.to_owned())
    } else {
        Err("expected a 12-digit AWS account id".into())
    }
}

fn parse_account_name(s: &str) -> Result<(String, String), String> {
    let (id, name) = s.split_once('=').ok_or("expected ID=NAME")?;
    Ok((parse_account_id(id)?, name.to_owned()))
}

fn parse_path(s: &str) -> Result<String, String> {
    if !s.starts_with('/') || s.len() < 2 || s.starts_with("/-/") {
        return Err("must start with '/' and be neither '/' nor under '/-/'".into());
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Config::try_parse_from(["iam-mfa-exporter"]).unwrap();
        assert_eq!(c.listen_address, format!(":{DEFAULT_PORT}"));
        assert_eq!(c.telemetry_path, "/metrics");
        assert_eq!(c.refresh_interval, Duration::from_secs(15 * 60));
        assert_eq!(c.max_user_series, 1000);
        assert_eq!(c.log_format, LogFormat::Logfmt);
        assert!(!c.once);
    }

    #[test]
    fn flags() {
        let c = Config::try_parse_from([
            "x",
            "--refresh.interval=90s",
            "--report.file=/tmp/r.csv",
            "--web.telemetry-path=/m",
            "--log.format=json",
            "--once",
        ])
        .unwrap();
        assert_eq!(c.refresh_interval, Duration::from_secs(90));
        assert_eq!(c.report_files, [PathBuf::from("/tmp/r.csv")]);
        assert_eq!(c.telemetry_path, "/m");
        assert_eq!(c.log_format, LogFormat::Json);
        assert!(c.once);
    }

    #[test]
    fn account_flags() {
        let c = Config::try_parse_from([
            "x",
            "--aws.role-arn=arn:aws:iam::111111111111:role/a",
            "--aws.role-arn=arn:aws:iam::222222222222:role/b,c",
            "--aws.organization",
            "--aws.assume-role-name=Audit",
            "--aws.exclude-accounts=333333333333",
            "--aws.account-name=111111111111=prod",
            "--aws.shard=1/4",
        ])
        .unwrap();
        let s = c.selection();
        assert_eq!(
            s.role_arns,
            [
                "arn:aws:iam::111111111111:role/a",
                "arn:aws:iam::222222222222:role/b,c"
            ]
        );
        assert_eq!(s.assume_role_name.as_deref(), Some("Audit"));
        assert_eq!(
            s.account_names.get("111111111111").map(String::as_str),
            Some("prod")
        );
        assert_eq!(s.shard, Some(Shard { index: 1, count: 4 }));
        assert_eq!(c.max_concurrency, 8);
    }

    #[test]
    fn values_with_commas_stay_whole() {
        let c = Config::try_parse_from([
            "x",
            "--aws.account-name=111111111111=Prod, EU",
            "--aws.account-name=222222222222=dev",
            "--report.file=/reports/a,b.csv",
            "--report.file=/reports/c.csv",
        ])
        .unwrap();
        let s = c.selection();
        assert_eq!(s.account_names["111111111111"], "Prod, EU");
        assert_eq!(s.account_names["222222222222"], "dev");
        assert_eq!(
            s.report_files,
            [
                PathBuf::from("/reports/a,b.csv"),
                PathBuf::from("/reports/c.csv")
            ]
        );
    }

    #[test]
    fn bad_values_are_rejected() {
        for bad in [
            ["x", "--refresh.interval=0s"],
            ["x", "--refresh.interval=soon"],
            ["x", "--web.telemetry-path=metrics"],
            ["x", "--web.telemetry-path=/-/ready"],
            ["x", "--log.level=loud"],
            ["x", "--aws.role-arn=arn:aws:iam::1:role/x"],
            ["x", "--aws.organization"],
            ["x", "--aws.max-concurrency=0"],
            ["x", "--aws.shard=2/2"],
            ["x", "--aws.account-name=123"],
            ["x", "--aws.include-accounts=12345678901x"],
        ] {
            assert!(Config::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }
}
