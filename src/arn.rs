//! IAM ARNs: the one place that splits `arn:PARTITION:iam::ACCOUNT:RESOURCE`. Pure string work,
//! used by the report parser (rows), the AWS source (root's virtual MFA device), the flags and
//! account discovery (role ARNs).

/// `arn:PARTITION:iam::ACCOUNT:RESOURCE` → (ACCOUNT, RESOURCE), ACCOUNT being 12 digits.
pub fn split_iam_arn(arn: &str) -> Option<(&str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(_partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    is_account_id(account).then_some((account, resource))
}

/// A 12-digit AWS account id.
pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|c| c.is_ascii_digit())
}

/// The account id of any IAM ARN.
pub fn account_of_arn(arn: &str) -> Option<&str> {
    split_iam_arn(arn).map(|(account, _)| account)
}

/// The account id if `arn` is an account's root user (`arn:PARTITION:iam::ACCOUNT:root`).
pub fn root_account_of_arn(arn: &str) -> Option<&str> {
    match split_iam_arn(arn) {
        Some((account, "root")) => Some(account),
        _ => None,
    }
}

/// The account id of `arn:PARTITION:iam::ACCOUNT:role/NAME`.
pub fn role_account(arn: &str) -> Option<&str> {
    match split_iam_arn(arn) {
        Some((account, resource)) if resource.starts_with("role/") => Some(account),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_arn() {
        assert_eq!(
            root_account_of_arn("arn:aws:iam::123456789012:root"),
            Some("123456789012")
        );
        assert_eq!(
            root_account_of_arn("arn:aws-cn:iam::123456789012:root"),
            Some("123456789012")
        );
        assert_eq!(
            root_account_of_arn("arn:aws:iam::123456789012:user/root"),
            None
        );
        assert_eq!(
            root_account_of_arn("arn:aws:iam::123456789012:mfa/root-account-mfa-device"),
            None
        );
        assert_eq!(root_account_of_arn("arn:aws:sts::123456789012:root"), None);
    }

    #[test]
    fn role_arns() {
        assert_eq!(
            role_account("arn:aws:iam::123456789012:role/x"),
            Some("123456789012")
        );
        assert_eq!(
            role_account("arn:aws-cn:iam::123456789012:role/path/x"),
            Some("123456789012")
        );
        assert_eq!(role_account("arn:aws:iam::123456789012:user/x"), None);
        assert_eq!(role_account("arn:aws:iam::1234:role/x"), None);
    }
}
