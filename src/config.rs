//! Command-line flags, Prometheus style (`--web.listen-address`), each with an
//! `IAM_MFA_EXPORTER_…` environment variable.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

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

    /// Read the credential report from this file (raw CSV or the JSON of `aws iam
    /// get-credential-report`) instead of AWS. Re-read at every refresh.
    #[arg(long = "report.file", env = "IAM_MFA_EXPORTER_REPORT_FILE")]
    pub report_file: Option<PathBuf>,

    /// AWS region for the IAM client (default: the SDK's chain, then us-east-1; IAM is global).
    #[arg(long = "aws.region", env = "IAM_MFA_EXPORTER_AWS_REGION")]
    pub aws_region: Option<String>,

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
        assert_eq!(c.report_file, Some(PathBuf::from("/tmp/r.csv")));
        assert_eq!(c.telemetry_path, "/m");
        assert_eq!(c.log_format, LogFormat::Json);
        assert!(c.once);
    }

    #[test]
    fn bad_values_are_rejected() {
        for bad in [
            ["x", "--refresh.interval=0s"],
            ["x", "--refresh.interval=soon"],
            ["x", "--web.telemetry-path=metrics"],
            ["x", "--web.telemetry-path=/-/ready"],
            ["x", "--log.level=loud"],
        ] {
            assert!(Config::try_parse_from(bad).is_err(), "{bad:?}");
        }
    }
}
