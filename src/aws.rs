//! Everything the AWS SDK needs from us, in one place: configuration (region, timeouts,
//! retries), clients with the exporter's own or an assumed role's credentials, and the mapping of
//! an SDK error to our [`Error`] with a bounded [`Reason`]. The calls themselves live with their
//! callers: [`crate::source::aws`] (IAM) and [`crate::accounts`] (STS, Organizations).

use std::time::Duration;

use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_iam::config::http::HttpResponse;
use aws_sdk_iam::config::SharedCredentialsProvider;
use aws_sdk_iam::error::{ProvideErrorMetadata, SdkError};

use crate::error::{Error, Reason};

/// IAM is a global service: every commercial region resolves to iam.amazonaws.com.
const DEFAULT_REGION: &str = "us-east-1";

/// The loaded SDK configuration plus how roles are assumed.
#[derive(Debug, Clone)]
pub struct Aws {
    sdk: SdkConfig,
    external_id: Option<String>,
    session_name: String,
}

impl Aws {
    /// Credentials and region from the default chain (the region flag first, us-east-1 last),
    /// `AWS_ENDPOINT_URL` honoured, explicit timeouts and retries: the SDK has no read timeout of
    /// its own, so a silent endpoint would hang a refresh forever.
    pub async fn load(
        region: Option<String>,
        external_id: Option<String>,
        session_name: String,
    ) -> Self {
        let region = RegionProviderChain::first_try(region.map(Region::new))
            .or_default_provider()
            .or_else(Region::from_static(DEFAULT_REGION));
        let sdk = aws_config::defaults(BehaviorVersion::latest())
            .region(region)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(5))
                    .read_timeout(Duration::from_secs(20))
                    .operation_attempt_timeout(Duration::from_secs(30))
                    .operation_timeout(Duration::from_secs(90))
                    .build(),
            )
            .retry_config(RetryConfig::standard().with_max_attempts(3))
            .load()
            .await;
        Self {
            sdk,
            external_id,
            session_name,
        }
    }

    /// An IAM client: the exporter's own credentials, or `role_arn` assumed. A role's
    /// credentials are fetched lazily and refreshed by the SDK's identity cache before expiry.
    pub async fn iam(&self, role_arn: Option<&str>) -> aws_sdk_iam::Client {
        let mut conf = aws_sdk_iam::config::Builder::from(&self.sdk);
        if let Some(role) = role_arn {
            conf = conf.credentials_provider(self.assume_role(role).await);
        }
        aws_sdk_iam::Client::from_conf(conf.build())
    }

    /// An Organizations client, optionally through a role (e.g. in the management account).
    pub async fn organizations(&self, role_arn: Option<&str>) -> aws_sdk_organizations::Client {
        let mut conf = aws_sdk_organizations::config::Builder::from(&self.sdk);
        if let Some(role) = role_arn {
            conf = conf.credentials_provider(self.assume_role(role).await);
        }
        aws_sdk_organizations::Client::from_conf(conf.build())
    }

    /// An STS client with the exporter's own credentials.
    pub fn sts(&self) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::new(&self.sdk)
    }

    async fn assume_role(&self, role_arn: &str) -> SharedCredentialsProvider {
        let mut builder = AssumeRoleProvider::builder(role_arn)
            .configure(&self.sdk)
            .session_name(self.session_name.clone());
        if let Some(id) = &self.external_id {
            builder = builder.external_id(id.clone());
        }
        SharedCredentialsProvider::new(builder.build().await)
    }
}

/// Turns an SDK error into our error: a bounded reason plus the whole cause chain.
pub fn aws_error<E>(operation: &'static str, error: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let message = cause_chain(&error);
    let reason = match &error {
        SdkError::ServiceError(e) => match e.err().code() {
            Some(code) => reason_of_code(code),
            None => reason_of_response(e.raw()),
        },
        SdkError::TimeoutError(_) => Reason::Timeout,
        SdkError::DispatchFailure(e) if e.is_timeout() => Reason::Timeout,
        // Identity resolution fails as a dispatch failure too: no or bad credentials.
        SdkError::DispatchFailure(_) if message.contains("credentials") => Reason::Credentials,
        SdkError::DispatchFailure(e) if e.is_user() => Reason::Other,
        // Refused, reset, closed before the answer (hyper reports some of these as "other").
        SdkError::DispatchFailure(_) => Reason::Network,
        SdkError::ResponseError(_) => Reason::Network,
        _ => Reason::Other,
    };
    Error::Aws {
        operation,
        reason,
        message,
    }
}

/// For an error response the SDK could not read a code from (IAM answers
/// `<ErrorResponse><Error><Code>`; some emulators and proxies nest it in `<Errors>`): the first
/// `<Code>` of the body, else the HTTP status.
fn reason_of_response(response: &HttpResponse) -> Reason {
    let body = response.body().bytes().unwrap_or_default();
    let code = std::str::from_utf8(body).ok().and_then(|text| {
        let start = text.find("<Code>")? + "<Code>".len();
        let len = text[start..].find("</Code>")?;
        Some(text[start..start + len].trim().to_owned())
    });
    match (code, response.status().as_u16()) {
        (Some(code), _) => reason_of_code(&code),
        (None, 401 | 403) => Reason::AccessDenied,
        (None, 429) => Reason::Throttled,
        _ => Reason::Other,
    }
}

/// "outer: inner: innermost", skipping a cause whose text its parent already shows. (The SDK's
/// own Display says only "dispatch failure"; its `DisplayErrorContext` appends a Debug dump.)
fn cause_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

/// An AWS error code → our reason.
pub fn reason_of_code(code: &str) -> Reason {
    match code {
        "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" | "NotAuthorized" => {
            Reason::AccessDenied
        }
        "Throttling"
        | "ThrottlingException"
        | "RequestLimitExceeded"
        | "LimitExceeded"
        | "TooManyRequestsException" => Reason::Throttled,
        "InvalidClientTokenId"
        | "SignatureDoesNotMatch"
        | "ExpiredToken"
        | "ExpiredTokenException"
        | "InvalidAccessKeyId"
        | "UnrecognizedClientException" => Reason::Credentials,
        _ => Reason::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_map_to_reasons() {
        assert_eq!(reason_of_code("AccessDenied"), Reason::AccessDenied);
        assert_eq!(reason_of_code("Throttling"), Reason::Throttled);
        assert_eq!(reason_of_code("LimitExceeded"), Reason::Throttled);
        assert_eq!(reason_of_code("InvalidClientTokenId"), Reason::Credentials);
        assert_eq!(reason_of_code("ServiceFailure"), Reason::Other);
    }

    fn response(status: u16, body: &str) -> HttpResponse {
        HttpResponse::new(
            status.try_into().unwrap(),
            aws_smithy_types::body::SdkBody::from(body),
        )
    }

    #[test]
    fn codes_are_found_in_bodies_the_sdk_cannot_read() {
        let nested = "<ErrorResponse><Errors><Error><Code>AccessDenied</Code><Message>no</Message></Error></Errors></ErrorResponse>";
        assert_eq!(
            reason_of_response(&response(403, nested)),
            Reason::AccessDenied
        );
        let token = nested.replace("AccessDenied", "InvalidClientTokenId");
        assert_eq!(
            reason_of_response(&response(403, &token)),
            Reason::Credentials
        );
        assert_eq!(reason_of_response(&response(403, "")), Reason::AccessDenied);
        assert_eq!(
            reason_of_response(&response(429, "busy")),
            Reason::Throttled
        );
        assert_eq!(reason_of_response(&response(500, "<Code>")), Reason::Other);
    }
}
