//! Turns the current [`Status`] into metric families at each scrape (client_rust's `Collector`),
//! so a user who leaves the report leaves /metrics too. [`METRICS`] is the public list of every
//! metric; docs/metrics.md is checked against it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector as PromCollector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeGaugeValue, EncodeLabelSet, EncodeMetric,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::error::Reason;
use crate::report::{AccountData, NonCompliantUser};
use crate::state::{Shared, Status};

/// One metric of the public API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricDef {
    pub name: &'static str,
    pub kind: MetricKind,
    /// Labels besides `account_id` (which every data series carries).
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
    &[],
    "IAM users in the credential report, root excluded. Cached: refreshed in the background, see aws_iam_credential_report_generated_timestamp_seconds.",
);
pub const CONSOLE_USERS: MetricDef = gauge(
    "aws_iam_console_users",
    &[],
    "IAM users with a console password. Cached: refreshed in the background.",
);
pub const CONSOLE_USERS_MFA_ENABLED: MetricDef = gauge(
    "aws_iam_console_users_mfa_enabled",
    &[],
    "Console users with MFA active. Cached: refreshed in the background.",
);
pub const CONSOLE_USERS_WITHOUT_MFA: MetricDef = gauge(
    "aws_iam_console_users_without_mfa",
    &[],
    "Console users without MFA (non-compliant with CIS / Security Hub IAM.5). Cached: refreshed in the background.",
);
pub const USERS_MFA_ENABLED: MetricDef = gauge(
    "aws_iam_users_mfa_enabled",
    &[],
    "IAM users with MFA active, console or not. Cached: refreshed in the background.",
);
pub const CONSOLE_USER_WITHOUT_MFA: MetricDef = gauge(
    "aws_iam_console_user_without_mfa",
    &["user"],
    "1 for each console user without MFA (capped by --metrics.max-user-series). Cached: refreshed in the background.",
);
pub const USER_CREATED: MetricDef = gauge(
    "aws_iam_user_created_timestamp_seconds",
    &["user"],
    "Creation time of each console user without MFA. Cached: refreshed in the background.",
);
pub const USER_PASSWORD_LAST_USED: MetricDef = gauge(
    "aws_iam_user_password_last_used_timestamp_seconds",
    &["user"],
    "Last console sign-in of each console user without MFA, when the report knows it. Cached: refreshed in the background.",
);
pub const ROOT_MFA_ENABLED: MetricDef = gauge(
    "aws_iam_root_mfa_enabled",
    &[],
    "1 if the root user has MFA (GetAccountSummary in AWS mode, the root row in file mode). Cached: refreshed in the background.",
);
pub const ROOT_VIRTUAL_MFA: MetricDef = gauge(
    "aws_iam_root_virtual_mfa",
    &[],
    "1 if a virtual MFA device is assigned to the root user, 0 if not (AWS mode only). Cached: refreshed in the background.",
);
pub const ROOT_PASSWORD_ENABLED: MetricDef = gauge(
    "aws_iam_root_password_enabled",
    &[],
    "1 if the root user has a password; absent when the report says not_supported. Cached: refreshed in the background.",
);
pub const ROOT_ACCESS_KEYS_ACTIVE: MetricDef = gauge(
    "aws_iam_root_access_keys_active",
    &[],
    "Active root access keys (0-2). Cached: refreshed in the background.",
);
pub const ROOT_PASSWORD_LAST_USED: MetricDef = gauge(
    "aws_iam_root_password_last_used_timestamp_seconds",
    &[],
    "Last console sign-in of the root user, when the report knows it. Cached: refreshed in the background.",
);
pub const REPORT_GENERATED: MetricDef = gauge(
    "aws_iam_credential_report_generated_timestamp_seconds",
    &[],
    "When AWS generated the credential report the metrics come from (file mode: GeneratedTime, or the file's modification time for raw CSV).",
);
pub const REFRESH_SUCCESS: MetricDef = gauge(
    "aws_iam_refresh_success",
    &[],
    "1 if the last background refresh worked, 0 if it failed (the last good data is still served).",
);
pub const LAST_SUCCESSFUL_REFRESH: MetricDef = gauge(
    "aws_iam_last_successful_refresh_timestamp_seconds",
    &[],
    "When the last successful background refresh ended.",
);
pub const REFRESH_DURATION: MetricDef = gauge(
    "aws_iam_refresh_duration_seconds",
    &[],
    "How long the last background refresh took, successful or not.",
);
pub const REFRESH_ERRORS: MetricDef = MetricDef {
    name: "aws_iam_refresh_errors_total",
    kind: MetricKind::Counter,
    labels: &["reason"],
    help: "Failed background refreshes, by reason.",
};
pub const USER_SERIES_DROPPED: MetricDef = gauge(
    "aws_iam_user_series_dropped",
    &[],
    "Console users without MFA whose per-user series were left out by --metrics.max-user-series.",
);
pub const ACCOUNT_INFO: MetricDef = gauge(
    "aws_iam_account_info",
    &["account_name"],
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
    CONSOLE_USER_WITHOUT_MFA,
    USER_CREATED,
    USER_PASSWORD_LAST_USED,
    ROOT_MFA_ENABLED,
    ROOT_VIRTUAL_MFA,
    ROOT_PASSWORD_ENABLED,
    ROOT_ACCESS_KEYS_ACTIVE,
    ROOT_PASSWORD_LAST_USED,
    REPORT_GENERATED,
    REFRESH_SUCCESS,
    LAST_SUCCESSFUL_REFRESH,
    REFRESH_DURATION,
    REFRESH_ERRORS,
    USER_SERIES_DROPPED,
    ACCOUNT_INFO,
    BUILD_INFO,
];

