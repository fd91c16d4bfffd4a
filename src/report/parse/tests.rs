//! Unit tests of the parser: small inline reports, one behaviour each.

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
    for (password, last_used, mfa, keys, want_password, want_last, want_mfa, want_keys) in cases {
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
                access_keys_last_used: None,
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
        (report(&[good.clone(), user("bob", "true", "true"), good.clone()]).into_bytes(), "line 4: user \"alice\" already appears on line 2"),
        (report(&[user("Bob", "false", "false"), good.clone(), user("bOB", "true", "false")]).into_bytes(), "line 4: user \"bOB\" already appears on line 2"),
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

fn record(fields: &[&str]) -> ByteRecord {
    ByteRecord::from(fields.to_vec())
}

#[test]
fn repair_joins_a_name_split_by_unquoted_commas() {
    // "ann=lee,qa@corp" split once in the name and once in the ARN.
    let r = record(&[
        "ann=lee",
        "qa@corp",
        "arn:aws:iam::123456789012:user/ann=lee",
        "qa@corp",
        "2020-01-02T03:04:05+00:00",
    ]);
    assert_eq!(
        repair_unquoted_commas(&r, 0, 2),
        Some(Repaired {
            user: b"ann=lee,qa@corp".to_vec(),
            arn: b"arn:aws:iam::123456789012:user/ann=lee,qa@corp".to_vec(),
            split: 1,
        })
    );
    // Two commas: two extra fields in each column.
    let r = record(&[
        "a",
        "b",
        "c",
        "arn:aws:iam::123456789012:user/path/a",
        "b",
        "c",
        "t",
    ]);
    let repaired = repair_unquoted_commas(&r, 0, 4).unwrap();
    assert_eq!(repaired.user, b"a,b,c");
    assert_eq!(repaired.split, 2);
}

#[test]
fn repair_refuses_what_is_not_a_split_name() {
    let r = record(&["a", "b", "arn:aws:iam::123456789012:user/a", "c", "t"]);
    assert_eq!(
        repair_unquoted_commas(&r, 0, 2),
        None,
        "ARN names another user"
    );
    let r = record(&["a", "b", "c", "t"]);
    assert_eq!(repair_unquoted_commas(&r, 0, 1), None, "odd extra fields");
    assert_eq!(repair_unquoted_commas(&r, 0, 0), None, "nothing to repair");
    let r = record(&["a", "b", "xrn:aws:iam::123456789012:user/a", "b"]);
    assert_eq!(repair_unquoted_commas(&r, 0, 2), None, "not an ARN");
    let r = record(&["a", "b", "arn:x/a"]);
    assert_eq!(repair_unquoted_commas(&r, 0, 4), None, "too few fields");
}

#[test]
fn hygiene_runs_only_when_asked_and_reads_the_key_columns() {
    use crate::report::hygiene::{At, Thresholds};
    const DAY: i64 = 24 * 3600;
    // alice: console password never used, set with the user on T; two active keys, key 1
    // rotated on T and used on T.
    let alice = format!(
        "alice,arn:aws:iam::123456789012:user/alice,{T},true,no_information,{T},N/A,true,true,{T},{T},us-east-1,iam,true,{T},N/A,N/A,N/A,false,N/A,false,N/A"
    );
    let csv = report(&[alice, user("bob", "true", "true")]);
    assert_eq!(ok(&csv).hygiene, None);
    let at = At {
        now: T_SECS + 100 * DAY,
        thresholds: Thresholds::default(),
        keep: 1000,
    };
    let keep = |at| Keep {
        hygiene: Some(at),
        console_users_with_mfa: false,
    };
    let r = parse_keeping(csv.as_bytes(), keep(at)).unwrap();
    let h = r.hygiene.unwrap();
    // bob's password was never used either (N/A): both count from T, 100 days ago.
    assert_eq!(
        h.password_unused,
        [("alice".to_owned(), T_SECS), ("bob".to_owned(), T_SECS)]
    );
    assert_eq!(h.two_active_keys, ["alice"]);
    assert_eq!(h.keys_unused.len(), 2, "{:?}", h.keys_unused);
    assert_eq!(h.rotation_overdue.len(), 2);
    let r = parse_keeping(
        csv.as_bytes(),
        keep(At {
            now: T_SECS + 10 * DAY,
            ..at
        }),
    )
    .unwrap();
    let h = r.hygiene.unwrap();
    assert!(
        h.password_unused.is_empty() && h.keys_unused.is_empty() && h.rotation_overdue.is_empty()
    );
    assert_eq!(h.two_active_keys, ["alice"], "not a matter of time");
}

#[test]
fn name_keys_fold_case_the_same_way_for_ascii_and_unicode() {
    let keys = NameKeys::default();
    assert_eq!(keys.key("Bob"), keys.key("bOB"));
    assert_ne!(keys.key("bob"), keys.key("bob2"));
    assert_eq!(keys.key("ÄNNE"), keys.key("änne"));
    // U+212A KELVIN SIGN lower-cases to an ASCII k: both paths agree.
    assert_eq!(keys.key("\u{212A}im"), keys.key("kim"));
    let long = "X".repeat(200);
    assert_eq!(
        keys.key(&long),
        keys.key(&long.to_lowercase()),
        "past the stack buffer"
    );
    assert_ne!(keys.key(&long), keys.key(&"x".repeat(199)));
}

#[test]
fn a_hash_collision_is_not_a_duplicate() {
    // Two different names given the same key: only the names decide.
    let seen = vec![(7, 2, 100), (7, 3, 200), (9, 4, 300)];
    assert_eq!(first_duplicate(seen.clone(), |_, _| false), None);
    assert_eq!(
        first_duplicate(seen, |_, _| true),
        Some(((2, 100), (3, 200)))
    );
    // The earliest repeat wins, whatever the key order.
    let seen = vec![(1, 9, 0), (1, 10, 0), (2, 3, 0), (2, 5, 0)];
    assert_eq!(first_duplicate(seen, |_, _| true), Some(((3, 0), (5, 0))));
}

#[test]
fn console_users_with_mfa_are_kept_only_when_asked() {
    let csv = report(&[user("a", "true", "true"), user("b", "true", "false")]);
    assert_eq!(ok(&csv).console_users_with_mfa.len(), 1);
    let lean = parse_keeping(csv.as_bytes(), Keep::default()).unwrap();
    assert!(lean.console_users_with_mfa.is_empty());
    assert_eq!(lean.console_users_mfa_enabled, 1, "the count stays");
    assert_eq!(lean.console_users_without_mfa.len(), 1);
}
