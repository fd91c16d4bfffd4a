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
