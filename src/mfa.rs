//! Live MFA, pure: what kind of device a serial number is, how strong a user's set of devices
//! is, and the verdict "now" — the credential report corrected by live checks. The calls that
//! gather the facts are [`crate::source::aws`]'s; nothing here does I/O.

use std::collections::{BTreeMap, BTreeSet};

use crate::arn::split_iam_arn;
use crate::report::{ConsoleUser, UnixSeconds};

/// The kind of an MFA device, from its serial number alone (never from a device's name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeviceKind {
    /// A virtual (TOTP app) device: `arn:…:iam::ACCOUNT:mfa/NAME`.
    Virtual,
    /// A hardware TOTP token: a plain serial such as `GAHT12345678`.
    Hardware,
    /// A FIDO security key or passkey: `arn:…:iam::ACCOUNT:u2f/…`.
    Fido,
}

impl DeviceKind {
    pub const ALL: [DeviceKind; 3] = [DeviceKind::Virtual, DeviceKind::Hardware, DeviceKind::Fido];

    /// Classifies a serial number. An IAM ARN of another shape than `mfa/` or `u2f/` counts as
    /// virtual, the weakest kind, so an unknown device never makes a user look stronger.
    pub fn of_serial(serial: &str) -> DeviceKind {
        match split_iam_arn(serial) {
            Some((_, resource)) if resource.starts_with("u2f/") => DeviceKind::Fido,
            Some(_) => DeviceKind::Virtual,
            None if serial.starts_with("arn:") => DeviceKind::Virtual,
            None => DeviceKind::Hardware,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Virtual => "virtual",
            DeviceKind::Hardware => "hardware",
            DeviceKind::Fido => "fido",
        }
    }
}

/// How strong a user's MFA is: set by the weakest device the user can sign in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Strength {
    /// Not looked at yet (or the look failed).
    Unknown,
    Virtual,
    Hardware,
    /// FIDO security keys or passkeys only.
    PhishingResistant,
}

impl Strength {
    pub const ALL: [Strength; 4] = [
        Strength::PhishingResistant,
        Strength::Hardware,
        Strength::Virtual,
        Strength::Unknown,
    ];

    /// The strength of a set of devices; `None` for no device at all.
    pub fn of(kinds: &[DeviceKind]) -> Option<Strength> {
        if kinds.is_empty() {
            None
        } else if kinds.contains(&DeviceKind::Virtual) {
            Some(Strength::Virtual)
        } else if kinds.contains(&DeviceKind::Hardware) {
            Some(Strength::Hardware)
        } else {
            Some(Strength::PhishingResistant)
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Strength::PhishingResistant => "phishing_resistant",
            Strength::Hardware => "hardware",
            Strength::Virtual => "virtual",
            Strength::Unknown => "unknown",
        }
    }

    /// `--mfa.required-strength`: `phishing_resistant`, `hardware` or `virtual`.
    pub fn parse_required(s: &str) -> Result<Strength, String> {
        match s {
            "phishing_resistant" => Ok(Strength::PhishingResistant),
            "hardware" => Ok(Strength::Hardware),
            "virtual" => Ok(Strength::Virtual),
            _ => Err("expected phishing_resistant, hardware or virtual".into()),
        }
    }
}

/// What the live checks of one account say, as published with its data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Live {
    pub verdict: Verdict,
    /// The console users without MFA now, in name order (computed once per refresh, read at
    /// every scrape).
    pub offenders: Vec<ConsoleUser>,
    /// ListMFADevices calls since the exporter started, by [`CheckResult::index`].
    pub checks: [u64; CheckResult::ALL.len()],
}

/// What one live look at a user found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Look {
    /// ListMFADevices answered: the user's devices now.
    Devices(Vec<DeviceKind>),
    /// NoSuchEntity: the user no longer exists.
    Deleted,
}

/// A user's last successful look, kept between refreshes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub look: Look,
    pub at: UnixSeconds,
}

/// Why a look failed: the values of `aws_iam_mfa_device_checks_total{result}` besides `ok`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckResult {
    Ok,
    Throttled,
    AccessDenied,
    Other,
}

