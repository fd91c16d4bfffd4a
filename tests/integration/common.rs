//! An in-process exporter on 127.0.0.1:0, driven by a pinned clock.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use iam_mfa_exporter::collector::{BuildInfo, Collector};
use iam_mfa_exporter::refresh::{Checks, FixedClock, Refresher};
use iam_mfa_exporter::report::hygiene::Thresholds;
use iam_mfa_exporter::server::{self, Handler};
use iam_mfa_exporter::source::FileSource;
use iam_mfa_exporter::source::Source;
use iam_mfa_exporter::state::Shared;

/// 2026-11-24T12:00:00Z: "now" in golden files.
pub const PINNED_NOW: u64 = 1_795_521_600;
/// 2026-11-24T08:00:00Z: the modification time given to raw CSV fixtures.
pub const PINNED_MTIME: u64 = 1_795_507_200;

pub fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

pub struct TestExporter {
    pub addr: SocketAddr,
    pub refresher: Refresher,
    runtime: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestExporter {
    /// Serves `report` (a file) with the pinned clock and build info; does not refresh yet.
    pub fn start(report: &Path, max_user_series: usize) -> Self {
        Self::start_limited(report, max_user_series, None)
    }

    /// As [`Self::start`], with `--web.max-requests` permits.
    pub fn start_limited(
        report: &Path,
        max_user_series: usize,
        max_requests: Option<usize>,
    ) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let shared = Arc::new(Shared::new());
        let build = BuildInfo {
            version: "0.0.0-test".into(),
            revision: "pinned".into(),
        };
        let registry = Collector::new(Arc::clone(&shared), build, max_user_series).into_registry();
        shared.register(&report.display().to_string(), None, None);
        let refresher = Refresher::new(
            report.display().to_string(),
            Source::File(FileSource::new(report)),
            Arc::clone(&shared),
            Duration::from_secs(30),
        )
        .with_clock(Arc::new(FixedClock(
            UNIX_EPOCH + Duration::from_secs(PINNED_NOW),
        )))
        // As the binary does by default: hygiene checks on (file mode has no live MFA checks).
        .with_checks(Checks {
            hygiene: Some(Thresholds::default()),
            per_user_cap: max_user_series,
            ..Checks::default()
        });
        let listener = runtime.block_on(server::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Arc::new(Handler {
            shared: Arc::clone(&shared),
            registry,
            telemetry_path: "/metrics".into(),
            max_requests: max_requests.map(|n| Arc::new(tokio::sync::Semaphore::new(n))),
            web: None,
            cache: Default::default(),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = runtime.handle().clone();
        let thread = std::thread::spawn(move || {
            handle
                .block_on(server::serve(listener, app, async {
                    let _ = stopped.await;
                }))
                .unwrap();
        });
        Self {
            addr,
            refresher,
            runtime,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// One refresh through the real file source and parser.
    pub fn refresh(&self) -> Result<(), iam_mfa_exporter::Error> {
        self.runtime.block_on(self.refresher.refresh())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for TestExporter {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Sets a file's modification time, so raw-CSV fixtures have a pinned "generated" time.
pub fn pin_mtime(path: &Path) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::UNIX_EPOCH + Duration::from_secs(PINNED_MTIME))
        .unwrap();
}

/// GET with an optional Accept header: (status, content type, body).
pub fn get(url: &str, accept: Option<&str>) -> (u16, String, String) {
    request("GET", url, accept)
}

pub fn request(method: &str, url: &str, accept: Option<&str>) -> (u16, String, String) {
    let mut req = ureq::request(method, url);
    if let Some(accept) = accept {
        req = req.set("Accept", accept);
    }
    let resp = match req.call() {
        Ok(resp) => resp,
        Err(ureq::Error::Status(_, resp)) => resp,
        Err(e) => panic!("{method} {url}: {e}"),
    };
    let status = resp.status();
    let content_type = resp.header("Content-Type").unwrap_or_default().to_owned();
    let body = resp.into_string().unwrap();
    (status, content_type, body)
}

/// The value of the one series whose line starts with `series` (name and labels).
pub fn value(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}
