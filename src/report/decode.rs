//! A report file's bytes → [`Fetched`]: either the raw CSV or the JSON printed by `aws iam
//! get-credential-report` (base64 CSV inside). Pure: the reading is [`crate::source::file`]'s.

use base64::Engine as _;

use super::{timestamp, Fetched, ReportError};

/// The shape of `aws iam get-credential-report` output.
#[derive(serde::Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CliOutput {
    content: String,
    #[serde(default)]
    report_format: Option<String>,
    #[serde(default)]
    generated_time: Option<String>,
}

/// Detects the format: JSON (first non-blank byte `{`) or raw CSV. For raw CSV the report's
/// generation time is unknown, so the file's modification time stands in for it.
pub fn decode_file(bytes: Vec<u8>, mtime: Option<i64>) -> Result<Fetched, ReportError> {
    let start = bytes
        .strip_prefix(b"\xEF\xBB\xBF")
        .unwrap_or(&bytes)
        .trim_ascii_start();
    if !start.starts_with(b"{") {
        return Ok(Fetched {
            csv: bytes,
            generated_at: mtime,
            summary: None,
        });
    }
    let cli: CliOutput = serde_json::from_slice(start).map_err(|e| {
        ReportError::Whole(format!(
            "not the JSON of `aws iam get-credential-report`: {e}"
        ))
    })?;
    if let Some(format) = cli.report_format.as_deref() {
        if !format.eq_ignore_ascii_case("text/csv") {
            return Err(ReportError::Whole(format!(
                "ReportFormat is {format:?}, expected \"text/csv\""
            )));
        }
    }
    let generated_at = match cli.generated_time.as_deref() {
        Some(t) => Some(timestamp::parse(t).ok_or_else(|| {
            ReportError::Whole(format!("GeneratedTime {t:?} is not a timestamp"))
        })?),
        None => None,
    };
    let content: Vec<u8> = cli
        .content
        .bytes()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let csv = base64::engine::general_purpose::STANDARD
        .decode(content)
        .map_err(|e| ReportError::Whole(format!("Content is not base64: {e}")))?;
    Ok(Fetched {
        csv,
        generated_at,
        summary: None,
    })
}

#[cfg(test)]
mod tests {
    use super::decode_file as decode;
    use base64::Engine as _;

    const CSV: &str = "user,arn,user_creation_time,password_enabled,mfa_active\n";

    #[test]
    fn raw_csv_uses_mtime() {
        let f = decode(CSV.as_bytes().to_vec(), Some(42)).unwrap();
        assert_eq!(f.csv, CSV.as_bytes());
        assert_eq!(f.generated_at, Some(42));
    }

    #[test]
    fn cli_json_is_decoded() {
        let content = base64::engine::general_purpose::STANDARD.encode(CSV);
        let json = format!(
            "  {{\"Content\": \"{content}\", \"ReportFormat\": \"text/csv\", \"GeneratedTime\": \"2015-02-02T20:02:02+00:00\"}}\n"
        );
        let f = decode(json.into_bytes(), Some(42)).unwrap();
        assert_eq!(f.csv, CSV.as_bytes());
        assert_eq!(f.generated_at, Some(1_422_907_322));
    }

    #[test]
    fn bad_json_is_rejected() {
        for json in [
            "{\"Content\": 5}",
            "{\"Content\": \"!!!\"}",
            "{\"Content\": \"\", \"ReportFormat\": \"text/xml\"}",
            "{\"Content\": \"\", \"GeneratedTime\": \"yesterday\"}",
            "{",
        ] {
            assert!(decode(json.as_bytes().to_vec(), None).is_err(), "{json}");
        }
    }
}
