//! Credential hygiene, pure: the checks auditors run next to "MFA for console users", from the
//! same report — console passwords and access keys left unused, keys not rotated, two active keys,
//! root in use. Evaluated row by row while the report is parsed, at the refresh's "now", so only
//! the users who fail a check are kept.
//!
//! | check | threshold (flag) | controls |
//! |---|---|---|
//! | console password unused | 45 d (`--hygiene.unused-after`) | CIS 1.12, Security Hub IAM.22, Config iam-user-unused-credentials-check |
//! | access key unused | 45 d (`--hygiene.unused-after`) | same |
//! | access key not rotated | 90 d (`--hygiene.rotate-after`) | CIS 1.14, Security Hub IAM.3, Config access-keys-rotated |
//! | two active access keys | — | CIS 1.13 |
//! | root used recently | 1 d (`--hygiene.root-used-within`, used by the alert) | CIS 1.7 |

use super::model::UnixSeconds;

/// The thresholds, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    pub unused_after: i64,
    pub rotate_after: i64,
    pub root_used_within: i64,
}

impl Default for Thresholds {
    fn default() -> Self {
        const DAY: i64 = 24 * 3600;
        Self {
            unused_after: 45 * DAY,
            rotate_after: 90 * DAY,
            root_used_within: DAY,
        }
    }
}

/// When to evaluate, against what, and how many users of each check to keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct At {
    pub now: UnixSeconds,
    pub thresholds: Thresholds,
    /// Users kept per check, in name order (the per-user series cap: no account can be given
    /// more series than that); the totals stay exact.
    pub keep: usize,
}

/// An access key as one row describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Key {
    /// `None`: the report has no such column, or a sentinel.
    pub active: Option<bool>,
    pub last_rotated: Option<UnixSeconds>,
    pub last_used: Option<UnixSeconds>,
}

/// One IAM user's credentials, as the checks need them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserCredentials<'a> {
    pub name: &'a str,
    pub created: UnixSeconds,
    pub console: bool,
    pub password_last_used: Option<UnixSeconds>,
    pub password_last_changed: Option<UnixSeconds>,
    pub keys: [Key; 2],
}

/// A failed key check: user, key number (1 or 2), the timestamp that failed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFinding {
    pub user: String,
    pub key: u8,
    pub at: UnixSeconds,
}

/// The users who fail a check, in report order (sorted by name when the parse ends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hygiene {
    pub thresholds: Thresholds,
    /// Console users whose password was not used within the threshold, with the time the count
    /// starts from: last use, else when the password was set, else the user's creation.
    pub password_unused: Vec<(String, UnixSeconds)>,
    /// Active keys not used within the threshold: last use, else creation (`last_rotated`).
    pub keys_unused: Vec<KeyFinding>,
    /// Active keys rotated longer ago than the rotation threshold.
    pub rotation_overdue: Vec<KeyFinding>,
    /// Users with both access keys active.
    pub two_active_keys: Vec<String>,
    /// How many fail each check: exact, whatever was kept.
    pub totals: Totals,
}

/// The number of findings of each check.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub password_unused: usize,
    pub keys_unused: usize,
    pub rotation_overdue: usize,
    pub two_active_keys: usize,
}

impl Hygiene {
    pub fn new(thresholds: Thresholds) -> Self {
        Self {
            thresholds,
            password_unused: Vec::new(),
            keys_unused: Vec::new(),
            rotation_overdue: Vec::new(),
            two_active_keys: Vec::new(),
            totals: Totals::default(),
        }
    }

    /// Runs every check on one user. Unknown values (sentinels) never fail a check.
    pub fn check(&mut self, user: &UserCredentials<'_>, at: At) {
        let t = at.thresholds;
        let older = |since: UnixSeconds, limit: i64| at.now.saturating_sub(since) > limit;
        if user.console && older(user.created, t.unused_after) {
            let since = user
                .password_last_used
                .or(user.password_last_changed)
                .unwrap_or(user.created);
            if older(since, t.unused_after) {
                self.password_unused.push((user.name.to_owned(), since));
            }
        }
        for (i, key) in user.keys.iter().enumerate() {
            if key.active != Some(true) {
                continue;
            }
            let number = u8::try_from(i + 1).unwrap_or(u8::MAX);
            let finding = |at: UnixSeconds| KeyFinding {
                user: user.name.to_owned(),
                key: number,
                at,
            };
            if let Some(since) = key.last_used.or(key.last_rotated) {
                if older(since, t.unused_after) {
                    self.keys_unused.push(finding(since));
                }
            }
            if let Some(rotated) = key.last_rotated {
                if older(rotated, t.rotate_after) {
                    self.rotation_overdue.push(finding(rotated));
                }
            }
        }
        if user.keys.iter().all(|k| k.active == Some(true)) {
            self.two_active_keys.push(user.name.to_owned());
        }
    }

