//! The credential report CSV → [`AccountReport`]. All or nothing: a report with one bad row is
//! rejected whole, with an error naming the line, so a half-read report never replaces good data.

use std::borrow::Cow;
use std::hash::{BuildHasher, RandomState};

use csv::{ByteRecord, ReaderBuilder};

use super::hygiene::{At, Hygiene, Key, UserCredentials};
use super::model::{AccountReport, ConsoleUser, RootRow, UnixSeconds};
use super::timestamp;
use crate::arn::account_of_arn;

/// Reports larger than this are rejected unread (IAM's 5,000-user limit gives well under 2 MiB).
pub const MAX_REPORT_BYTES: usize = 64 * 1024 * 1024;

const ROOT_USER: &str = "<root_account>";
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Why a report was rejected. Line numbers count from 1, the header being line 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("report is {size} bytes, over the {limit}-byte limit")]
    TooLarge { size: usize, limit: usize },
    #[error("line {line}: {message}")]
    Line { line: u64, message: String },
    #[error("{0}")]
    Whole(String),
}

impl ReportError {
    fn line(line: u64, message: impl Into<String>) -> Self {
        Self::Line {
            line,
            message: message.into(),
        }
    }
}

/// Column positions, found by header name.
struct Columns {
    count: usize,
    user: usize,
    arn: usize,
    created: usize,
    password_enabled: usize,
    mfa_active: usize,
    password_last_used: Option<usize>,
    password_last_changed: Option<usize>,
    access_keys: [Option<usize>; 2],
    key_last_rotated: [Option<usize>; 2],
    key_last_used: [Option<usize>; 2],
}

impl Columns {
    fn from_header(header: &ByteRecord) -> Result<Self, ReportError> {
        let find = |name: &str| {
            header
                .iter()
                .position(|h| h.trim_ascii() == name.as_bytes())
        };
        let required = |name: &'static str| {
            find(name)
                .ok_or_else(|| ReportError::line(1, format!("missing required column {name:?}")))
        };
        Ok(Self {
            count: header.len(),
            user: required("user")?,
            arn: required("arn")?,
            created: required("user_creation_time")?,
            password_enabled: required("password_enabled")?,
            mfa_active: required("mfa_active")?,
            password_last_used: find("password_last_used"),
            password_last_changed: find("password_last_changed"),
            access_keys: [find("access_key_1_active"), find("access_key_2_active")],
            key_last_rotated: [
                find("access_key_1_last_rotated"),
                find("access_key_2_last_rotated"),
            ],
            key_last_used: [
                find("access_key_1_last_used_date"),
                find("access_key_2_last_used_date"),
            ],
        })
    }
}

/// One data row, seen through the header's columns. A row whose user name held commas that the
/// producer did not quote has `2k` extra fields (the name's `k` commas appear in the user and in
/// the ARN column); `Row` joins them back.
struct Row<'r> {
    record: &'r ByteRecord,
    line: u64,
    columns: &'r Columns,
    /// Extra fields the unquoted name added to each of the user and ARN columns.
    split: usize,
    user: Cow<'r, [u8]>,
    arn: Cow<'r, [u8]>,
}

impl<'r> Row<'r> {
    fn new(record: &'r ByteRecord, line: u64, columns: &'r Columns) -> Result<Self, ReportError> {
        let found = record.len();
        if found == columns.count {
            return Ok(Self {
                record,
                line,
                columns,
                split: 0,
                user: Cow::Borrowed(&record[columns.user]),
                arn: Cow::Borrowed(&record[columns.arn]),
            });
        }
        let wrong_count = || {
            ReportError::line(
                line,
                format!("expected {} fields, found {found}", columns.count),
            )
        };
        if columns.arn != columns.user + 1 {
            return Err(wrong_count());
        }
        let extra = found.checked_sub(columns.count).ok_or_else(wrong_count)?;
        let repaired =
            repair_unquoted_commas(record, columns.user, extra).ok_or_else(wrong_count)?;
        Ok(Self {
            record,
            line,
            columns,
            split: repaired.split,
            user: Cow::Owned(repaired.user),
            arn: Cow::Owned(repaired.arn),
        })
    }

