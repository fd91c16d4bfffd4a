//! Where one target's report comes from: AWS ([`aws`]) or a file ([`file`]). Both yield an
//! unparsed [`Fetched`]; parsing and everything after it is the same for both.

pub mod aws;
pub mod file;

use crate::accounts::Reach;
use crate::aws::Aws;
use crate::error::Error;
use crate::report::Fetched;

pub use self::aws::AwsSource;
pub use self::file::FileSource;

/// Where one target's reports come from.
#[derive(Debug, Clone)]
pub enum Source {
    Aws(AwsSource),
    File(FileSource),
}

impl Source {
    /// The source of a target: a file, or an IAM client with its own or a role's credentials.
    /// `aws` is `None` in file mode, where no AWS configuration is loaded at all.
    pub async fn connect(reach: &Reach, aws: Option<&Aws>) -> Result<Source, Error> {
        let aws = || aws.ok_or_else(|| Error::Config("no AWS configuration in file mode".into()));
        Ok(match reach {
            Reach::File(path) => Source::File(FileSource::new(path)),
            Reach::Own => Source::Aws(AwsSource::new(aws()?.iam(None).await)),
            Reach::Role(arn) => Source::Aws(AwsSource::new(aws()?.iam(Some(arn)).await)),
        })
    }

    /// `deadline`: when the refresh gives up (AWS polling stops before it).
    pub async fn fetch(&self, deadline: tokio::time::Instant) -> Result<Fetched, Error> {
        match self {
            Source::Aws(aws) => aws.fetch(deadline).await,
            Source::File(file) => file.fetch().await,
        }
    }
}
