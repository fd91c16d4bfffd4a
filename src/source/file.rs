//! `--report.file`: reads a credential report from disk (bounded), re-read at every refresh so a
//! cron job can replace it. Telling raw CSV from the CLI's JSON is [`crate::report::decode`]'s.

use std::path::PathBuf;
use std::time::UNIX_EPOCH;

use tokio::io::AsyncReadExt as _;

use crate::report::{decode_file, Fetched, ReportError, MAX_REPORT_BYTES};
use crate::Error;

/// A report file.
#[derive(Debug, Clone)]
pub struct FileSource {
    path: PathBuf,
}

impl FileSource {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// Reads the file (at most [`MAX_REPORT_BYTES`] of CSV, or of JSON around it).
    pub async fn fetch(&self) -> Result<Fetched, Error> {
        let io_error = |source| Error::Io {
            path: self.path.display().to_string(),
            source,
        };
        let file = tokio::fs::File::open(&self.path).await.map_err(io_error)?;
        let modified = file
            .metadata()
            .await
            .and_then(|m| m.modified())
            .map_err(io_error)?;
        // JSON carries the CSV in base64 (4/3 larger), so allow that much plus some slack.
        let limit = MAX_REPORT_BYTES / 3 * 4 + 64 * 1024;
        let mut bytes = Vec::new();
        file.take(limit as u64 + 1)
            .read_to_end(&mut bytes)
            .await
            .map_err(io_error)?;
        if bytes.len() > limit {
            return Err(ReportError::TooLarge {
                size: bytes.len(),
                limit: MAX_REPORT_BYTES,
            }
            .into());
        }
        let mtime = modified
            .duration_since(UNIX_EPOCH)
            .ok()
            .and_then(|d| i64::try_from(d.as_secs()).ok());
        // JSON + base64 of up to ~89 MB is CPU work: keep it off the async workers.
        tokio::task::spawn_blocking(move || decode_file(bytes, mtime))
            .await
            .map_err(|e| Error::Internal(format!("report decoder stopped: {e}")))?
            .map_err(Error::from)
    }
}

#[cfg(test)]
mod tests {
    use super::FileSource;
    use crate::report::decode_file;
    use base64::Engine as _;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    /// A large CLI-JSON report is decoded off the runtime's thread: on a one-thread runtime, a
    /// ticking task keeps ticking during the fetch. Compared with the decode's own duration,
    /// measured in the same run, so the machine's speed does not matter.
    #[tokio::test(flavor = "current_thread")]
    async fn decoding_a_large_file_does_not_block_the_runtime() {
        let mut csv = String::from("user,arn,user_creation_time,password_enabled,mfa_active\n");
        while csv.len() < 16 * 1024 * 1024 {
            let i = csv.len();
            csv.push_str(&format!(
                "user{i},arn:aws:iam::123456789012:user/user{i},2020-01-01T00:00:00Z,true,false\n"
            ));
        }
        let content = base64::engine::general_purpose::STANDARD.encode(&csv);
        let json = format!("{{\"Content\": \"{content}\", \"ReportFormat\": \"text/csv\"}}");
        let dir = std::env::temp_dir().join(format!("iam-mfa-decode-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("report.json");
        std::fs::write(&path, &json).unwrap();

        let started = Instant::now();
        decode_file(json.into_bytes(), None).unwrap();
        let decode = started.elapsed();

        let gaps = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&gaps);
        let ticker = tokio::spawn(async move {
            let mut last = Instant::now();
            loop {
                tokio::time::sleep(Duration::from_millis(1)).await;
                sink.lock().unwrap().push(last.elapsed());
                last = Instant::now();
            }
        });
        tokio::task::yield_now().await;
        let fetched = FileSource::new(&path).fetch().await.unwrap();
        // Let the ticker record the gap that ends now, then stop it.
        tokio::time::sleep(Duration::from_millis(20)).await;
        ticker.abort();
        assert_eq!(fetched.csv.len(), csv.len());
        let longest = gaps
            .lock()
            .unwrap()
            .iter()
            .copied()
            .max()
            .unwrap_or_default();
        assert!(
            longest < decode / 2,
            "the runtime stalled {longest:?} during a fetch whose decode takes {decode:?}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
