//! Several report files (one account each) through the real accounts → fleet → collector path:
//! per-account series, the global per-user cap, and a duplicate account rejected.

use std::sync::Arc;
use std::time::Duration;

use iam_mfa_exporter::accounts::{Accounts, Selection};
use iam_mfa_exporter::collector::{BuildInfo, Collector};
use iam_mfa_exporter::fleet::Fleet;
use iam_mfa_exporter::server::{encode, Format};
use iam_mfa_exporter::state::Shared;

use crate::common::{repo_path, value};

fn run(files: &[&str], cap: usize) -> (bool, String) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let shared = Arc::new(Shared::new());
    let registry = Collector::new(
        Arc::clone(&shared),
        BuildInfo {
            version: "t".into(),
            revision: "t".into(),
        },
        cap,
    )
    .into_registry();
    let selection = Selection {
        report_files: files.iter().map(|f| repo_path(f)).collect(),
        ..Selection::default()
    };
    let ok = runtime.block_on(async {
        let accounts = Accounts::new(selection, None).await;
        Fleet::new(
            accounts,
            shared,
            Duration::from_secs(60),
            Duration::from_secs(30),
            2,
        )
        .refresh_once()
        .await
    });
    (ok, encode(&registry, Format::PrometheusText).unwrap())
}

#[test]
fn accounts_are_separate_and_the_user_cap_is_global() {
    let (ok, body) = run(
        &[
            "examples/credential-report.csv",
            "tests/fixtures/root-keys-no-mfa.csv",
            "tests/fixtures/org-member-root-no-password.csv",
        ],
        2,
    );
    assert!(ok);
    assert_eq!(
        value(&body, "aws_iam_users{account_id=\"123456789012\"}"),
        Some(7.0)
    );
    assert_eq!(
        value(&body, "aws_iam_users{account_id=\"111122223333\"}"),
        Some(1.0)
    );
    assert_eq!(
        value(&body, "aws_iam_users{account_id=\"210987654321\"}"),
        Some(1.0)
    );
    assert_eq!(
        value(
            &body,
            "aws_iam_root_access_keys_active{account_id=\"111122223333\"}"
        ),
        Some(2.0)
    );
    // Totals stay exact; the cap of 2 per-user series is shared fairly: the account with one
    // offender (111122223333's legacy) keeps its series, examples/… gets the rest (bob only).
    assert_eq!(
        value(
            &body,
            "aws_iam_console_users_without_mfa{account_id=\"123456789012\"}"
        ),
        Some(3.0)
    );
    let per_user: Vec<&str> = body
        .lines()
        .filter(|l| l.starts_with("aws_iam_console_user_without_mfa{"))
        .collect();
    assert_eq!(
        per_user,
        [
            "aws_iam_console_user_without_mfa{account_id=\"123456789012\",user=\"bob\"} 1",
            "aws_iam_console_user_without_mfa{account_id=\"111122223333\",user=\"legacy\"} 1",
        ],
        "{body}"
    );
    assert_dropped(
        &body,
        &[
            ("123456789012", 2),
            ("111122223333", 0),
            ("210987654321", 0),
        ],
    );
}

/// `aws_iam_user_series_dropped` of each account.
fn assert_dropped(body: &str, want: &[(&str, u32)]) {
    for (account, dropped) in want {
        assert_eq!(
            value(
                body,
                &format!("aws_iam_user_series_dropped{{account_id=\"{account}\"}}")
            ),
            Some(f64::from(*dropped)),
            "{account}"
        );
    }
}

/// A report of `account` with `offenders` console users without MFA.
fn report_with_offenders(account: &str, offenders: usize) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("fair-cap");
    std::fs::create_dir_all(&dir).unwrap();
    let mut csv = String::from("user,arn,user_creation_time,password_enabled,mfa_active\n");
    for i in 0..offenders.max(1) {
        let console = if i < offenders { "true" } else { "false" };
        csv.push_str(&format!(
            "u{i:05},arn:aws:iam::{account}:user/u{i:05},2020-01-01T00:00:00+00:00,{console},false\n"
        ));
    }
    let path = dir.join(format!("{account}.csv"));
    std::fs::write(&path, csv).unwrap();
    path
}

#[test]
fn one_big_account_does_not_silence_the_others() {
    // 1,000 offenders in one account, 5 and 1 in two others, a cap of 30: the small accounts
    // keep every per-user series (so their alerts fire), the big one gets what is left.
    let files = [
        report_with_offenders("100000000001", 1000),
        report_with_offenders("100000000002", 5),
        report_with_offenders("100000000003", 1),
    ];
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let (ok, body) = run(&refs, 30);
    assert!(ok, "{body}");
    let series = |account: &str| {
        body.lines()
            .filter(|l| {
                l.starts_with(&format!(
                    "aws_iam_console_user_without_mfa{{account_id=\"{account}\","
                ))
            })
            .count()
    };
    assert_eq!(series("100000000001"), 24);
    assert_eq!(series("100000000002"), 5);
    assert_eq!(series("100000000003"), 1);
    assert_dropped(
        &body,
        &[
            ("100000000001", 976),
            ("100000000002", 0),
            ("100000000003", 0),
        ],
    );
}

#[test]
fn the_same_account_twice_is_rejected_not_duplicated() {
    let (ok, body) = run(
        &[
            "examples/credential-report.csv",
            "examples/credential-report.json",
        ],
        1000,
    );
    assert!(!ok, "one of the two must fail");
    assert_eq!(
        body.matches("aws_iam_users{account_id=\"123456789012\"}")
            .count(),
        1,
        "{body}"
    );
    let other = body
        .lines()
        .filter(|l| {
            l.starts_with("aws_iam_refresh_errors_total{target=")
                && l.contains("reason=\"other\"} 1")
        })
        .count();
    assert_eq!(
        other, 1,
        "the second target fails with reason other:\n{body}"
    );
}
