//! The credential-report parser on arbitrary bytes: it must return Ok or Err, never panic, and
//! never allocate beyond what the input justifies.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(report) = iam_mfa_exporter::report::parse(data) {
        // What is accepted is consistent.
        assert!(report.console_users_mfa_enabled <= report.console_users);
        assert!(report.console_users <= report.users);
        assert_eq!(
            report.console_users - report.console_users_mfa_enabled,
            report.console_users_without_mfa.len() as u64
        );
    }
});
