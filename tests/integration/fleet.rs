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
        .unwrap()
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
    // Totals stay exact; the cap of 2 per-user series is shared, filled in target (path) order:
    // examples/… first (bob, carol), so dave+admin and tests/…'s legacy are left out.
    assert_eq!(
        value(
            &body,
            "aws_iam_console_users_without_mfa{account_id=\"123456789012\"}"
        ),
        Some(3.0)
    );
    let per_user = body
        .lines()
        .filter(|l| l.starts_with("aws_iam_console_user_without_mfa{"))
        .count();
    assert_eq!(per_user, 2, "{body}");
    assert_eq!(
        value(
            &body,
            "aws_iam_user_series_dropped{account_id=\"123456789012\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &body,
            "aws_iam_user_series_dropped{account_id=\"111122223333\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &body,
            "aws_iam_user_series_dropped{account_id=\"210987654321\"}"
        ),
        Some(0.0)
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
