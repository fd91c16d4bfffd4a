//! Command-line flags, Prometheus style (`--web.listen-address`), each with an
//! `IAM_MFA_EXPORTER_…` environment variable.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

use crate::accounts::{Selection, Shard};
use crate::arn::{is_account_id, role_account};
use crate::mfa::{Budget, Strength};
use crate::refresh::Checks;
use crate::report::hygiene::Thresholds;

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
    #[arg(
        long = "report.file",
        env = "IAM_MFA_EXPORTER_REPORT_FILE",
        value_delimiter = '\n'
    )]
    pub report_files: Vec<PathBuf>,

    /// AWS region for the IAM client (default: the SDK's chain, then us-east-1; IAM is global).
    #[arg(long = "aws.region", env = "IAM_MFA_EXPORTER_AWS_REGION")]
    pub aws_region: Option<String>,

    /// Assume this IAM role and refresh its account. Repeatable (role names may hold commas).
    #[arg(long = "aws.role-arn", env = "IAM_MFA_EXPORTER_AWS_ROLE_ARN", value_delimiter = '\n', value_parser = parse_role_arn)]
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
    #[arg(long = "aws.account-name", env = "IAM_MFA_EXPORTER_AWS_ACCOUNT_NAME", value_delimiter = '\n', value_parser = parse_account_name)]
    pub account_names: Vec<(String, String)>,

    /// Refresh only shard I of N (I/N, from 0): accounts by a stable hash of their id, for
    /// splitting a large Organization across replicas.
    #[arg(long = "aws.shard", env = "IAM_MFA_EXPORTER_AWS_SHARD", value_parser = Shard::parse)]
    pub shard: Option<Shard>,

    /// Live MFA checks in AWS mode (on by default): ListMFADevices corrects the credential
    /// report's up-to-4-hour-old verdicts and tells virtual, hardware and FIDO devices apart.
    /// `--no-aws.mfa-devices` turns them off (report-only verdicts).
    #[arg(
        long = "aws.mfa-devices",
        env = "IAM_MFA_EXPORTER_AWS_MFA_DEVICES",
        overrides_with = "no_mfa_devices"
    )]
    pub mfa_devices: bool,

    /// Turn live MFA checks off: verdicts from the credential report alone.
    #[arg(long = "no-aws.mfa-devices", overrides_with = "mfa_devices")]
    pub no_mfa_devices: bool,

    /// Re-check the devices of a console user with MFA when the last look is this old.
    #[arg(long = "aws.mfa-devices.max-age", env = "IAM_MFA_EXPORTER_AWS_MFA_DEVICES_MAX_AGE", default_value = "24h", value_parser = parse_duration)]
    pub mfa_devices_max_age: Duration,

    /// Most ListMFADevices calls per refresh and account for typing users with MFA (oldest
    /// look first); console users the report flags without MFA are checked besides, up to
    /// --metrics.max-user-series.
    #[arg(
        long = "aws.mfa-devices.calls-per-refresh",
        env = "IAM_MFA_EXPORTER_AWS_MFA_DEVICES_CALLS_PER_REFRESH",
        default_value_t = 100
    )]
    pub mfa_devices_calls_per_refresh: usize,

    /// Flag console users whose MFA is weaker than this (phishing_resistant, hardware or
    /// virtual) with aws_iam_console_user_mfa_below_required_strength (capped per user).
    #[arg(long = "mfa.required-strength", env = "IAM_MFA_EXPORTER_MFA_REQUIRED_STRENGTH", value_parser = Strength::parse_required)]
    pub required_strength: Option<Strength>,

    /// Credential-hygiene checks from the report (unused passwords and keys, key rotation, two
    /// active keys, root use), on by default; `--no-collector.hygiene` turns them off.
    #[arg(
        long = "collector.hygiene",
        env = "IAM_MFA_EXPORTER_COLLECTOR_HYGIENE",
        overrides_with = "no_hygiene"
    )]
    pub hygiene: bool,

    /// Turn the credential-hygiene checks off.
    #[arg(long = "no-collector.hygiene", overrides_with = "hygiene")]
    pub no_hygiene: bool,

    /// A console password or an active access key not used for longer than this is "unused"
    /// (CIS 1.12, Security Hub IAM.22: 45 days).
    #[arg(long = "hygiene.unused-after", env = "IAM_MFA_EXPORTER_HYGIENE_UNUSED_AFTER", default_value = "45d", value_parser = parse_duration)]
    pub unused_after: Duration,

    /// An active access key rotated longer ago than this is overdue (CIS 1.14, IAM.3: 90 days).
    #[arg(long = "hygiene.rotate-after", env = "IAM_MFA_EXPORTER_HYGIENE_ROTATE_AFTER", default_value = "90d", value_parser = parse_duration)]
    pub rotate_after: Duration,

    /// Root used within this long counts as used recently (CIS 1.7); exported for the alert.
    #[arg(long = "hygiene.root-used-within", env = "IAM_MFA_EXPORTER_HYGIENE_ROOT_USED_WITHIN", default_value = "1d", value_parser = parse_duration)]
    pub root_used_within: Duration,

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
    /// What a refresh computes besides the report's verdicts.
    pub fn checks(&self) -> Checks {
        let seconds = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Checks {
            live_mfa: self.live_mfa(),
            hygiene: (!self.no_hygiene).then(|| Thresholds {
                unused_after: seconds(self.unused_after),
                rotate_after: seconds(self.rotate_after),
                root_used_within: seconds(self.root_used_within),
            }),
            per_user_cap: self.max_user_series,
        }
    }

    /// The live MFA budget, or `None` when live checks are off (or in file mode).
    pub fn live_mfa(&self) -> Option<Budget> {
        let off = self.no_mfa_devices || !self.report_files.is_empty();
        (!off).then(|| Budget {
            offenders: self.max_user_series,
            typing_calls: self.mfa_devices_calls_per_refresh,
            max_age_seconds: i64::try_from(self.mfa_devices_max_age.as_secs()).unwrap_or(i64::MAX),
        })
    }

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
        assert_eq!(
            c.live_mfa(),
            Some(Budget {
                offenders: 1000,
                typing_calls: 100,
                max_age_seconds: 24 * 3600
            }),
            "live MFA checks are on by default"
        );
        assert_eq!(c.required_strength, None);
        assert_eq!(
            c.checks().hygiene,
            Some(Thresholds::default()),
            "hygiene checks on, with the controls' thresholds"
        );
    }

    #[test]
    fn hygiene_flags() {
        let off = Config::try_parse_from(["x", "--no-collector.hygiene"]).unwrap();
        assert_eq!(off.checks().hygiene, None);
        let tuned = Config::try_parse_from([
            "x",
            "--hygiene.unused-after=90d",
            "--hygiene.rotate-after=180d",
            "--hygiene.root-used-within=12h",
        ])
        .unwrap();
        assert_eq!(
            tuned.checks().hygiene,
            Some(Thresholds {
                unused_after: 90 * 86400,
                rotate_after: 180 * 86400,
                root_used_within: 12 * 3600
            })
        );
    }

    #[test]
    fn live_mfa_flags() {
        let off = Config::try_parse_from(["x", "--no-aws.mfa-devices"]).unwrap();
        assert_eq!(off.live_mfa(), None);
        let back_on =
            Config::try_parse_from(["x", "--no-aws.mfa-devices", "--aws.mfa-devices"]).unwrap();
        assert!(back_on.live_mfa().is_some(), "the last flag wins");
        let files = Config::try_parse_from(["x", "--report.file=r.csv"]).unwrap();
        assert_eq!(files.live_mfa(), None, "file mode has nothing to call");
        let tuned = Config::try_parse_from([
            "x",
            "--aws.mfa-devices.max-age=1h",
            "--aws.mfa-devices.calls-per-refresh=5",
            "--mfa.required-strength=phishing_resistant",
        ])
        .unwrap();
        assert_eq!(
            tuned.live_mfa(),
            Some(Budget {
                offenders: 1000,
                typing_calls: 5,
                max_age_seconds: 3600
            })
        );
        assert_eq!(tuned.required_strength, Some(Strength::PhishingResistant));
        assert!(Config::try_parse_from(["x", "--mfa.required-strength=strong"]).is_err());
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
        // Several values in one environment variable: one per line (no name or path holds one).
        let c = Config::try_parse_from(["x", "--report.file=/r/a,1.csv\n/r/b.csv"]).unwrap();
        assert_eq!(c.report_files.len(), 2);
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