    /// The raw field of a column other than user and ARN.
    fn field(&self, column: usize) -> &'r [u8] {
        let index = if column > self.columns.arn {
            column + 2 * self.split
        } else {
            column
        };
        &self.record[index]
    }

    fn str(&self, column: usize, name: &str) -> Result<&'r str, ReportError> {
        std::str::from_utf8(self.field(column))
            .map_err(|_| ReportError::line(self.line, format!("column {name}: not UTF-8")))
    }

    fn bool(&self, column: usize, name: &str) -> Result<bool, ReportError> {
        let value = self.str(column, name)?;
        parse_bool(value).ok_or_else(|| self.bad(name, "a boolean", value))
    }

    /// A boolean that may also be a sentinel (unknown).
    fn opt_bool(&self, column: usize, name: &str) -> Result<Option<bool>, ReportError> {
        let value = self.str(column, name)?;
        if is_sentinel(value) {
            return Ok(None);
        }
        parse_bool(value)
            .map(Some)
            .ok_or_else(|| self.bad(name, "a boolean", value))
    }

    fn timestamp(&self, column: usize, name: &str) -> Result<UnixSeconds, ReportError> {
        let value = self.str(column, name)?;
        timestamp::parse(value).ok_or_else(|| self.bad(name, "a timestamp", value))
    }

    /// A timestamp that may also be a sentinel (unknown).
    fn opt_timestamp(&self, column: usize, name: &str) -> Result<Option<UnixSeconds>, ReportError> {
        let value = self.str(column, name)?;
        if is_sentinel(value) {
            return Ok(None);
        }
        timestamp::parse(value)
            .map(Some)
            .ok_or_else(|| self.bad(name, "a timestamp", value))
    }

    /// A timestamp of an optional column: `None` when the column is absent or a sentinel.
    fn opt_column_timestamp(
        &self,
        column: Option<usize>,
        name: &str,
    ) -> Result<Option<UnixSeconds>, ReportError> {
        column.map_or(Ok(None), |c| self.opt_timestamp(c, name))
    }

    /// Access key `i` (0 or 1) as far as the report's columns tell.
    fn key(&self, i: usize) -> Result<Key, ReportError> {
        const NAMES: [[&str; 3]; 2] = [
            [
                "access_key_1_active",
                "access_key_1_last_rotated",
                "access_key_1_last_used_date",
            ],
            [
                "access_key_2_active",
                "access_key_2_last_rotated",
                "access_key_2_last_used_date",
            ],
        ];
        let c = self.columns;
        let [active, rotated, used] = NAMES[i];
        Ok(Key {
            active: c.access_keys[i].map_or(Ok(None), |col| self.opt_bool(col, active))?,
            last_rotated: self.opt_column_timestamp(c.key_last_rotated[i], rotated)?,
            last_used: self.opt_column_timestamp(c.key_last_used[i], used)?,
        })
    }

    fn bad(&self, column: &str, what: &str, value: &str) -> ReportError {
        ReportError::line(
            self.line,
            format!(
                "column {column}: expected {what}, found {:?}",
                truncate(value)
            ),
        )
    }

    fn account_id(&self) -> Result<&str, ReportError> {
        let arn = std::str::from_utf8(&self.arn)
            .map_err(|_| ReportError::line(self.line, "column arn: not UTF-8"))?;
        account_of_arn(arn).ok_or_else(|| self.bad("arn", "an IAM ARN", arn))
    }
}

/// Case-insensitive identities of user names, without allocating per name: a keyed hash (random
/// per parse) of the lower-cased name. Equal keys are only a hint: [`first_duplicate`]'s caller
/// compares the names themselves, so a collision is never taken for a duplicate.
#[derive(Default)]
struct NameKeys(RandomState);

impl NameKeys {
    fn key(&self, name: &str) -> u64 {
        let mut buffer = [0u8; 128];
        match buffer.get_mut(..name.len()) {
            Some(lower) if name.is_ascii() => {
                lower.copy_from_slice(name.as_bytes());
                lower.make_ascii_lowercase();
                self.0.hash_one(&*lower)
            }
            // Rare (IAM names are ASCII): hostile or very long names.
            _ => self.0.hash_one(name.to_lowercase().as_bytes()),
        }
    }
}

/// The earliest repeated name, as ((first line, its offset), (the repeating line, its offset)):
/// sorting the keys costs less than a hash map of them. `same` compares two rows' names, so a
/// mere hash collision is never taken for a duplicate.
type Seen = (u64, u64, u64);

fn first_duplicate(
    mut seen: Vec<Seen>,
    same: impl Fn(&Seen, &Seen) -> bool,
) -> Option<((u64, u64), (u64, u64))> {
    seen.sort_unstable();
    let mut found: Option<((u64, u64), (u64, u64))> = None;
    for group in seen.chunk_by(|a, b| a.0 == b.0).filter(|g| g.len() > 1) {
        for (i, later) in group.iter().enumerate().skip(1) {
            if let Some(first) = group[..i].iter().find(|earlier| same(earlier, later)) {
                if found.is_none_or(|(_, (again, _))| later.1 < again) {
                    found = Some(((first.1, first.2), (later.1, later.2)));
                }
            }
        }
    }
    found
}

