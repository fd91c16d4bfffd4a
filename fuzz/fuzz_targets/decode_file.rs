//! `--report.file` contents (raw CSV or the JSON of `aws iam get-credential-report`) through
//! format detection, JSON, base64 and the parser: never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(fetched) = iam_mfa_exporter::report::decode_file(data.to_vec(), Some(0)) {
        let _ = fetched.into_account_data();
    }
});
