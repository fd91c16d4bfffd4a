//! The real executable: `--once`, `--version`, serving a file that breaks and heals, AWS mode
//! with no reachable endpoint or no credentials, and SIGTERM.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::{get, repo_path, value};

const BIN: &str = env!("CARGO_BIN_EXE_iam-mfa-exporter");

/// A command with no AWS configuration leaking in from the machine.
fn exporter() -> Command {
    let mut cmd = Command::new(BIN);
    let home = Path::new(env!("CARGO_TARGET_TMPDIR")).join("empty-home");
    std::fs::create_dir_all(&home).unwrap();
    for (key, _) in std::env::vars() {
        if key.starts_with("AWS_") || key.starts_with("IAM_MFA_EXPORTER_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("HOME", &home)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_REGION", "us-east-1")
        .env_remove("RUST_LOG");
    cmd
}

#[test]
fn once_prints_metrics_and_exits_zero() {
    let out = exporter()
        .args(["--once", "--report.file"])
        .arg(repo_path("examples/credential-report.csv"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        value(&stdout, "aws_iam_users{account_id=\"123456789012\"}"),
        Some(7.0)
    );
    assert_eq!(
        value(
            &stdout,
            "aws_iam_refresh_success{account_id=\"123456789012\"}"
        ),
        Some(1.0)
    );
}

#[test]
fn once_fails_on_a_broken_report_with_one_clear_line() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("once-broken");
    std::fs::create_dir_all(&dir).unwrap();
    let report = dir.join("broken.csv");
    std::fs::write(&report, "user,arn,user_creation_time,password_enabled,mfa_active\nbob,arn:aws:iam::123456789012:user/bob,2020-01-01T00:00:00Z,maybe,false\n").unwrap();
    let out = exporter()
        .arg("--once")
        .arg("--report.file")
        .arg(&report)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("level=ERROR"))
        .collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("reason=report_invalid"), "{stderr}");
    assert!(
        lines[0].contains("line 2: column password_enabled: expected a boolean"),
        "{stderr}"
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let series = format!("aws_iam_refresh_success{{target=\"{}\"}}", report.display());
    assert_eq!(value(&stdout, &series), Some(0.0), "{stdout}");
}

#[test]
fn levels_are_written_alike_in_logfmt_and_json() {
    let missing = Path::new(env!("CARGO_TARGET_TMPDIR")).join("no-such-report.csv");
    let stderr = |format: &str| {
        let out = exporter()
            .args(["--once", "--log.format", format, "--report.file"])
            .arg(&missing)
            .output()
            .unwrap();
        String::from_utf8(out.stderr).unwrap()
    };
    let logfmt = stderr("logfmt");
    assert!(
        logfmt.contains(" level=ERROR ") && logfmt.contains(" msg=\"refresh failed"),
        "{logfmt}"
    );
    let json = stderr("json");
    assert!(json.contains("\"level\":\"ERROR\""), "{json}");
}

#[test]
fn version_flag() {
    let out = exporter().arg("--version").output().unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.starts_with(&format!(
            "iam-mfa-exporter {} (revision ",
            env!("CARGO_PKG_VERSION")
        )),
        "{stdout}"
    );
}

#[test]
fn aws_mode_with_a_dead_endpoint_fails_cleanly() {
    let out = exporter()
        .arg("--once")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("reason=network"), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    // The own account's id is asked of STS first: that discovery fails, visibly.
    assert!(
        stdout.contains("aws_iam_account_discovery_errors_total{reason=\"network\"} 1"),
        "{stdout}"
    );
    assert!(
        stdout.contains("aws_iam_account_discovery_success 0"),
        "{stdout}"
    );
}

#[test]
fn aws_mode_without_credentials_fails_cleanly() {
    let out = exporter()
        .arg("--once")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("reason=credentials"), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("aws_iam_account_discovery_errors_total{reason=\"credentials\"} 1"),
        "{stdout}"
    );
}

/// A running exporter whose stderr is collected line by line.
struct Running {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Running {
    fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Self { child, log }
    }

    /// Waits for a log line containing `needle`; returns it.
    fn wait_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(line) = self.log.lock().unwrap().iter().find(|l| l.contains(needle)) {
                return line.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {needle:?}: {:?}",
                self.log.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls /metrics until `series` has `want`.
fn wait_value(url: &str, series: &str, want: f64) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, _, body) = get(url, None);
        if value(&body, series) == Some(want) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{series} never became {want}:\n{body}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serves_keeps_last_good_data_and_stops_on_sigterm() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("serve-binary");
    std::fs::create_dir_all(&dir).unwrap();
    let report = dir.join("report.csv");
    let good = std::fs::read_to_string(repo_path("examples/credential-report.csv")).unwrap();
    std::fs::write(&report, &good).unwrap();

    let mut cmd = exporter();
    cmd.args([
        "--web.listen-address=127.0.0.1:0",
        "--refresh.interval=200ms",
        "--web.telemetry-path=/m",
    ])
    .arg("--report.file")
    .arg(&report);
    let mut running = Running::spawn(cmd);
    let listening = running.wait_log("msg=listening");
    let addr = listening
        .split(' ')
        .find_map(|kv| kv.strip_prefix("address="))
        .unwrap()
        .to_owned();
    let url = format!("http://{addr}/m");
    let success = "aws_iam_refresh_success{account_id=\"123456789012\"}";
    wait_value(&url, success, 1.0);
    assert_eq!(get(&format!("http://{addr}/-/ready"), None).0, 200);

    std::fs::write(&report, "garbage\x00\x01").unwrap();
    let body = wait_value(&url, success, 0.0);
    assert_eq!(
        value(&body, "aws_iam_users{account_id=\"123456789012\"}"),
        Some(7.0)
    );
    let failure = running.wait_log("refresh failed");
    for part in [
        "level=WARN",
        "reason=report_invalid",
        "retry_in=200ms",
        "account_id=123456789012",
        "serving=\"last good data\"",
    ] {
        assert!(failure.contains(part), "{part} not in {failure}");
    }

    std::fs::write(&report, &good).unwrap();
    wait_value(&url, success, 1.0);

    let status = Command::new("kill")
        .arg("-TERM")
        .arg(running.child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(exit) = running.child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "did not exit on SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit:?}");
    running.wait_log("received SIGTERM");
}