impl CheckResult {
    pub const ALL: [CheckResult; 4] = [
        CheckResult::Ok,
        CheckResult::Throttled,
        CheckResult::AccessDenied,
        CheckResult::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CheckResult::Ok => "ok",
            CheckResult::Throttled => "throttled",
            CheckResult::AccessDenied => "access_denied",
            CheckResult::Other => "other",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// Which way a user's live state differs from the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Direction {
    /// The report says no MFA; the user has a device now.
    Enabled,
    /// The report says MFA; the user has no device now.
    Removed,
    /// The report flags the user; the user no longer exists.
    Deleted,
}

impl Direction {
    pub const ALL: [Direction; 3] = [Direction::Enabled, Direction::Removed, Direction::Deleted];

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Enabled => "enabled",
            Direction::Removed => "removed",
            Direction::Deleted => "deleted",
        }
    }
}

/// The live facts of one account at one refresh: the virtual devices assigned to IAM users
/// (ListVirtualMFADevices, every refresh) and the last good look at each user (ListMFADevices,
/// bounded and cached).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveFacts {
    /// User name → assigned virtual devices (root excluded).
    pub virtual_devices: BTreeMap<String, u32>,
    /// User name → last good look.
    pub looks: BTreeMap<String, Checked>,
    /// When ListVirtualMFADevices answered (this refresh).
    pub listed_at: UnixSeconds,
    /// When AWS generated the report: a look older than it that contradicts it is ignored.
    pub report_generated_at: Option<UnixSeconds>,
}

/// The verdict now, for the console users of one report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Console users without MFA now, in name order.
    pub without_mfa: BTreeSet<String>,
    /// Console users with MFA now, by strength.
    pub strength: BTreeMap<String, Strength>,
    /// Users whose live state differs from the report, by direction.
    pub corrected: BTreeMap<String, Direction>,
    /// Assigned devices of IAM users by kind: virtual exactly, hardware and FIDO as far as typed.
    pub devices: BTreeMap<DeviceKind, u64>,
    /// The oldest look behind a console user's strength (`None`: none looked at yet).
    pub oldest_look: Option<UnixSeconds>,
}

/// How many live checks a refresh may make, and how old a look may get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Console users the report flags without MFA that are checked every refresh (the per-user
    /// series cap).
    pub offenders: usize,
    /// Checks of users with MFA per refresh (`--aws.mfa-devices.calls-per-refresh`).
    pub typing_calls: usize,
    /// Re-check a user with MFA when the last look is this old (`--aws.mfa-devices.max-age`).
    pub max_age_seconds: i64,
}

/// The users to look at (ListMFADevices) this refresh, in order:
/// 1. every console user the report flags without MFA and no virtual device shows has one now,
///    up to `budget.offenders`;
/// 2. then, within `budget.typing_calls`: users with MFA who had a virtual device at the last
///    refresh and have none now, or whose last look found no device (a removal to confirm, or a
///    re-enrolment to see, at once), then users with MFA never looked
///    at, then those whose last look is older than the maximum age, oldest first; users with an
///    assigned virtual device last, in the same order.
///
/// A user with an assigned virtual device has MFA now (ListVirtualMFADevices shows it every
/// refresh) of strength `virtual` whatever else they have: a look at them only counts their
/// other devices, so it waits for the others.
pub fn plan(
    report: ReportConsole<'_>,
    virtual_now: &BTreeMap<String, u32>,
    virtual_before: &BTreeSet<String>,
    looks: &BTreeMap<String, Checked>,
    now: UnixSeconds,
    budget: Budget,
) -> Vec<String> {
    let mut calls: Vec<String> = report
        .without_mfa
        .iter()
        .filter(|u| !virtual_now.contains_key(*u))
        .take(budget.offenders)
        .cloned()
        .collect();
    let mut due: Vec<((u8, i64), &String)> = report
        .with_mfa
        .iter()
        .filter_map(|u| {
            let has_virtual = virtual_now.contains_key(u);
            // A removal to confirm (the virtual device disappeared), or a user found without a
            // device: looked at again at once, so a re-enrolment clears the verdict quickly.
            let found_without = looks
                .get(u)
                .is_some_and(|c| matches!(&c.look, Look::Devices(kinds) if kinds.is_empty()));
            if !has_virtual && (virtual_before.contains(u) || found_without) {
                return Some(((0, i64::MIN), u));
            }
            let stale = match looks.get(u) {
                None => i64::MIN,
                Some(c) if now.saturating_sub(c.at) >= budget.max_age_seconds => c.at,
                Some(_) => return None,
            };
            // Users whose strength a virtual device already settles come last: they are looked
            // at only to count their other devices.
            Some(((1 + u8::from(has_virtual), stale), u))
        })
        .collect();
    due.sort();
    calls.extend(
        due.into_iter()
            .take(budget.typing_calls)
            .map(|(_, u)| u.clone()),
    );
    calls
}