/// The user name of the row at byte `offset` (to name a duplicate in an error).
fn user_at(bytes: &[u8], offset: u64, line: u64, columns: &Columns) -> Option<String> {
    let start = usize::try_from(offset).ok()?;
    let mut reader = ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes.get(start..)?);
    let mut record = ByteRecord::new();
    reader.read_byte_record(&mut record).ok()?;
    let row = Row::new(&record, line, columns).ok()?;
    String::from_utf8(row.user.into_owned()).ok()
}

/// A user and ARN rebuilt from a row whose name held unquoted commas.
#[derive(Debug, PartialEq, Eq)]
struct Repaired {
    user: Vec<u8>,
    arn: Vec<u8>,
    /// Extra fields the name's commas added to each of the user and ARN columns.
    split: usize,
}

/// moto writes a user name that holds commas without quoting it (`ann=lee,qa@corp,arn:…/ann=lee,qa@corp,…`),
/// so the row has `extra` more fields than the header: a name with `k` commas adds `k` to the
/// user column and `k` to the ARN column right after it. Joins them back, and accepts the result
/// only if the ARN really names this user; any other shape is `None` (a wrong field count).
fn repair_unquoted_commas(
    record: &ByteRecord,
    user_column: usize,
    extra: usize,
) -> Option<Repaired> {
    if extra == 0 || !extra.is_multiple_of(2) {
        return None;
    }
    let k = extra / 2;
    let join = |from: usize| {
        let fields: Vec<&[u8]> = record.iter().skip(from).take(k + 1).collect();
        (fields.len() == k + 1).then(|| fields.join(&b","[..]))
    };
    let user = join(user_column)?;
    let arn = join(user_column + k + 1)?;
    let mut suffix = Vec::with_capacity(user.len() + 1);
    suffix.push(b'/');
    suffix.extend_from_slice(&user);
    (arn.starts_with(b"arn:") && arn.ends_with(&suffix)).then_some(Repaired {
        user,
        arn,
        split: k,
    })
}

fn parse_bool(value: &str) -> Option<bool> {
    if value.eq_ignore_ascii_case("true") {
        Some(true)
    } else if value.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// `N/A`, `no_information`, `not_supported`: the report's ways of saying "unknown".
fn is_sentinel(value: &str) -> bool {
    matches!(value, "N/A" | "no_information" | "not_supported")
}

fn truncate(value: &str) -> &str {
    match value.char_indices().nth(64) {
        Some((i, _)) => &value[..i],
        None => value,
    }
}

/// What a parse keeps besides the counts and the console users without MFA.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Keep {
    /// Run the credential-hygiene checks at that moment (see [`super::hygiene`]), keeping the
    /// users who fail one.
    pub hygiene: Option<At>,
    /// Keep the console users with MFA (live MFA checks look at them; nothing else needs them).
    pub console_users_with_mfa: bool,
}

/// Parses a credential report (CSV bytes) into an [`AccountReport`], keeping everything but
/// the hygiene findings.
pub fn parse(bytes: &[u8]) -> Result<AccountReport, ReportError> {
    parse_keeping(
        bytes,
        Keep {
            hygiene: None,
            console_users_with_mfa: true,
        },
    )
}