    /// Counts the findings, then keeps the first `keep` of each check in name order (the order
    /// the per-user cap keeps), so memory stays bounded in large Organizations.
    pub fn finish(&mut self, keep: usize) {
        self.totals = Totals {
            password_unused: self.password_unused.len(),
            keys_unused: self.keys_unused.len(),
            rotation_overdue: self.rotation_overdue.len(),
            two_active_keys: self.two_active_keys.len(),
        };
        self.password_unused.sort();
        self.keys_unused
            .sort_by(|a, b| (&a.user, a.key).cmp(&(&b.user, b.key)));
        self.rotation_overdue
            .sort_by(|a, b| (&a.user, a.key).cmp(&(&b.user, b.key)));
        self.two_active_keys.sort();
        self.password_unused.truncate(keep);
        self.keys_unused.truncate(keep);
        self.rotation_overdue.truncate(keep);
        self.two_active_keys.truncate(keep);
        self.password_unused.shrink_to_fit();
        self.keys_unused.shrink_to_fit();
        self.rotation_overdue.shrink_to_fit();
        self.two_active_keys.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 24 * 3600;
    const NOW: i64 = 1_000 * DAY;

    fn at() -> At {
        At {
            now: NOW,
            thresholds: Thresholds::default(),
            keep: 1000,
        }
    }

    fn user(name: &str) -> UserCredentials<'_> {
        UserCredentials {
            name,
            created: NOW - 400 * DAY,
            console: true,
            password_last_used: Some(NOW - DAY),
            password_last_changed: None,
            keys: [Key::default(); 2],
        }
    }

    fn key(last_rotated: i64, last_used: Option<i64>) -> Key {
        Key {
            active: Some(true),
            last_rotated: Some(NOW - last_rotated * DAY),
            last_used: last_used.map(|d| NOW - d * DAY),
        }
    }

    #[test]
    fn passwords_just_inside_and_just_outside() {
        let mut h = Hygiene::new(Thresholds::default());
        let inside = UserCredentials {
            password_last_used: Some(NOW - 45 * DAY),
            ..user("inside")
        };
        let outside = UserCredentials {
            password_last_used: Some(NOW - 45 * DAY - 1),
            ..user("outside")
        };
        let never_used_old = UserCredentials {
            password_last_used: None,
            password_last_changed: Some(NOW - 60 * DAY),
            ..user("set-60d-ago")
        };
        let never_used_new_password = UserCredentials {
            password_last_used: None,
            password_last_changed: Some(NOW - 10 * DAY),
            ..user("set-10d-ago")
        };
        let new_user = UserCredentials {
            created: NOW - 10 * DAY,
            password_last_used: None,
            ..user("new")
        };
        let no_console = UserCredentials {
            console: false,
            password_last_used: None,
            ..user("keys-only")
        };
        for u in [
            inside,
            outside,
            never_used_old,
            never_used_new_password,
            new_user,
            no_console,
        ] {
            h.check(&u, at());
        }
        assert_eq!(
            h.password_unused,
            [
                ("outside".to_owned(), NOW - 45 * DAY - 1),
                ("set-60d-ago".to_owned(), NOW - 60 * DAY)
            ]
        );
    }

    #[test]
    fn keys_unused_and_rotation() {
        let mut h = Hygiene::new(Thresholds::default());
        let users = [
            UserCredentials {
                keys: [key(100, Some(1)), Key::default()],
                ..user("used-old-key")
            },
            UserCredentials {
                keys: [key(50, None), Key::default()],
                ..user("never-used-50d")
            },
            UserCredentials {
                keys: [key(40, None), Key::default()],
                ..user("never-used-40d")
            },
            UserCredentials {
                keys: [key(89, Some(46)), key(91, Some(2))],
                ..user("two")
            },
            UserCredentials {
                keys: [
                    Key {
                        active: Some(false),
                        ..key(500, Some(400))
                    },
                    Key::default(),
                ],
                ..user("inactive")
            },
            UserCredentials {
                keys: [
                    Key {
                        last_rotated: None,
                        ..key(0, None)
                    },
                    Key::default(),
                ],
                ..user("unknown-dates")
            },
        ];
        for u in &users {
            h.check(u, at());
        }
        h.finish(1000);
        let keys = |f: &[KeyFinding]| {
            f.iter()
                .map(|k| (k.user.clone(), k.key))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            keys(&h.keys_unused),
            [("never-used-50d".to_owned(), 1), ("two".to_owned(), 1)]
        );
        assert_eq!(
            keys(&h.rotation_overdue),
            [("two".to_owned(), 2), ("used-old-key".to_owned(), 1)]
        );
        assert_eq!(h.two_active_keys, ["two"]);
        assert_eq!(h.rotation_overdue[1].at, NOW - 100 * DAY);
        assert_eq!(h.totals.rotation_overdue, 2);
        h.finish(1);
        assert_eq!(h.rotation_overdue.len(), 1, "kept: the first in name order");
        assert_eq!(h.rotation_overdue[0].user, "two");
        assert_eq!(h.totals.rotation_overdue, 2, "the total stays exact");
    }
}
