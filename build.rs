//! Captures the git revision for `aws_iam_exporter_build_info`. An explicit
//! `IAM_MFA_EXPORTER_REVISION` (e.g. a Docker build argument) wins; without git it is "unknown".
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=IAM_MFA_EXPORTER_REVISION");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs");
    let revision = std::env::var("IAM_MFA_EXPORTER_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        })
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=IAM_MFA_EXPORTER_REVISION={revision}");
}