/// Parses a credential report, keeping what `keep` asks for.
pub fn parse_keeping(bytes: &[u8], keep: Keep) -> Result<AccountReport, ReportError> {
    let hygiene = keep.hygiene;
    if bytes.len() > MAX_REPORT_BYTES {
        return Err(ReportError::TooLarge {
            size: bytes.len(),
            limit: MAX_REPORT_BYTES,
        });
    }
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    if let Err(e) = std::str::from_utf8(bytes) {
        let line = 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&c| c == b'\n')
            .count();
        return Err(ReportError::line(line as u64, "not UTF-8"));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ReportError::Whole("report is empty".into()));
    }

    let mut reader = ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut record = ByteRecord::new();
    let csv_error = |e: csv::Error| {
        let line = e.position().map_or(0, |p| p.line());
        ReportError::line(line, format!("malformed CSV: {e}"))
    };
    if !reader.read_byte_record(&mut record).map_err(csv_error)? {
        return Err(ReportError::Whole("report is empty".into()));
    }
    let columns = Columns::from_header(&record)?;

    let mut report = AccountReport {
        account_id: String::new(),
        users: 0,
        console_users: 0,
        console_users_mfa_enabled: 0,
        users_mfa_enabled: 0,
        console_users_without_mfa: Vec::new(),
        console_users_with_mfa: Vec::new(),
        root: None,
        hygiene: hygiene.map(|at| Hygiene::new(at.thresholds)),
    };
    let mut rows = 0u64;
    // IAM user names are unique in an account, case-insensitively: case-folded name → its line.
    let names = NameKeys::default();
    // (name key, line, byte offset of the row): the row is read again only to name a duplicate.
    let mut seen: Vec<Seen> = Vec::with_capacity(bytes.len() / 200);
    while reader.read_byte_record(&mut record).map_err(csv_error)? {
        let line = record.position().map_or(0, |p| p.line());
        if record.len() == 1 && record[0].is_empty() {
            continue; // a blank line
        }
        rows += 1;
        let row = Row::new(&record, line, &columns)?;

        let account = row.account_id()?;
        if report.account_id.is_empty() {
            report.account_id = account.to_owned();
        } else if report.account_id != account {
            return Err(ReportError::line(
                line,
                format!(
                    "account {account} differs from account {} of earlier rows",
                    report.account_id
                ),
            ));
        }

        if *row.user == *ROOT_USER.as_bytes() {
            if report.root.is_some() {
                return Err(ReportError::line(line, "second <root_account> row"));
            }
            report.root = Some(root_row(&row)?);
            continue;
        }
        let name = user_row(&row, &mut report, keep)?;
        let offset = record.position().map_or(0, |p| p.byte());
        seen.push((names.key(name), line, offset));
    }
    if rows == 0 {
        return Err(ReportError::Whole("report has a header but no rows".into()));
    }
    let name_at = |s: &Seen| user_at(bytes, s.2, s.1, &columns).map(|n| n.to_lowercase());
    let same = |a: &Seen, b: &Seen| name_at(a).is_some_and(|x| Some(x) == name_at(b));
    if let Some(((first, _), (again, offset))) = first_duplicate(seen, same) {
        let name = user_at(bytes, offset, again, &columns).unwrap_or_default();
        return Err(ReportError::line(
            again,
            format!(
                "user {:?} already appears on line {first} (IAM user names are unique in an account, case-insensitively)",
                truncate(&name)
            ),
        ));
    }
    report
        .console_users_without_mfa
        .sort_unstable_by(|a, b| a.name.cmp(&b.name));
    report
        .console_users_with_mfa
        .sort_unstable_by(|a, b| a.name.cmp(&b.name));
    if let (Some(h), Some(at)) = (&mut report.hygiene, hygiene) {
        h.finish(at.keep);
    }
    Ok(report)
}

/// Counts one user row into `report`; returns the user's name.
fn user_row<'r>(
    row: &'r Row<'_>,
    report: &mut AccountReport,
    keep: Keep,
) -> Result<&'r str, ReportError> {
    let hygiene = keep.hygiene;
    let c = row.columns;
    let created = row.timestamp(c.created, "user_creation_time")?;
    let console = row.bool(c.password_enabled, "password_enabled")?;
    let mfa = row.bool(c.mfa_active, "mfa_active")?;
    let last_used = row.opt_column_timestamp(c.password_last_used, "password_last_used")?;
    let name = std::str::from_utf8(&row.user)
        .map_err(|_| ReportError::line(row.line, "column user: not UTF-8"))?;
    if name.is_empty() {
        return Err(ReportError::line(row.line, "column user: empty"));
    }

    if let (Some(at), Some(h)) = (hygiene, report.hygiene.as_mut()) {
        let credentials = UserCredentials {
            name,
            created,
            console,
            password_last_used: last_used,
            password_last_changed: row
                .opt_column_timestamp(c.password_last_changed, "password_last_changed")?,
            keys: [row.key(0)?, row.key(1)?],
        };
        h.check(&credentials, at);
    }
    report.users += 1;
    report.users_mfa_enabled += u64::from(mfa);
    if console {
        report.console_users += 1;
        let user = ConsoleUser {
            name: name.to_owned(),
            created,
            password_last_used: last_used,
        };
        if mfa {
            report.console_users_mfa_enabled += 1;
            if keep.console_users_with_mfa {
                report.console_users_with_mfa.push(user);
            }
        } else {
            report.console_users_without_mfa.push(user);
        }
    }
    Ok(name)
}

fn root_row(row: &Row<'_>) -> Result<RootRow, ReportError> {
    let c = row.columns;
    let keys = [row.key(0)?, row.key(1)?];
    // Unknown without any access-key column; a sentinel counts as not active.
    let access_keys_active = c.access_keys.iter().any(Option::is_some).then(|| {
        keys.iter()
            .map(|k| u8::from(k.active == Some(true)))
            .sum::<u8>()
    });
    Ok(RootRow {
        access_keys_last_used: keys.iter().filter_map(|k| k.last_used).max(),
        password_enabled: row.opt_bool(c.password_enabled, "password_enabled")?,
        mfa_active: row.bool(c.mfa_active, "mfa_active")?,
        access_keys_active,
        password_last_used: row.opt_column_timestamp(c.password_last_used, "password_last_used")?,
    })
}

#[cfg(test)]
mod tests;
