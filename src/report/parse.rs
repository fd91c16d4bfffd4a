//! The credential report CSV → [`AccountReport`]. All or nothing: a report with one bad row is
//! rejected whole, with an error naming the line, so a half-read report never replaces good data.

use std::borrow::Cow;

use csv::{ByteRecord, ReaderBuilder};

use super::model::{AccountReport, NonCompliantUser, RootRow, UnixSeconds};
use super::timestamp;

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
    access_keys: [Option<usize>; 2],
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
            access_keys: [find("access_key_1_active"), find("access_key_2_active")],
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
        let extra = found.checked_sub(columns.count).ok_or_else(wrong_count)?;
        if extra % 2 != 0 || columns.arn != columns.user + 1 {
            return Err(wrong_count());
        }
        let k = extra / 2;
        let join = |from: usize| {
            let mut joined = Vec::new();
            for (i, field) in record.iter().skip(from).take(k + 1).enumerate() {
                if i > 0 {
                    joined.push(b',');
                }
                joined.extend_from_slice(field);
            }
            joined
        };
        let user = join(columns.user);
        let arn = join(columns.user + k + 1);
        // Accept the rebuilt row only if the ARN really names this user.
        let mut suffix = Vec::with_capacity(user.len() + 1);
        suffix.push(b'/');
        suffix.extend_from_slice(&user);
        if !arn.starts_with(b"arn:") || !arn.ends_with(&suffix) {
            return Err(wrong_count());
        }
        Ok(Self {
            record,
            line,
            columns,
            split: k,
            user: Cow::Owned(user),
            arn: Cow::Owned(arn),
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

/// `arn:PARTITION:iam::ACCOUNT:RESOURCE` → (ACCOUNT, RESOURCE), ACCOUNT being 12 digits.
pub fn split_iam_arn(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(_partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    (account.len() == 12 && account.bytes().all(|c| c.is_ascii_digit()))
        .then_some((account, resource))
}

fn account_of_arn(arn: &str) -> Option<&str> {
    split_iam_arn(arn).map(|(account, _)| account)
}

/// The account id if `arn` is an account's root user (`arn:PARTITION:iam::ACCOUNT:root`).
pub fn root_account_of_arn(arn: &str) -> Option<&str> {
    match split_iam_arn(arn) {
        Some((account, "root")) => Some(account),
        _ => None,
    }
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

/// Parses a credential report (CSV bytes) into an [`AccountReport`].
pub fn parse(bytes: &[u8]) -> Result<AccountReport, ReportError> {
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
        root: None,
    };
    let mut rows = 0u64;
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
        user_row(&row, &mut report)?;
    }
    if rows == 0 {
        return Err(ReportError::Whole("report has a header but no rows".into()));
    }
    report
        .console_users_without_mfa
        .sort_unstable_by(|a, b| a.name.cmp(&b.name));
    Ok(report)
}

fn user_row(row: &Row<'_>, report: &mut AccountReport) -> Result<(), ReportError> {
    let c = row.columns;
    let created = row.timestamp(c.created, "user_creation_time")?;
    let console = row.bool(c.password_enabled, "password_enabled")?;
    let mfa = row.bool(c.mfa_active, "mfa_active")?;
    let last_used = match c.password_last_used {
        Some(column) => row.opt_timestamp(column, "password_last_used")?,
        None => None,
    };
    let name = std::str::from_utf8(&row.user)
        .map_err(|_| ReportError::line(row.line, "column user: not UTF-8"))?;
    if name.is_empty() {
        return Err(ReportError::line(row.line, "column user: empty"));
    }

    report.users += 1;
    report.users_mfa_enabled += u64::from(mfa);
    if console {
        report.console_users += 1;
        if mfa {
            report.console_users_mfa_enabled += 1;
        } else {
            report.console_users_without_mfa.push(NonCompliantUser {
                name: name.to_owned(),
                created,
                password_last_used: last_used,
            });
        }
    }
    Ok(())
}

fn root_row(row: &Row<'_>) -> Result<RootRow, ReportError> {
    let c = row.columns;
    let mut access_keys_active = None;
    for (column, name) in c
        .access_keys
        .iter()
        .zip(["access_key_1_active", "access_key_2_active"])
    {
        if let Some(column) = *column {
            let active = row.opt_bool(column, name)?.unwrap_or(false);
            *access_keys_active.get_or_insert(0u8) += u8::from(active);
        }
    }
    Ok(RootRow {
        password_enabled: row.opt_bool(c.password_enabled, "password_enabled")?,
        mfa_active: row.bool(c.mfa_active, "mfa_active")?,
        access_keys_active,
        password_last_used: match c.password_last_used {
            Some(column) => row.opt_timestamp(column, "password_last_used")?,
            None => None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 22 columns AWS writes.
    const HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";
    const T: &str = "2020-01-02T03:04:05+00:00";
    const T_SECS: i64 = 1_577_934_245;

    /// A full 22-field row: name, ARN resource, password_enabled, password_last_used, mfa,
    /// access keys 1 and 2.
    fn row(
        name: &str,
        resource: &str,
        password: &str,
        last_used: &str,
        mfa: &str,
        keys: [&str; 2],
    ) -> String {
        format!(
            "{name},arn:aws:iam::123456789012:{resource},{T},{password},{last_used},N/A,N/A,{mfa},{},N/A,N/A,N/A,N/A,{},N/A,N/A,N/A,N/A,false,N/A,false,N/A",
            keys[0], keys[1]
        )
    }

    fn user(name: &str, password: &str, mfa: &str) -> String {
        row(
            name,
            &format!("user/{name}"),
            password,
            "N/A",
            mfa,
            ["false", "false"],
        )
    }

    fn report(rows: &[String]) -> String {
        let mut s = HEADER.to_owned();
        for r in rows {
            s.push('\n');
            s.push_str(r);
        }
        s.push('\n');
        s
    }

    fn ok(csv: &str) -> AccountReport {
        match parse(csv.as_bytes()) {
            Ok(r) => r,
            Err(e) => panic!("rejected: {e}\n{csv}"),
        }
    }

    fn err(csv: &[u8]) -> String {
        match parse(csv) {
            Ok(r) => panic!("accepted: {r:?}"),
            Err(e) => e.to_string(),
        }
    }

    fn names(r: &AccountReport) -> Vec<&str> {
        r.console_users_without_mfa
            .iter()
            .map(|u| u.name.as_str())
            .collect()
    }

    #[test]
    fn counts_users() {
        let r = ok(&report(&[
            user("console-mfa", "true", "true"),
            user("console-nomfa", "TRUE", "False"),
            user("keys-only-mfa", "false", "true"),
            user("nothing", "false", "false"),
        ]));
        assert_eq!(r.account_id, "123456789012");
        assert_eq!(r.users, 4);
        assert_eq!(r.console_users, 2);
        assert_eq!(r.console_users_mfa_enabled, 1);
        assert_eq!(r.users_mfa_enabled, 2);
        assert_eq!(names(&r), ["console-nomfa"]);
        assert_eq!(r.console_users_without_mfa[0].created, T_SECS);
        assert_eq!(r.root, None);
    }

    #[test]
    fn non_compliant_users_are_sorted_by_name() {
        let r = ok(&report(&[
            user("zed", "true", "false"),
            user("Amy", "true", "false"),
            user("bea", "true", "false"),
        ]));
        assert_eq!(names(&r), ["Amy", "bea", "zed"]);
    }

    #[test]
    fn sentinels_are_unknown_not_zero() {
        let r = ok(&report(&[
            row("a", "user/a", "true", "N/A", "false", ["false", "false"]),
            row(
                "b",
                "user/b",
                "true",
                "no_information",
                "false",
                ["false", "false"],
            ),
            row("c", "user/c", "true", T, "false", ["false", "false"]),
        ]));
        let last: Vec<_> = r
            .console_users_without_mfa
            .iter()
            .map(|u| u.password_last_used)
            .collect();
        assert_eq!(last, [None, None, Some(T_SECS)]);
    }

    #[test]
    fn root_row_in_all_its_forms() {
        let cases = [
            (
                "not_supported",
                "not_supported",
                "true",
                ["false", "false"],
                None,
                None,
                true,
                0,
            ),
            (
                "true",
                T,
                "true",
                ["true", "false"],
                Some(true),
                Some(T_SECS),
                true,
                1,
            ),
            (
                "false",
                "N/A",
                "false",
                ["true", "true"],
                Some(false),
                None,
                false,
                2,
            ),
            (
                "true",
                "no_information",
                "false",
                ["false", "false"],
                Some(true),
                None,
                false,
                0,
            ),
        ];
        for (password, last_used, mfa, keys, want_password, want_last, want_mfa, want_keys) in cases
        {
            let r = ok(&report(&[
                row(ROOT_USER, "root", password, last_used, mfa, keys),
                user("alice", "true", "true"),
            ]));
            assert_eq!(r.users, 1, "root is never a user");
            assert_eq!(
                r.root,
                Some(RootRow {
                    password_enabled: want_password,
                    mfa_active: want_mfa,
                    access_keys_active: Some(want_keys),
                    password_last_used: want_last,
                }),
                "{password} {last_used} {mfa} {keys:?}"
            );
        }
    }

    #[test]
    fn root_only_report_has_no_users() {
        let r = ok(&report(&[row(
            ROOT_USER,
            "root",
            "not_supported",
            "N/A",
            "true",
            ["false", "false"],
        )]));
        assert_eq!((r.users, r.console_users), (0, 0));
        assert!(r.root.is_some());
    }

    #[test]
    fn unusual_user_names() {
        let long = "a".repeat(64);
        let names_in = [
            "a+b=c,d.e@f_g-h",
            "x.y@example.com",
            long.as_str(),
            "ünïcödé",
        ];
        let rows: Vec<String> = names_in
            .iter()
            .map(|n| {
                let quoted = if n.contains(',') {
                    format!("\"{n}\"")
                } else {
                    n.to_string()
                };
                row(
                    &quoted,
                    &format!("user/{quoted}"),
                    "true",
                    "N/A",
                    "false",
                    ["false", "false"],
                )
                .replacen(&format!("user/{quoted}"), &format!("user/{n}"), 1)
            })
            .collect();
        // The ARN of a quoted name must be quoted too.
        let rows: Vec<String> = rows
            .into_iter()
            .map(|r| {
                r.replace(
                    "arn:aws:iam::123456789012:user/a+b=c,d.e@f_g-h",
                    "\"arn:aws:iam::123456789012:user/a+b=c,d.e@f_g-h\"",
                )
            })
            .collect();
        let r = ok(&report(&rows));
        let mut want = names_in.to_vec();
        want.sort_unstable();
        assert_eq!(names(&r), want);
    }

    #[test]
    fn unquoted_commas_are_rebuilt_from_the_arn() {
        // moto writes `ann=lee,qa@corp` unquoted: two extra fields.
        let moto = user("ann=lee,qa@corp", "true", "false");
        let two = row(
            "x,y,z",
            "user/dev/x,y,z",
            "true",
            T,
            "false",
            ["false", "false"],
        );
        let r = ok(&report(&[moto, two, user("plain", "true", "false")]));
        assert_eq!(names(&r), ["ann=lee,qa@corp", "plain", "x,y,z"]);
        assert_eq!(
            r.console_users_without_mfa[2].password_last_used,
            Some(T_SECS)
        );
        assert_eq!(r.users, 3);
    }

    #[test]
    fn unquoted_commas_that_do_not_match_the_arn_are_rejected() {
        let bad = row(
            "a,b",
            "user/a,c",
            "true",
            "N/A",
            "false",
            ["false", "false"],
        );
        let e = err(report(&[bad]).as_bytes());
        assert!(e.starts_with("line 2: expected 22 fields, found 24"), "{e}");
    }

    #[test]
    fn bom_and_crlf() {
        let text = report(&[
            user("alice", "true", "false"),
            user("bob", "false", "false"),
        ])
        .replace('\n', "\r\n");
        let mut bytes = UTF8_BOM.to_vec();
        bytes.extend_from_slice(text.as_bytes());
        let r = parse(&bytes).unwrap();
        assert_eq!(names(&r), ["alice"]);
        assert_eq!(r.users, 2);
    }

    #[test]
    fn columns_by_name_extra_ignored() {
        let csv = "extra,mfa_active,arn,user,password_enabled,user_creation_time\n\
                   x,false,arn:aws-us-gov:iam::210987654321:user/u,u,true,2020-01-02T03:04:05Z\n";
        let r = ok(csv);
        assert_eq!(r.account_id, "210987654321");
        assert_eq!(names(&r), ["u"]);
    }

    #[test]
    fn blank_lines_are_skipped() {
        let csv = report(&[user("a", "true", "false")]) + "\n\n";
        assert_eq!(ok(&csv).users, 1);
    }

    #[test]
    fn rejections_name_the_line() {
        let good = user("alice", "true", "false");
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"".to_vec(), "report is empty"),
            (b" \n".to_vec(), "report is empty"),
            (format!("{HEADER}\n").into_bytes(), "report has a header but no rows"),
            (
                "user,arn,password_enabled,mfa_active\nu,arn:aws:iam::123456789012:user/u,true,true\n".into(),
                "line 1: missing required column \"user_creation_time\"",
            ),
            (report(&[good.clone(), "bob,arn:aws:iam::123456789012:user/bob".into()]).into_bytes(), "line 3: expected 22 fields, found 2"),
            (report(&[user("bob", "yes", "false")]).into_bytes(), "line 2: column password_enabled: expected a boolean, found \"yes\""),
            (report(&[user("bob", "true", "N/A")]).into_bytes(), "line 2: column mfa_active: expected a boolean, found \"N/A\""),
            (report(&[good.clone(), good.replace(T, "2020-13-01T00:00:00+00:00")]).into_bytes(), "line 3: column user_creation_time: expected a timestamp"),
            (report(&[row("a", "user/a", "true", "yesterday", "false", ["false", "false"])]).into_bytes(), "line 2: column password_last_used: expected a timestamp"),
            (report(&[good.replace("123456789012", "12345")]).into_bytes(), "line 2: column arn: expected an IAM ARN"),
            (report(&[good.clone(), user("b", "true", "true").replace("123456789012", "999999999999")]).into_bytes(), "line 3: account 999999999999 differs"),
            (report(&[row(ROOT_USER, "root", "true", "N/A", "true", ["maybe", "false"])]).into_bytes(), "line 2: column access_key_1_active: expected a boolean"),
            (report(&[row(ROOT_USER, "root", "true", "N/A", "true", ["false", "false"]), row(ROOT_USER, "root", "true", "N/A", "true", ["false", "false"])]).into_bytes(), "line 3: second <root_account> row"),
            (report(&[good.clone(), ",arn:aws:iam::123456789012:user/x,2020-01-02T03:04:05Z,true,N/A,N/A,N/A,false,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A".into()]).into_bytes(), "line 3: column user: empty"),
        ];
        for (input, want) in cases {
            let e = err(&input);
            assert!(e.starts_with(want), "got {e:?}, want {want:?}");
        }
    }

    #[test]
    fn not_utf8_names_the_line() {
        let mut bytes = report(&[user("alice", "true", "false")]).into_bytes();
        bytes.extend_from_slice(b"b\xFFb,arn:aws:iam::123456789012:user/b\n");
        assert_eq!(err(&bytes), "line 3: not UTF-8");
    }

    #[test]
    fn too_large_is_rejected_unread() {
        let bytes = vec![b'a'; MAX_REPORT_BYTES + 1];
        assert_eq!(
            parse(&bytes),
            Err(ReportError::TooLarge {
                size: MAX_REPORT_BYTES + 1,
                limit: MAX_REPORT_BYTES
            })
        );
    }

    #[test]
    fn root_arn() {
        assert_eq!(
            root_account_of_arn("arn:aws:iam::123456789012:root"),
            Some("123456789012")
        );
        assert_eq!(
            root_account_of_arn("arn:aws-cn:iam::123456789012:root"),
            Some("123456789012")
        );
        assert_eq!(
            root_account_of_arn("arn:aws:iam::123456789012:user/root"),
            None
        );
        assert_eq!(
            root_account_of_arn("arn:aws:iam::123456789012:mfa/root-account-mfa-device"),
            None
        );
        assert_eq!(root_account_of_arn("arn:aws:sts::123456789012:root"), None);
    }
}
