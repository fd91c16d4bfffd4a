//! Fixture reports → the real file source, parser, collector and HTTP handler → compared with
//! `tests/fixtures/NAME.prom`. Regenerate with `UPDATE_GOLDEN=1 cargo test golden`, and review the
//! diff. Scenarios are `(fixture, max user series)`.

use crate::common::{get, pin_mtime, repo_path, TestExporter};

const SCENARIOS: &[(&str, &str, usize)] = &[
    ("example-csv", "examples/credential-report.csv", 1000),
    ("example-json", "examples/credential-report.json", 1000),
    ("example-capped", "examples/credential-report.csv", 2),
    ("bom", "tests/fixtures/bom.csv", 1000),
    (
        "org-member-root-no-password",
        "tests/fixtures/org-member-root-no-password.csv",
        1000,
    ),
    (
        "root-keys-no-mfa",
        "tests/fixtures/root-keys-no-mfa.csv",
        1000,
    ),
    (
        "moto-unquoted-commas",
        "tests/fixtures/moto-unquoted-commas.csv",
        1000,
    ),
    ("hostile-names", "tests/fixtures/hostile-names.csv", 1000),
    // Users just inside and just outside each credential-hygiene threshold at the pinned "now".
    ("hygiene", "tests/fixtures/hygiene.csv", 1000),
];

fn golden_path(name: &str) -> std::path::PathBuf {
    repo_path(&format!("tests/fixtures/golden/{name}.prom"))
}

#[test]
fn fixtures_match_golden_files() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut mismatches = Vec::new();
    for (name, fixture, cap) in SCENARIOS {
        let path = repo_path(fixture);
        pin_mtime(&path);
        let exporter = TestExporter::start(&path, *cap);
        exporter.refresh().unwrap_or_else(|e| panic!("{name}: {e}"));
        let (status, content_type, body) = get(&exporter.url("/metrics"), None);
        assert_eq!(status, 200, "{name}");
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{name}: {content_type}"
        );

        let golden = golden_path(name);
        if update {
            std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
            std::fs::write(&golden, &body).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&golden)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", golden.display()));
        // Exact text: families in catalogue order, series in account then user order, so a
        // sample printed under the wrong `# TYPE` block cannot pass.
        if body != want {
            mismatches.push(format!("{name}:\n--- want\n{want}\n--- got\n{body}"));
        }
        assert_no_duplicate_series(name, &body);
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// Prometheus rejects (or half-drops) an exposition with the same series twice.
fn assert_no_duplicate_series(name: &str, body: &str) {
    let mut seen = std::collections::HashSet::new();
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        let series = line.rsplit_once(' ').map_or(line, |(series, _)| series);
        assert!(seen.insert(series), "{name}: duplicate series {series}");
    }
}

#[test]
fn a_report_with_a_duplicate_user_is_rejected_whole() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("duplicate-user");
    std::fs::create_dir_all(&dir).unwrap();
    let good = repo_path("examples/credential-report.csv");
    let text = std::fs::read_to_string(&good).unwrap();
    let bob = text.lines().find(|l| l.starts_with("bob,")).unwrap();
    let path = dir.join("report.csv");
    std::fs::write(&path, &text).unwrap();
    let exporter = TestExporter::start(&path, 1000);
    exporter.refresh().unwrap();
    // The same user again, differently cased, as a hand-edited recording had it.
    std::fs::write(&path, format!("{text}{}\n", bob.replacen("bob", "BOB", 1))).unwrap();
    let error = exporter.refresh().unwrap_err().to_string();
    assert!(
        error.contains("user \"BOB\" already appears on line"),
        "{error}"
    );
    let (_, _, body) = get(&exporter.url("/metrics"), None);
    assert_no_duplicate_series("duplicate-user", &body);
    assert_eq!(
        body.matches(
            "aws_iam_console_user_without_mfa{account_id=\"123456789012\",user=\"bob\"} 1"
        )
        .count(),
        1,
        "the last good data stays:\n{body}"
    );
    assert!(!body.contains("user=\"BOB\""), "{body}");
}

#[test]
fn every_metric_appears_in_some_golden_file() {
    let all: String = SCENARIOS
        .iter()
        .filter_map(|(name, _, _)| std::fs::read_to_string(golden_path(name)).ok())
        .collect();
    let missing: Vec<&str> = iam_mfa_exporter::metrics::METRICS
        .iter()
        .map(|m| m.name)
        .filter(|name| {
            !all.contains(&format!("\n{name}{{")) && !all.contains(&format!("\n{name} "))
        })
        .collect();
    // These exist only in AWS mode: the moto end-to-end tests cover them.
    assert_eq!(
        missing,
        [
            "aws_iam_console_users_mfa_lag_corrected",
            "aws_iam_console_users_mfa_strength",
            "aws_iam_mfa_devices",
            "aws_iam_mfa_device_checks_total",
            "aws_iam_mfa_devices_last_checked_oldest_timestamp_seconds",
            "aws_iam_console_user_mfa_below_required_strength",
            "aws_iam_root_virtual_mfa",
            "aws_iam_root_hardware_mfa",
            "aws_iam_account_discovery_success",
            "aws_iam_account_discovery_last_success_timestamp_seconds",
            "aws_iam_account_discovery_errors_total",
        ]
    );
}

#[test]
fn hostile_names_are_escaped() {
    let path = repo_path("tests/fixtures/hostile-names.csv");
    let exporter = TestExporter::start(&path, 1000);
    exporter.refresh().unwrap();
    let (_, _, body) = get(&exporter.url("/metrics"), None);
    for label in [
        r#"user="quote\"d""#,
        r#"user="back\\slash""#,
        r#"user="new\nline""#,
        "user=\"ünï{cødé}=😀\"",
    ] {
        assert!(
            body.contains(&format!(
                "aws_iam_console_user_without_mfa{{account_id=\"444455556666\",{label}}} 1"
            )),
            "{label} not in\n{body}"
        );
    }
}
