//! Routes, methods, readiness and content negotiation through the real server on loopback.

use crate::common::{get, repo_path, request, value, TestExporter};

const EXAMPLE: &str = "examples/credential-report.csv";
const ACCOUNT: &str = "{account_id=\"123456789012\"}";

#[test]
fn ready_only_after_first_successful_refresh() {
    let exporter = TestExporter::start(&repo_path(EXAMPLE), 1000);
    assert_eq!(get(&exporter.url("/-/healthy"), None).0, 200);
    assert_eq!(get(&exporter.url("/-/ready"), None).0, 503);

    let (status, _, body) = get(&exporter.url("/metrics"), None);
    assert_eq!(status, 200);
    assert!(
        !body.contains("aws_iam_users{"),
        "no data before the first refresh:\n{body}"
    );
    assert!(
        body.contains("aws_iam_exporter_build_info{version=\"0.0.0-test\",revision=\"pinned\"} 1")
    );

    exporter.refresh().unwrap();
    assert_eq!(get(&exporter.url("/-/ready"), None).0, 200);
    let (_, _, body) = get(&exporter.url("/metrics"), None);
    assert_eq!(value(&body, &format!("aws_iam_users{ACCOUNT}")), Some(7.0));
}

#[test]
fn unknown_paths_and_methods() {
    let exporter = TestExporter::start(&repo_path(EXAMPLE), 1000);
    assert_eq!(get(&exporter.url("/nope"), None).0, 404);
    assert_eq!(get(&exporter.url("/metrics/extra"), None).0, 404);
    for method in ["POST", "PUT", "DELETE"] {
        let resp = match ureq::request(method, &exporter.url("/metrics")).call() {
            Err(ureq::Error::Status(_, resp)) => resp,
            other => panic!("{method}: {other:?}"),
        };
        assert_eq!(resp.status(), 405, "{method}");
        assert_eq!(resp.header("Allow"), Some("GET, HEAD"));
    }
}

#[test]
fn head_has_no_body() {
    let exporter = TestExporter::start(&repo_path(EXAMPLE), 1000);
    exporter.refresh().unwrap();
    let (status, content_type, body) = request("HEAD", &exporter.url("/metrics"), None);
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/plain"));
    assert_eq!(body, "");
}

#[test]
fn landing_page_links_metrics() {
    let exporter = TestExporter::start(&repo_path(EXAMPLE), 1000);
    let (status, content_type, body) = get(&exporter.url("/"), None);
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"));
    assert!(body.contains("href=\"/metrics\""), "{body}");
}