/// The version and revision in `aws_iam_exporter_build_info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInfo {
    pub version: String,
    pub revision: String,
}

impl BuildInfo {
    /// This binary's: the crate version and the git revision captured by build.rs.
    pub fn current() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            revision: env!("IAM_MFA_EXPORTER_REVISION").to_owned(),
        }
    }
}

/// The prometheus-client collector over the shared state.
#[derive(Debug)]
pub struct Collector {
    shared: Arc<Shared>,
    build: BuildInfo,
    max_user_series: usize,
    /// The dropped-series count last logged, so the cap is logged once per change.
    logged_dropped: AtomicUsize,
}

type Labels<'a> = Vec<(&'static str, &'a str)>;

/// A per-account gauge and how to read it from the account's data (`None`: absent series).
type AccountGauge = (&'static MetricDef, fn(&AccountData) -> Option<i64>);

fn count(v: u64) -> Option<i64> {
    Some(i64::try_from(v).unwrap_or(i64::MAX))
}

const ACCOUNT_GAUGES: &[AccountGauge] = &[
    (&USERS, |d| count(d.report.users)),
    (&CONSOLE_USERS, |d| count(d.report.console_users)),
    (&CONSOLE_USERS_MFA_ENABLED, |d| {
        count(d.report.console_users_mfa_enabled)
    }),
    (&CONSOLE_USERS_WITHOUT_MFA, |d| {
        count(d.report.console_users_without_mfa.len() as u64)
    }),
    (&USERS_MFA_ENABLED, |d| count(d.report.users_mfa_enabled)),
];

const ROOT_GAUGES: &[AccountGauge] = &[
    (&ROOT_MFA_ENABLED, |d| d.root_mfa_enabled().map(i64::from)),
    (&ROOT_VIRTUAL_MFA, |d| d.root_virtual_mfa.map(i64::from)),
    (&ROOT_PASSWORD_ENABLED, |d| {
        d.report
            .root
            .as_ref()
            .and_then(|r| r.password_enabled)
            .map(i64::from)
    }),
    (&ROOT_ACCESS_KEYS_ACTIVE, |d| {
        d.root_access_keys_active().map(i64::from)
    }),
    (&ROOT_PASSWORD_LAST_USED, |d| {
        d.report.root.as_ref().and_then(|r| r.password_last_used)
    }),
    (&REPORT_GENERATED, |d| d.generated_at),
];

/// One account's share of the per-user series under the global cap.
struct UserSeries<'a> {
    data: &'a AccountData,
    kept: &'a [NonCompliantUser],
}

impl Collector {
    pub fn new(shared: Arc<Shared>, build: BuildInfo, max_user_series: usize) -> Self {
        Self {
            shared,
            build,
            max_user_series,
            logged_dropped: AtomicUsize::new(0),
        }
    }

    /// A registry holding just this collector, ready for `encoding::*::encode`.
    pub fn into_registry(self) -> Registry {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        registry
    }