/// The report's console users, as the verdict needs them.
#[derive(Debug, Clone, Copy)]
pub struct ReportConsole<'a> {
    /// Console users the report says have no MFA.
    pub without_mfa: &'a [String],
    /// Console users the report says have MFA.
    pub with_mfa: &'a [String],
}

/// Corrects the report with the live facts. A user with an assigned virtual device has MFA now
/// (ListVirtualMFADevices is fresh every refresh); otherwise the user's last look decides; a user
/// never looked at (or whose look failed) keeps the report's verdict.
pub fn verdict(report: ReportConsole<'_>, facts: &LiveFacts) -> Verdict {
    let mut v = Verdict::default();
    let live = |user: &str, report_says_mfa: bool| -> Option<Look> {
        let look = facts.looks.get(user);
        if facts.virtual_devices.get(user).is_some_and(|n| *n > 0) {
            // Has a virtual device now; other kinds, if any, do not change "has MFA".
            let mut kinds = vec![DeviceKind::Virtual];
            if let Some(Look::Devices(seen)) = look.map(|c| &c.look) {
                kinds.extend(seen.iter().copied().filter(|k| *k != DeviceKind::Virtual));
            }
            return Some(Look::Devices(kinds));
        }
        let look = look?;
        // A look older than the report that contradicts it has been overtaken by the report.
        let contradicts = match &look.look {
            Look::Devices(kinds) => kinds.is_empty() == report_says_mfa,
            Look::Deleted => true,
        };
        if contradicts && facts.report_generated_at.is_some_and(|g| look.at < g) {
            return None;
        }
        Some(match &look.look {
            // ListVirtualMFADevices, fresh at every refresh, says the user has no virtual device
            // now: whatever virtual device an older look saw is gone.
            Look::Devices(kinds) => Look::Devices(
                kinds
                    .iter()
                    .copied()
                    .filter(|k| *k != DeviceKind::Virtual)
                    .collect(),
            ),
            Look::Deleted => Look::Deleted,
        })
    };
    let note_strength = |v: &mut Verdict, user: &str, kinds: Option<&[DeviceKind]>| {
        let strength = kinds.and_then(Strength::of).unwrap_or(Strength::Unknown);
        v.strength.insert(user.to_owned(), strength);
        let at = if facts.virtual_devices.contains_key(user) {
            Some(facts.listed_at)
        } else {
            facts.looks.get(user).map(|c| c.at)
        };
        if strength != Strength::Unknown {
            v.oldest_look = match (v.oldest_look, at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
    };
    for user in report.without_mfa {
        match live(user, false) {
            Some(Look::Devices(kinds)) if !kinds.is_empty() => {
                v.corrected.insert(user.clone(), Direction::Enabled);
                note_strength(&mut v, user, Some(&kinds));
            }
            Some(Look::Deleted) => {
                v.corrected.insert(user.clone(), Direction::Deleted);
            }
            _ => {
                v.without_mfa.insert(user.clone());
            }
        }
    }
    for user in report.with_mfa {
        match live(user, true) {
            Some(Look::Devices(kinds)) if kinds.is_empty() => {
                v.corrected.insert(user.clone(), Direction::Removed);
                v.without_mfa.insert(user.clone());
            }
            // Gone since the report: neither an offender nor a console user with MFA now.
            Some(Look::Deleted) => {}
            Some(Look::Devices(kinds)) => note_strength(&mut v, user, Some(&kinds)),
            None => note_strength(&mut v, user, None),
        }
    }
    // Device counts: virtual ones exactly from the list; the others from the looks.
    let virtual_total: u64 = facts.virtual_devices.values().map(|n| u64::from(*n)).sum();
    v.devices.insert(DeviceKind::Virtual, virtual_total);
    for kind in [DeviceKind::Hardware, DeviceKind::Fido] {
        let n = facts
            .looks
            .values()
            .filter_map(|c| match &c.look {
                Look::Devices(kinds) => Some(kinds.iter().filter(|k| **k == kind).count() as u64),
                Look::Deleted => None,
            })
            .sum();
        v.devices.insert(kind, n);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use DeviceKind::{Fido, Hardware, Virtual};

    #[test]
    fn serials_are_classified_by_shape_not_name() {
        for (serial, kind) in [
            ("arn:aws:iam::123456789012:mfa/alice", Virtual),
            (
                "arn:aws:iam::123456789012:mfa/root-account-mfa-device",
                Virtual,
            ),
            ("arn:aws-us-gov:iam::123456789012:mfa/path/bob", Virtual),
            ("arn:aws:iam::123456789012:u2f/user/alice/yubikey-ABC", Fido),
            ("arn:aws:iam::123456789012:u2f/root/passkey-1", Fido),
            ("GAHT12345678", Hardware),
            // A device named like another kind is still what its serial says.
            ("arn:aws:iam::123456789012:mfa/u2f-key", Virtual),
            // Unknown ARN shapes count as the weakest kind.
            ("arn:aws:iam::123456789012:sms/x", Virtual),
            ("arn:aws:iam::1234:u2f/x", Virtual),
        ] {
            assert_eq!(DeviceKind::of_serial(serial), kind, "{serial}");
        }
    }

    #[test]
    fn strength_is_the_weakest_device() {
        assert_eq!(Strength::of(&[]), None);
        assert_eq!(Strength::of(&[Fido]), Some(Strength::PhishingResistant));
        assert_eq!(
            Strength::of(&[Fido, Fido, Fido]),
            Some(Strength::PhishingResistant)
        );
        assert_eq!(Strength::of(&[Hardware, Fido]), Some(Strength::Hardware));
        assert_eq!(Strength::of(&[Virtual, Fido]), Some(Strength::Virtual));
        assert_eq!(Strength::of(&[Hardware, Virtual]), Some(Strength::Virtual));
        assert_eq!(Strength::of(&[Fido; 8]), Some(Strength::PhishingResistant));
        assert!(Strength::PhishingResistant > Strength::Hardware);
        assert!(Strength::Hardware > Strength::Virtual);
        assert!(Strength::Virtual > Strength::Unknown);
        assert_eq!(Strength::parse_required("hardware"), Ok(Strength::Hardware));
        assert!(Strength::parse_required("unknown").is_err());
    }

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    fn looked(at: UnixSeconds, kinds: &[DeviceKind]) -> Checked {
        Checked {
            look: Look::Devices(kinds.to_vec()),
            at,
        }
    }

    #[test]
    fn the_verdict_corrects_the_report() {
        let without = names(&["enabled-since", "still-off", "gone", "not-looked"]);
        let with = names(&["virt", "fido", "removed", "typed-hw", "untyped"]);
        let facts = LiveFacts {
            virtual_devices: [("virt".to_owned(), 1), ("enabled-since".to_owned(), 1)].into(),
            looks: [
                ("still-off".to_owned(), looked(100, &[])),
                (
                    "gone".to_owned(),
                    Checked {
                        look: Look::Deleted,
                        at: 100,
                    },
                ),
                ("fido".to_owned(), looked(50, &[Fido, Fido])),
                ("removed".to_owned(), looked(100, &[])),
                ("typed-hw".to_owned(), looked(70, &[Hardware, Fido])),
            ]
            .into(),
            listed_at: 100,
            report_generated_at: None,
        };
        let v = verdict(
            ReportConsole {
                without_mfa: &without,
                with_mfa: &with,
            },
            &facts,
        );
        assert_eq!(
            v.without_mfa.iter().map(String::as_str).collect::<Vec<_>>(),
            ["not-looked", "removed", "still-off"]
        );
        assert_eq!(v.corrected["enabled-since"], Direction::Enabled);
        assert_eq!(v.corrected["gone"], Direction::Deleted);
        assert_eq!(v.corrected["removed"], Direction::Removed);
        assert_eq!(v.corrected.len(), 3);
        assert_eq!(v.strength["virt"], Strength::Virtual);
        assert_eq!(v.strength["enabled-since"], Strength::Virtual);
        assert_eq!(v.strength["fido"], Strength::PhishingResistant);
        assert_eq!(v.strength["typed-hw"], Strength::Hardware);
        assert_eq!(v.strength["untyped"], Strength::Unknown);
        assert_eq!(v.strength.len(), 5, "console users with MFA now");
        // Console users now: report 9 − 1 deleted = 8 = 3 without + 5 with.
        assert_eq!(v.without_mfa.len() + v.strength.len(), 8);
        assert_eq!(v.devices[&Virtual], 2);
        assert_eq!(v.devices[&Fido], 3);
        assert_eq!(v.devices[&Hardware], 1);
        assert_eq!(v.oldest_look, Some(50));
    }

    #[test]
    fn the_plan_is_bounded_and_oldest_first() {
        let without = names(&["off-1", "off-2", "off-3", "off-virt"]);
        let with = names(&["fresh", "old", "older", "never", "lost-virtual", "virt"]);
        let virtual_now: BTreeMap<String, u32> =
            [("off-virt".to_owned(), 1), ("virt".to_owned(), 2)].into();
        let virtual_before: BTreeSet<String> =
            names(&["lost-virtual", "virt"]).into_iter().collect();
        let looks: BTreeMap<String, Checked> = [
            ("fresh".to_owned(), looked(990, &[Fido])),
            ("old".to_owned(), looked(500, &[Fido])),
            ("older".to_owned(), looked(100, &[Hardware])),
            ("lost-virtual".to_owned(), looked(995, &[Virtual])),
        ]
        .into();
        let report = ReportConsole {
            without_mfa: &without,
            with_mfa: &with,
        };
        let plan_with = |offenders, typing_calls| {
            plan(
                report,
                &virtual_now,
                &virtual_before,
                &looks,
                1000,
                Budget {
                    offenders,
                    typing_calls,
                    max_age_seconds: 400,
                },
            )
        };
        // Two offenders (the cap), then: the lost virtual device, the never-typed user, and the
        // oldest look; "old" and "virt" wait for the next refresh, "fresh" needs no call.
        assert_eq!(
            plan_with(2, 3),
            ["off-1", "off-2", "lost-virtual", "never", "older"]
        );
        assert_eq!(
            plan_with(100, 100),
            [
                "off-1",
                "off-2",
                "off-3",
                "lost-virtual",
                "never",
                "older",
                "old",
                "virt"
            ],
            "offenders with a virtual device need no call; users with one come last"
        );
        let none = plan_with(0, 0);
        assert!(none.is_empty());
    }

    #[test]
    fn stale_looks_yield_to_fresher_facts() {
        let without = names(&["flagged-again"]);
        let with = names(&["lost-virtual", "removed-before-report"]);
        let facts = LiveFacts {
            virtual_devices: BTreeMap::new(),
            looks: [
                // Saw a hardware token at 50; the report of 80 flags the user again.
                ("flagged-again".to_owned(), looked(50, &[Hardware])),
                // Saw only a virtual device; ListVirtualMFADevices now shows none.
                ("lost-virtual".to_owned(), looked(90, &[Virtual])),
                // Saw no device at 60; the report of 80 says MFA.
                ("removed-before-report".to_owned(), looked(60, &[])),
            ]
            .into(),
            listed_at: 100,
            report_generated_at: Some(80),
        };
        let v = verdict(
            ReportConsole {
                without_mfa: &without,
                with_mfa: &with,
            },
            &facts,
        );
        assert_eq!(
            v.without_mfa.iter().map(String::as_str).collect::<Vec<_>>(),
            ["flagged-again", "lost-virtual"]
        );
        assert_eq!(v.corrected["lost-virtual"], Direction::Removed);
        assert!(
            !v.corrected.contains_key("flagged-again"),
            "the report is newer"
        );
        assert_eq!(v.strength["removed-before-report"], Strength::Unknown);
    }

    #[test]
    fn without_live_facts_the_report_stands() {
        let without = names(&["a", "b"]);
        let with = names(&["c"]);
        let v = verdict(
            ReportConsole {
                without_mfa: &without,
                with_mfa: &with,
            },
            &LiveFacts::default(),
        );
        assert_eq!(v.without_mfa.len(), 2);
        assert!(v.corrected.is_empty());
        assert_eq!(v.strength["c"], Strength::Unknown);
        assert_eq!(v.oldest_look, None);
    }
}