#[test]
fn openmetrics_by_accept_header() {
    let exporter = TestExporter::start(&repo_path(EXAMPLE), 1000);
    exporter.refresh().unwrap();
    let prometheus_accept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    let (status, content_type, body) = get(&exporter.url("/metrics"), Some(prometheus_accept));
    assert_eq!(status, 200);
    assert_eq!(
        content_type,
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    assert!(body.ends_with("# EOF\n"), "{body}");
    assert!(body.contains("# TYPE aws_iam_refresh_errors counter\n"));
    assert!(body.contains(
        "aws_iam_refresh_errors_total{account_id=\"123456789012\",reason=\"timeout\"} 0\n"
    ));

    let (_, content_type, body) = get(&exporter.url("/metrics"), Some("text/plain"));
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    assert!(!body.contains("# EOF"));
    assert!(body.contains("# TYPE aws_iam_refresh_errors_total counter\n"));
}

#[test]
fn failed_refresh_keeps_last_good_data_and_recovers() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("keeps-last-good");
    std::fs::create_dir_all(&dir).unwrap();
    let report = dir.join("report.csv");
    std::fs::copy(repo_path(EXAMPLE), &report).unwrap();
    let exporter = TestExporter::start(&report, 1000);
    exporter.refresh().unwrap();

    let series = |body: &str, name: &str| value(body, &format!("{name}{ACCOUNT}"));
    let errors = |body: &str, reason: &str| {
        value(
            body,
            &format!(
                "aws_iam_refresh_errors_total{{account_id=\"123456789012\",reason=\"{reason}\"}}"
            ),
        )
    };

    // A broken report: rejected whole, last data kept, failure visible.
    let good = std::fs::read_to_string(&report).unwrap();
    std::fs::write(&report, good.replace("alice,arn", "alice,arn,extra")).unwrap();
    let error = exporter.refresh().unwrap_err();
    assert_eq!(error.reason().as_str(), "report_invalid");
    assert!(
        error
            .to_string()
            .contains("line 3: expected 22 fields, found 23"),
        "{error}"
    );
    let (_, _, body) = get(&exporter.url("/metrics"), None);
    assert_eq!(series(&body, "aws_iam_refresh_success"), Some(0.0));
    assert_eq!(series(&body, "aws_iam_users"), Some(7.0));
    assert_eq!(
        series(&body, "aws_iam_console_users_without_mfa"),
        Some(3.0)
    );
    assert_eq!(errors(&body, "report_invalid"), Some(1.0));
    assert_eq!(
        get(&exporter.url("/-/ready"), None).0,
        200,
        "still ready: data is served"
    );

    // The file disappears.
    std::fs::remove_file(&report).unwrap();
    assert_eq!(exporter.refresh().unwrap_err().reason().as_str(), "io");
    let (_, _, body) = get(&exporter.url("/metrics"), None);
    assert_eq!(errors(&body, "io"), Some(1.0));
    assert_eq!(series(&body, "aws_iam_users"), Some(7.0));

    // It comes back with one user fewer: recovered, and the data follows.
    let without_bob: String = good
        .lines()
        .filter(|l| !l.starts_with("bob,"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&report, without_bob).unwrap();
    exporter.refresh().unwrap();
    let (_, _, body) = get(&exporter.url("/metrics"), None);
    assert_eq!(series(&body, "aws_iam_refresh_success"), Some(1.0));
    assert_eq!(series(&body, "aws_iam_users"), Some(6.0));
    assert!(
        !body.contains("user=\"bob\""),
        "bob left the report, so he leaves /metrics"
    );
    assert_eq!(
        errors(&body, "report_invalid"),
        Some(1.0),
        "counters keep counting"
    );
}

#[test]
fn bad_reports_are_rejected_whole_and_the_last_good_data_stays() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bad-reports");
    std::fs::create_dir_all(&dir).unwrap();
    let report = dir.join("report.csv");
    let good = std::fs::read(repo_path(EXAMPLE)).unwrap();
    std::fs::write(&report, &good).unwrap();
    let exporter = TestExporter::start(&report, 1000);
    exporter.refresh().unwrap();

    let header_only = good.split(|&b| b == b'\n').next().unwrap().to_vec();
    let mut latin1 = good.clone();
    latin1.extend_from_slice(b"jos\xe9,arn:aws:iam::123456789012:user/jose\n");
    let mut huge = good.clone();
    huge.resize(64 * 1024 * 1024 + 1, b'x');
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let cases: [(&str, Vec<u8>, &str); 6] = [
        ("empty", Vec::new(), "report is empty"),
        ("header only", header_only, "header but no rows"),
        ("latin-1", latin1, "line 10: not UTF-8"),
        ("64 MiB + 1", huge, "over the"),
        ("binary garbage", garbage, ""),
        (
            "json without content",
            b"{\"ReportFormat\": \"text/csv\"}".to_vec(),
            "not the JSON",
        ),
    ];
    for (i, (name, bytes, message)) in cases.into_iter().enumerate() {
        std::fs::write(&report, &bytes).unwrap();
        let error = exporter.refresh().unwrap_err();
        assert_eq!(error.reason().as_str(), "report_invalid", "{name}: {error}");
        assert!(error.to_string().contains(message), "{name}: {error}");
        let (_, _, body) = get(&exporter.url("/metrics"), None);
        assert_eq!(
            value(&body, &format!("aws_iam_users{ACCOUNT}")),
            Some(7.0),
            "{name}"
        );
        assert_eq!(
            value(&body, "aws_iam_refresh_errors_total{account_id=\"123456789012\",reason=\"report_invalid\"}"),
            Some((i + 1) as f64),
            "{name}"
        );
    }
}

#[test]
fn max_requests_turns_excess_requests_away() {
    // No permits at all: every request is over the limit, and says so at once.
    let exporter = TestExporter::start_limited(&repo_path(EXAMPLE), 1000, Some(0));
    let (status, _, body) = get(&exporter.url("/metrics"), None);
    assert_eq!(status, 503);
    assert!(body.contains("--web.max-requests"), "{body}");
    // The probes are not counted: a kubelet gets its answer even then.
    assert_eq!(get(&exporter.url("/-/healthy"), None).0, 200);
    assert_eq!(
        get(&exporter.url("/-/ready"), None).0,
        503,
        "not ready, not 'too many'"
    );
    // One permit: served, and the permit comes back after each request.
    let exporter = TestExporter::start_limited(&repo_path(EXAMPLE), 1000, Some(1));
    for _ in 0..3 {
        assert_eq!(get(&exporter.url("/metrics"), None).0, 200);
    }
}
