//! Turns the current [`Status`] into metric families at each scrape (client_rust's `Collector`),
//! so a user who leaves the report leaves /metrics too. Names and HELP texts come from
//! [`crate::metrics`]; this file only computes values.

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
use crate::metrics::*;
use crate::mfa::{CheckResult, DeviceKind, Direction, Live, Strength};
use crate::report::hygiene::{Hygiene, KeyFinding};
use crate::report::{AccountData, ConsoleUser};
use crate::state::{Shared, Status};

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
    /// `--mfa.required-strength`.
    required_strength: Option<Strength>,
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
    (&CONSOLE_USERS, |d| count(d.console_users())),
    (&CONSOLE_USERS_MFA_ENABLED, |d| {
        count(d.console_users_mfa_enabled())
    }),
    (&CONSOLE_USERS_WITHOUT_MFA, |d| {
        count(d.console_users_without_mfa().len() as u64)
    }),
    (&USERS_MFA_ENABLED, |d| count(d.report.users_mfa_enabled)),
];

const ROOT_GAUGES: &[AccountGauge] = &[
    (&ROOT_MFA_ENABLED, |d| d.root_mfa_enabled().map(i64::from)),
    (&ROOT_VIRTUAL_MFA, |d| d.root_virtual_mfa.map(i64::from)),
    (&ROOT_HARDWARE_MFA, |d| d.root_hardware_mfa().map(i64::from)),
    (&ROOT_PASSWORD_ENABLED, |d| {
        d.root_password_enabled().map(i64::from)
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
    kept: &'a [ConsoleUser],
    dropped: usize,
}

impl Collector {
    pub fn new(shared: Arc<Shared>, build: BuildInfo, max_user_series: usize) -> Self {
        Self {
            shared,
            build,
            max_user_series,
            required_strength: None,
            logged_dropped: AtomicUsize::new(0),
        }
    }

    /// Per-user series for console users whose MFA is weaker than `required`.
    pub fn with_required_strength(mut self, required: Option<Strength>) -> Self {
        self.required_strength = required;
        self
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

        self.encode_live(e, &data)?;

        // The per-user cap is shared fairly: no account is silenced by a bigger one.
        let offenders: Vec<&[ConsoleUser]> =
            data.iter().map(|d| d.console_users_without_mfa()).collect();
        let wants: Vec<usize> = offenders.iter().map(|o| o.len()).collect();
        let users: Vec<UserSeries> = data
            .iter()
            .zip(&offenders)
            .zip(fair_shares(&wants, self.max_user_series))
            .map(|((d, all), share)| UserSeries {
                data: d,
                kept: &all[..share],
                dropped: all.len() - share,
            })
            .collect();
        let per_user = |value: fn(&ConsoleUser) -> Option<i64>| {
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
        self.encode_below_required(e, &data)?;
        self.encode_hygiene(e, &data)?;

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
        encode_counters(
            e,
            &REFRESH_ERRORS,
            statuses.iter().flat_map(|s| {
                Reason::ALL.into_iter().map(move |reason| {
                    let mut labels = target_labels(s);
                    labels.push(("reason", reason.as_str()));
                    (labels, s.errors[reason.index()])
                })
            }),
        )?;

        self.log_dropped(users.iter().map(|a| a.dropped).sum());
        encode_gauges(
            e,
            &USER_SERIES_DROPPED,
            users.iter().map(|a| {
                (
                    account(&a.data),
                    i64::try_from(a.dropped).unwrap_or(i64::MAX),
                )
            }),
        )?;

        if let Some(d) = self.shared.discovery() {
            encode_gauges(
                e,
                &ACCOUNT_DISCOVERY_SUCCESS,
                Some((NO_LABELS, i64::from(d.last_ok))),
            )?;
            encode_gauges(
                e,
                &ACCOUNT_DISCOVERY_LAST_SUCCESS,
                d.last_success.map(|t| (NO_LABELS, unix_seconds(t))),
            )?;
            encode_counters(
                e,
                &ACCOUNT_DISCOVERY_ERRORS,
                Reason::ALL
                    .into_iter()
                    .map(|reason| ([("reason", reason.as_str())], d.errors[reason.index()])),
            )?;
        }
        encode_counters(
            e,
            &REFRESH_TASK_RESTARTS,
            Some((NO_LABELS, self.shared.task_restarts())),
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

    /// The live MFA families (AWS mode with live checks): lag corrections, strengths, device
    /// kinds, checks, and how old the oldest look is.
    fn encode_live(&self, e: &mut DescriptorEncoder, data: &[&AccountData]) -> std::fmt::Result {
        let live: Vec<(&str, &Live)> = data
            .iter()
            .filter_map(|d| Some((d.report.account_id.as_str(), d.live.as_ref()?)))
            .collect();
        encode_gauges(
            e,
            &MFA_LAG_CORRECTED,
            live.iter().flat_map(|(id, l)| {
                Direction::ALL.into_iter().map(move |dir| {
                    let n = l.verdict.corrected.values().filter(|d| **d == dir).count();
                    ([("account_id", *id), ("direction", dir.as_str())], n as i64)
                })
            }),
        )?;
        encode_gauges(
            e,
            &MFA_STRENGTH,
            live.iter().flat_map(|(id, l)| {
                Strength::ALL.into_iter().map(move |strength| {
                    let n = l
                        .verdict
                        .strength
                        .values()
                        .filter(|s| **s == strength)
                        .count();
                    (
                        [("account_id", *id), ("strength", strength.as_str())],
                        n as i64,
                    )
                })
            }),
        )?;
        encode_gauges(
            e,
            &MFA_DEVICES,
            live.iter().flat_map(|(id, l)| {
                DeviceKind::ALL.into_iter().map(move |kind| {
                    let n = l.verdict.devices.get(&kind).copied().unwrap_or(0);
                    ([("account_id", *id), ("kind", kind.as_str())], n)
                })
            }),
        )?;
        encode_counters(
            e,
            &MFA_DEVICE_CHECKS,
            live.iter().flat_map(|(id, l)| {
                CheckResult::ALL.into_iter().map(move |result| {
                    (
                        [("account_id", *id), ("result", result.as_str())],
                        l.checks[result.index()],
                    )
                })
            }),
        )?;
        encode_gauges(
            e,
            &MFA_DEVICES_OLDEST_CHECK,
            live.iter()
                .filter_map(|(id, l)| l.verdict.oldest_look.map(|at| ([("account_id", *id)], at))),
        )
    }

    /// `--mfa.required-strength`: console users whose known MFA strength is below it, under the
    /// same fairly shared per-user cap (a separate budget of the same size).
    fn encode_below_required(
        &self,
        e: &mut DescriptorEncoder,
        data: &[&AccountData],
    ) -> std::fmt::Result {
        let Some(required) = self.required_strength else {
            return Ok(());
        };
        let weak_users: Vec<(&str, Vec<(&str, Strength)>)> = data
            .iter()
            .filter_map(|d| {
                let live = d.live.as_ref()?;
                let users = live
                    .verdict
                    .strength
                    .iter()
                    .filter(|(_, s)| **s != Strength::Unknown && **s < required)
                    .map(|(u, s)| (u.as_str(), *s))
                    .collect();
                Some((d.report.account_id.as_str(), users))
            })
            .collect();
        let weak: Vec<(&str, &[(&str, Strength)])> = weak_users
            .iter()
            .map(|(id, users)| (*id, users.as_slice()))
            .collect();
        encode_capped(
            e,
            &BELOW_REQUIRED_STRENGTH,
            self.max_user_series,
            &weak,
            |id, (user, strength)| {
                (
                    vec![
                        ("account_id", id),
                        ("user", *user),
                        ("strength", strength.as_str()),
                    ],
                    1,
                )
            },
        )
    }

    /// Credential hygiene (`--collector.hygiene`): counts per account, root key use, the
    /// thresholds, and per-user series of who fails a check (each family capped like the others).
    fn encode_hygiene(&self, e: &mut DescriptorEncoder, data: &[&AccountData]) -> std::fmt::Result {
        let found: Vec<(&str, &Hygiene)> = data
            .iter()
            .filter_map(|d| Some((d.report.account_id.as_str(), d.report.hygiene.as_ref()?)))
            .collect();
        let counts: [HygieneCount; 4] = [
            (&HYGIENE_PASSWORDS_UNUSED, |h| h.totals.password_unused),
            (&HYGIENE_KEYS_UNUSED, |h| h.totals.keys_unused),
            (&HYGIENE_ROTATION_OVERDUE, |h| h.totals.rotation_overdue),
            (&HYGIENE_TWO_ACTIVE_KEYS, |h| h.totals.two_active_keys),
        ];
        for (def, count) in counts {
            encode_gauges(
                e,
                def,
                found
                    .iter()
                    .map(|(id, h)| ([("account_id", *id)], count(h) as i64)),
            )?;
        }
        encode_gauges(
            e,
            &ROOT_ACCESS_KEY_LAST_USED,
            data.iter().filter_map(|d| {
                d.report.hygiene.as_ref()?;
                let at = d.report.root.as_ref()?.access_keys_last_used?;
                Some(([("account_id", d.report.account_id.as_str())], at))
            }),
        )?;
        let cap = self.max_user_series;
        let passwords: Vec<(&str, &[(String, i64)])> = found
            .iter()
            .map(|(id, h)| (*id, h.password_unused.as_slice()))
            .collect();
        encode_capped(
            e,
            &USER_PASSWORD_UNUSED_SINCE,
            cap,
            &passwords,
            |id, (user, since)| (vec![("account_id", id), ("user", user.as_str())], *since),
        )?;
        let keys = |f: fn(&Hygiene) -> &[KeyFinding]| -> Vec<(&str, &[KeyFinding])> {
            found.iter().map(|(id, h)| (*id, f(h))).collect()
        };
        encode_capped(
            e,
            &ACCESS_KEY_UNUSED_SINCE,
            cap,
            &keys(|h| &h.keys_unused),
            key_series,
        )?;
        encode_capped(
            e,
            &ACCESS_KEY_LAST_ROTATED,
            cap,
            &keys(|h| &h.rotation_overdue),
            key_series,
        )?;
        let two: Vec<(&str, &[String])> = found
            .iter()
            .map(|(id, h)| (*id, h.two_active_keys.as_slice()))
            .collect();
        encode_capped(e, &USER_TWO_ACTIVE_KEYS, cap, &two, |id, user| {
            (vec![("account_id", id), ("user", user.as_str())], 1)
        })?;
        let thresholds = found.first().map(|(_, h)| h.thresholds);
        encode_gauges(
            e,
            &HYGIENE_THRESHOLD,
            thresholds.into_iter().flat_map(|t| {
                [
                    ("unused", t.unused_after),
                    ("rotation", t.rotate_after),
                    ("root_used", t.root_used_within),
                ]
                .map(|(check, seconds)| ([("check", check)], seconds))
            }),
        )
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

/// Splits `cap` per-user series between accounts that want `wants[i]` each (max-min fairness,
/// "water-filling"): every account gets its whole want or at least an equal share of the cap,
/// and what small accounts leave unused flows to the bigger ones. Never more than the cap in
/// all, never more than an account wants; the whole cap is used while anyone wants more.
pub fn fair_shares(wants: &[usize], cap: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..wants.len()).collect();
    order.sort_by_key(|&i| (wants[i], i));
    let mut shares = vec![0; wants.len()];
    let mut left = cap;
    for (done, &i) in order.iter().enumerate() {
        let fair = left / (order.len() - done);
        // The last (largest) account also takes what integer division left over.
        let fair = if done + 1 == order.len() { left } else { fair };
        shares[i] = wants[i].min(fair);
        left -= shares[i];
    }
    shares
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

/// Writes one counter family (the `_total` suffix is the encoder's); nothing when it has no series.
fn encode_counters<L: EncodeLabelSet>(
    e: &mut DescriptorEncoder,
    def: &MetricDef,
    series: impl IntoIterator<Item = (L, u64)>,
) -> std::fmt::Result {
    let mut series = series.into_iter().peekable();
    if series.peek().is_none() {
        return Ok(());
    }
    let name = def.name.strip_suffix("_total").unwrap_or(def.name);
    let mut m = e.encode_descriptor(name, def.help, None, MetricType::Counter)?;
    for (labels, value) in series {
        ConstCounter::new(value).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Writes a per-user family whose series are capped: `accounts` lists each account's items in
/// the order the cap keeps, and the cap is shared fairly between accounts ([`fair_shares`]).
fn encode_capped<'a, T>(
    e: &mut DescriptorEncoder,
    def: &MetricDef,
    cap: usize,
    accounts: &[(&'a str, &'a [T])],
    series: impl Fn(&'a str, &'a T) -> (Labels<'a>, i64),
) -> std::fmt::Result {
    let wants: Vec<usize> = accounts.iter().map(|(_, items)| items.len()).collect();
    let series = &series;
    encode_gauges(
        e,
        def,
        accounts
            .iter()
            .zip(fair_shares(&wants, cap))
            .flat_map(move |((id, items), share)| {
                items[..share].iter().map(move |item| series(id, item))
            }),
    )
}

/// A per-account hygiene count and how to read it.
type HygieneCount = (&'static MetricDef, fn(&Hygiene) -> usize);

/// The series of one key finding.
fn key_series<'a>(id: &'a str, k: &'a KeyFinding) -> (Labels<'a>, i64) {
    let key = KEY_NUMBERS[usize::from(k.key.clamp(1, 2)) - 1];
    (
        vec![("account_id", id), ("user", k.user.as_str()), ("key", key)],
        k.at,
    )
}

/// Label values of access key numbers.
const KEY_NUMBERS: [&str; 2] = ["1", "2"];

/// The label set of a series without labels.
const NO_LABELS: [(&str, &str); 0] = [];

fn unix_seconds(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

#[cfg(test)]
mod tests {
    use super::fair_shares;

    #[test]
    fn fair_shares_split_the_cap() {
        // One huge account cannot silence the others.
        assert_eq!(fair_shares(&[1000, 3, 10], 30), [17, 3, 10]);
        assert_eq!(fair_shares(&[5000, 200, 40], 100), [34, 33, 33]);
        // Equal wants, odd cap: the whole cap is used, no account over its want.
        let shares = fair_shares(&[50, 50, 50], 100);
        assert_eq!(shares.iter().sum::<usize>(), 100);
        assert!(shares.iter().all(|&s| (33..=34).contains(&s)), "{shares:?}");
        // Under the cap: everyone gets everything.
        assert_eq!(fair_shares(&[1, 2, 3], 1000), [1, 2, 3]);
        assert_eq!(fair_shares(&[], 10), Vec::<usize>::new());
        assert_eq!(fair_shares(&[4, 4], 0), [0, 0]);
        // Invariants over many shapes.
        for cap in [0, 1, 7, 100] {
            for wants in [
                vec![0, 0, 9],
                vec![100, 1, 1, 1],
                vec![3; 5],
                vec![13, 0, 250, 7],
            ] {
                let shares = fair_shares(&wants, cap);
                let total: usize = shares.iter().sum();
                let want_total: usize = wants.iter().sum();
                assert_eq!(total, want_total.min(cap), "{wants:?} cap {cap}");
                let equal = cap / wants.len();
                for (s, w) in shares.iter().zip(&wants) {
                    assert!(
                        s <= w && *s >= (*w).min(equal),
                        "{wants:?} cap {cap}: {shares:?}"
                    );
                }
            }
        }
    }
}