    fn encode_all(&self, e: &mut DescriptorEncoder, statuses: &[Arc<Status>]) -> std::fmt::Result {
        let data: Vec<&AccountData> = statuses.iter().filter_map(|s| s.data.as_deref()).collect();
        let account = |d: &&AccountData| [("account_id", d.report.account_id.clone())];
        let per_account = |e: &mut DescriptorEncoder, gauges: &[AccountGauge]| {
            for (def, value) in gauges {
                encode_gauges(
                    e,
                    def,
                    data.iter()
                        .filter_map(|d| value(d).map(|v| (account(d), v))),
                )?;
            }
            Ok::<_, std::fmt::Error>(())
        };
        per_account(e, ACCOUNT_GAUGES)?;

        // The per-user cap is global: accounts in key order fill it until it is spent.
        let mut budget = self.max_user_series;
        let users: Vec<UserSeries> = data
            .iter()
            .map(|d| {
                let all = &d.report.console_users_without_mfa;
                let kept = &all[..all.len().min(budget)];
                budget -= kept.len();
                UserSeries { data: d, kept }
            })
            .collect();
        let per_user = |value: fn(&NonCompliantUser) -> Option<i64>| {
            users.iter().flat_map(move |a| {
                a.kept.iter().filter_map(move |u| {
                    let labels = [
                        ("account_id", a.data.report.account_id.as_str()),
                        ("user", u.name.as_str()),
                    ];
                    value(u).map(|v| (labels, v))
                })
            })
        };
        encode_gauges(e, &CONSOLE_USER_WITHOUT_MFA, per_user(|_| Some(1)))?;
        encode_gauges(e, &USER_CREATED, per_user(|u| Some(u.created)))?;
        encode_gauges(
            e,
            &USER_PASSWORD_LAST_USED,
            per_user(|u| u.password_last_used),
        )?;

        per_account(e, ROOT_GAUGES)?;

        // Health series: per target, labelled by account once known, else by target.
        let health = |value: fn(&Status) -> Option<f64>| {
            statuses
                .iter()
                .filter_map(move |s| value(s).map(|v| (target_labels(s), v)))
        };
        let success = statuses.iter().filter_map(|s| {
            s.last_refresh_ok
                .map(|ok| (target_labels(s), i64::from(ok)))
        });
        encode_gauges(e, &REFRESH_SUCCESS, success)?;
        encode_gauges(
            e,
            &LAST_SUCCESSFUL_REFRESH,
            health(|s| s.last_success.map(unix_seconds)),
        )?;
        encode_gauges(
            e,
            &REFRESH_DURATION,
            health(|s| s.last_duration.map(|d| d.as_secs_f64())),
        )?;
        if !statuses.is_empty() {
            let mut m = e.encode_descriptor(
                REFRESH_ERRORS.name.trim_end_matches("_total"),
                REFRESH_ERRORS.help,
                None,
                MetricType::Counter,
            )?;
            for s in statuses {
                for reason in Reason::ALL {
                    let mut labels = target_labels(s);
                    labels.push(("reason", reason.as_str()));
                    ConstCounter::new(s.errors[reason.index()])
                        .encode(m.encode_family(&labels)?)?;
                }
            }
        }

        let dropped: Vec<(usize, &AccountData)> = users
            .iter()
            .map(|a| {
                (
                    a.data.report.console_users_without_mfa.len() - a.kept.len(),
                    a.data,
                )
            })
            .collect();
        self.log_dropped(dropped.iter().map(|(n, _)| n).sum());
        encode_gauges(
            e,
            &USER_SERIES_DROPPED,
            dropped
                .iter()
                .map(|(n, d)| (account(d), i64::try_from(*n).unwrap_or(i64::MAX))),
        )?;

        encode_gauges(
            e,
            &ACCOUNT_INFO,
            statuses.iter().filter_map(|s| {
                let id = s.account_id()?;
                Some((
                    [
                        ("account_id", id),
                        ("account_name", s.account_name.as_deref().unwrap_or("")),
                    ],
                    1i64,
                ))
            }),
        )?;

        let build = [
            ("version", self.build.version.as_str()),
            ("revision", self.build.revision.as_str()),
        ];
        encode_gauges(e, &BUILD_INFO, Some((build, 1i64)))
    }

    /// Logs once when the cap starts leaving users out (and again only after it stopped), not at
    /// every scrape nor at every account that adds to it.
    fn log_dropped(&self, dropped: usize) {
        if self.logged_dropped.swap(dropped, Ordering::Relaxed) == 0 && dropped > 0 {
            tracing::warn!(
                dropped,
                max_user_series = self.max_user_series,
                "more console users without MFA than --metrics.max-user-series; per-user series left out (the counts stay exact, see aws_iam_user_series_dropped)"
            );
        }
    }
}

/// `account_id` once known, else `target` (the file path or `self`), so series never collide.
fn target_labels(s: &Status) -> Labels<'_> {
    match s.account_id() {
        Some(id) => vec![("account_id", id)],
        None => vec![("target", s.key.as_str())],
    }
}

impl PromCollector for Collector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let statuses = self.shared.snapshot();
        self.encode_all(&mut encoder, &statuses)
    }
}

/// Writes one gauge family; writes nothing at all (not even HELP) when it has no series, so an
/// unknown value is an absent series.
fn encode_gauges<L, V>(
    e: &mut DescriptorEncoder,
    def: &MetricDef,
    series: impl IntoIterator<Item = (L, V)>,
) -> std::fmt::Result
where
    L: EncodeLabelSet,
    V: EncodeGaugeValue,
{
    let mut series = series.into_iter().peekable();
    if series.peek().is_none() {
        return Ok(());
    }
    let mut m = e.encode_descriptor(def.name, def.help, None, MetricType::Gauge)?;
    for (labels, value) in series {
        ConstGauge::new(value).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

fn unix_seconds(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}
