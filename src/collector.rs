//! Turns the current [`Status`] into metric families at each scrape (client_rust's `Collector`),
//! so a user who leaves the report leaves /metrics too. [`METRICS`] is the public list of every
//! metric; docs/metrics.md is checked against it.

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
}

type Labels<'a> = Vec<(&'static str, &'a str)>;

impl Collector {
    pub fn new(shared: Arc<Shared>, build: BuildInfo, max_user_series: usize) -> Self {
        Self {
            shared,
            build,
            max_user_series,
        }
    }

    /// A registry holding just this collector, ready for `encoding::*::encode`.
    pub fn into_registry(self) -> Registry {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        registry
    }

    fn encode_status(&self, e: &mut DescriptorEncoder, status: &Status) -> std::fmt::Result {
        let account = status.data.as_ref().map(|d| d.report.account_id.as_str());
        let account_labels: Labels = account.map(|a| vec![("account_id", a)]).unwrap_or_default();

        if let Some(data) = &status.data {
            self.encode_data(e, data)?;
        }

        let one = |value| single(&account_labels, value);
        let success = status.last_refresh_ok.map(i64::from);
        encode_gauges(e, &REFRESH_SUCCESS, one(success))?;
        let last = status.last_success.map(unix_seconds);
        encode_gauges(e, &LAST_SUCCESSFUL_REFRESH, single(&account_labels, last))?;
        let took = status.last_duration.map(|d| d.as_secs_f64());
        encode_gauges(e, &REFRESH_DURATION, single(&account_labels, took))?;

        let mut m = e.encode_descriptor(
            REFRESH_ERRORS.name.trim_end_matches("_total"),
            REFRESH_ERRORS.help,
            None,
            MetricType::Counter,
        )?;
        for reason in Reason::ALL {
            let mut labels = account_labels.clone();
            labels.push(("reason", reason.as_str()));
            ConstCounter::new(status.errors[reason.index()]).encode(m.encode_family(&labels)?)?;
        }

        if let Some(data) = &status.data {
            let dropped = data
                .report
                .console_users_without_mfa
                .len()
                .saturating_sub(self.max_user_series);
            let dropped = i64::try_from(dropped).unwrap_or(i64::MAX);
            encode_gauges(e, &USER_SERIES_DROPPED, one(Some(dropped)))?;
        }

        let build = [
            ("version", self.build.version.as_str()),
            ("revision", self.build.revision.as_str()),
        ];
        encode_gauges(e, &BUILD_INFO, Some((build, 1i64)))
    }

    fn encode_data(&self, e: &mut DescriptorEncoder, data: &AccountData) -> std::fmt::Result {
        let r = &data.report;
        let account = [("account_id", r.account_id.as_str())];
        let one = |v: Option<i64>| v.map(|v| (account, v));
        let count = |v: u64| one(Some(i64::try_from(v).unwrap_or(i64::MAX)));
        encode_gauges(e, &USERS, count(r.users))?;
        encode_gauges(e, &CONSOLE_USERS, count(r.console_users))?;
        encode_gauges(
            e,
            &CONSOLE_USERS_MFA_ENABLED,
            count(r.console_users_mfa_enabled),
        )?;
        encode_gauges(
            e,
            &CONSOLE_USERS_WITHOUT_MFA,
            count(r.console_users_without_mfa.len() as u64),
        )?;
        encode_gauges(e, &USERS_MFA_ENABLED, count(r.users_mfa_enabled))?;

        let kept = &r.console_users_without_mfa
            [..r.console_users_without_mfa.len().min(self.max_user_series)];
        let per_user = |value: fn(&NonCompliantUser) -> Option<i64>| {
            kept.iter().filter_map(move |u| {
                value(u).map(|v| {
                    (
                        [
                            ("account_id", r.account_id.as_str()),
                            ("user", u.name.as_str()),
                        ],
                        v,
                    )
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

        let root = r.root.as_ref();
        encode_gauges(
            e,
            &ROOT_MFA_ENABLED,
            one(data.root_mfa_enabled().map(i64::from)),
        )?;
        encode_gauges(
            e,
            &ROOT_VIRTUAL_MFA,
            one(data.root_virtual_mfa.map(i64::from)),
        )?;
        let password = root.and_then(|r| r.password_enabled).map(i64::from);
        encode_gauges(e, &ROOT_PASSWORD_ENABLED, one(password))?;
        let keys = data.root_access_keys_active().map(i64::from);
        encode_gauges(e, &ROOT_ACCESS_KEYS_ACTIVE, one(keys))?;
        let last_used = root.and_then(|r| r.password_last_used);
        encode_gauges(e, &ROOT_PASSWORD_LAST_USED, one(last_used))?;
        encode_gauges(e, &REPORT_GENERATED, one(data.generated_at))
    }
}

impl PromCollector for Collector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let status = self.shared.status();
        self.encode_status(&mut encoder, &status)
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

fn single<'a, V>(labels: &Labels<'a>, value: Option<V>) -> Option<(Labels<'a>, V)> {
    value.map(|v| (labels.clone(), v))
}

fn unix_seconds(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}
