//! A generated, realistic credential report, shared by the benchmarks.

const HEADER: &str = "user,arn,user_creation_time,password_enabled,password_last_used,password_last_changed,password_next_rotation,mfa_active,access_key_1_active,access_key_1_last_rotated,access_key_1_last_used_date,access_key_1_last_used_region,access_key_1_last_used_service,access_key_2_active,access_key_2_last_rotated,access_key_2_last_used_date,access_key_2_last_used_region,access_key_2_last_used_service,cert_1_active,cert_1_last_rotated,cert_2_active,cert_2_last_rotated";

/// A realistic report: a root row, then users of which 60% have a console password, 70% of those
/// with MFA, service users with access keys.
pub fn report(account: &str, users: usize) -> Vec<u8> {
    let mut out = String::with_capacity(users * 330);
    out.push_str(HEADER);
    out.push('\n');
    out.push_str(&format!("<root_account>,arn:aws:iam::{account}:root,2015-06-01T00:00:00+00:00,not_supported,2026-11-20T22:10:00+00:00,not_supported,not_supported,true,false,N/A,N/A,N/A,N/A,false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n"));
    for i in 0..users {
        let console = i % 10 < 6;
        let mfa = console && i % 10 < 4 || i % 17 == 0;
        let (password, last_used) = if console {
            (
                "true",
                format!(
                    "2026-11-{:02}T{:02}:{:02}:00+00:00",
                    1 + i % 23,
                    i % 24,
                    i % 60
                ),
            )
        } else {
            ("false", "N/A".to_owned())
        };
        let keys = if console {
            "false,N/A,N/A,N/A,N/A".to_owned()
        } else {
            format!(
                "true,2026-0{}-01T00:00:00+00:00,2026-11-20T10:00:00+00:00,us-east-1,s3",
                1 + i % 9
            )
        };
        out.push_str(&format!(
            "user.{i:05}@example.com,arn:aws:iam::{account}:user/team-{}/user.{i:05}@example.com,20{:02}-0{}-1{}T08:30:00+00:00,{password},{last_used},2025-01-01T00:00:00+00:00,N/A,{mfa},{keys},false,N/A,N/A,N/A,N/A,false,N/A,false,N/A\n",
            i % 40,
            15 + i % 11,
            1 + i % 9,
            i % 10,
        ));
    }
    out.into_bytes()
}
