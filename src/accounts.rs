//! Which accounts to refresh and how to reach each: report files, the exporter's own account
//! (aws-config's default chain), explicit role ARNs, and AWS Organizations discovery, filtered by
//! include/exclude lists and a shard. Re-evaluated every refresh cycle by [`crate::fleet`].

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use aws_config::meta::region::RegionProviderChain;
use aws_config::retry::RetryConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_iam::config::SharedCredentialsProvider;
use tokio::sync::OnceCell;

use crate::error::Error;
use crate::refresh::Source;
use crate::report::fetch::{aws_error, AwsSource};
use crate::report::file::FileSource;
use crate::report::parse::split_iam_arn;

/// IAM is a global service: every commercial region resolves to iam.amazonaws.com.
const DEFAULT_REGION: &str = "us-east-1";

/// Loads the SDK configuration: credentials and region from the default chain (the region flag
/// first, us-east-1 last), `AWS_ENDPOINT_URL` honoured, explicit timeouts and retries.
pub async fn sdk_config(region: Option<String>) -> SdkConfig {
    let region = RegionProviderChain::first_try(region.map(Region::new))
        .or_default_provider()
        .or_else(Region::from_static(DEFAULT_REGION));
    aws_config::defaults(BehaviorVersion::latest())
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
        .await
}

/// `--aws.shard i/n`: keep the accounts whose id hashes to `i` modulo `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    pub fn parse(s: &str) -> Result<Shard, String> {
        let (i, n) = s.split_once('/').ok_or("expected i/n, e.g. 0/3")?;
        let index: u32 = i.parse().map_err(|_| format!("bad shard index {i:?}"))?;
        let count: u32 = n.parse().map_err(|_| format!("bad shard count {n:?}"))?;
        if count == 0 || index >= count {
            return Err(format!("shard index must be below the count: {s}"));
        }
        Ok(Shard { index, count })
    }

    pub fn owns(&self, account_id: &str) -> bool {
        stable_hash(account_id) % u64::from(self.count) == u64::from(self.index)
    }
}

/// FNV-1a: stable across versions, platforms and restarts (unlike std's hasher), so a shard or a
/// jitter offset stays with its account.
pub fn stable_hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// How the accounts are chosen (from the flags).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub report_files: Vec<PathBuf>,
    pub role_arns: Vec<String>,
    pub external_id: Option<String>,
    pub session_name: String,
    pub organization: bool,
    pub organization_role_arn: Option<String>,
    pub assume_role_name: Option<String>,
    pub include_accounts: Vec<String>,
    pub exclude_accounts: Vec<String>,
    pub include_self: bool,
    pub account_names: HashMap<String, String>,
    pub shard: Option<Shard>,
}

/// How to reach one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    File(PathBuf),
    /// The exporter's own credentials.
    Own,
    Role(String),
}

/// One thing to refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Unique key: the account id when known in advance, else `self` or the file path.
    pub key: String,
    pub account_id: Option<String>,
    pub name: Option<String>,
    pub reach: Reach,
}

/// Resolves a [`Selection`] into targets, and targets into sources.
#[derive(Debug)]
pub struct Accounts {
    selection: Selection,
    /// `None` in file mode: no AWS configuration is loaded at all.
    sdk: Option<SdkConfig>,
    organizations: Option<aws_sdk_organizations::Client>,
    own_account: OnceCell<String>,
}

impl Accounts {
    pub async fn new(selection: Selection, region: Option<String>) -> Self {
        if !selection.report_files.is_empty() {
            return Self {
                selection,
                sdk: None,
                organizations: None,
                own_account: OnceCell::new(),
            };
        }
        let sdk = sdk_config(region).await;
        let organizations = if selection.organization {
            let mut conf = aws_sdk_organizations::config::Builder::from(&sdk);
            if let Some(role) = &selection.organization_role_arn {
                conf = conf.credentials_provider(SharedCredentialsProvider::new(
                    assume_role(&sdk, role, &selection).await,
                ));
            }
            Some(aws_sdk_organizations::Client::from_conf(conf.build()))
        } else {
            None
        };
        Self {
            selection,
            sdk: Some(sdk),
            organizations,
            own_account: OnceCell::new(),
        }
    }

    /// Whether there can be more than the one default target (so jitter and concurrency matter).
    pub fn is_fleet(&self) -> bool {
        let s = &self.selection;
        s.report_files.len() > 1 || !s.role_arns.is_empty() || s.organization
    }

    /// The targets now. Organizations are listed anew each call, so accounts come and go.
    pub async fn targets(&self) -> Result<Vec<Target>, Error> {
        let s = &self.selection;
        if !s.report_files.is_empty() {
            return Ok(s
                .report_files
                .iter()
                .map(|path| Target {
                    key: path.display().to_string(),
                    account_id: None,
                    name: None,
                    reach: Reach::File(path.clone()),
                })
                .collect());
        }
        if s.role_arns.is_empty() && !s.organization {
            // One account: the exporter's own, whatever the credentials say it is.
            return Ok(vec![Target {
                key: "self".into(),
                account_id: None,
                name: None,
                reach: Reach::Own,
            }]);
        }

        let mut targets: BTreeMap<String, Target> = BTreeMap::new();
        let mut add = |id: &str, name: Option<String>, reach: Reach| {
            let name = s.account_names.get(id).cloned().or(name);
            targets.entry(id.to_owned()).or_insert(Target {
                key: id.to_owned(),
                account_id: Some(id.to_owned()),
                name,
                reach,
            });
        };
        for arn in &s.role_arns {
            let account = role_account(arn)
                .ok_or_else(|| Error::Config(format!("not an IAM role ARN: {arn}")))?;
            add(account, None, Reach::Role(arn.clone()));
        }
        let own = if s.include_self || s.organization {
            Some(self.own_account().await?)
        } else {
            None
        };
        if let Some(client) = &self.organizations {
            let role_name = s.assume_role_name.as_deref().unwrap_or_default();
            for (id, name, partition) in list_active_accounts(client).await? {
                if Some(&id) == own.as_ref() {
                    continue; // the exporter's own account: only with --aws.include-self
                }
                let arn = format!("arn:{partition}:iam::{id}:role/{role_name}");
                add(&id, Some(name), Reach::Role(arn));
            }
        }
        if let (true, Some(own)) = (s.include_self, &own) {
            // The own account with its own credentials, even if a role for it was given too.
            let name = s.account_names.get(own).cloned();
            targets.insert(
                own.clone(),
                Target {
                    key: own.clone(),
                    account_id: Some(own.clone()),
                    name,
                    reach: Reach::Own,
                },
            );
        }
        Ok(targets
            .into_values()
            .filter(|t| t.account_id.as_deref().is_none_or(|id| self.selected(id)))
            .collect())
    }

    fn selected(&self, account_id: &str) -> bool {
        let s = &self.selection;
        (s.include_accounts.is_empty() || s.include_accounts.iter().any(|a| a == account_id))
            && !s.exclude_accounts.iter().any(|a| a == account_id)
            && s.shard.is_none_or(|shard| shard.owns(account_id))
    }

    /// The source of one target: a file, or an IAM client with its own credentials. A role's
    /// credentials are assumed lazily and refreshed by the SDK's identity cache before expiry.
    pub async fn source(&self, target: &Target) -> Result<Source, Error> {
        let sdk = || {
            self.sdk
                .as_ref()
                .ok_or_else(|| Error::Config("no AWS configuration in file mode".into()))
        };
        Ok(match &target.reach {
            Reach::File(path) => Source::File(FileSource::new(path)),
            Reach::Own => Source::Aws(AwsSource::new(aws_sdk_iam::Client::new(sdk()?))),
            Reach::Role(arn) => {
                let sdk = sdk()?;
                let provider = assume_role(sdk, arn, &self.selection).await;
                let conf = aws_sdk_iam::config::Builder::from(sdk)
                    .credentials_provider(SharedCredentialsProvider::new(provider))
                    .build();
                Source::Aws(AwsSource::new(aws_sdk_iam::Client::from_conf(conf)))
            }
        })
    }

    /// The account of the exporter's own credentials (STS GetCallerIdentity, asked once).
    async fn own_account(&self) -> Result<String, Error> {
        let sdk = self
            .sdk
            .as_ref()
            .ok_or_else(|| Error::Config("no AWS configuration".into()))?;
        self.own_account
            .get_or_try_init(|| async {
                let out = aws_sdk_sts::Client::new(sdk)
                    .get_caller_identity()
                    .send()
                    .await
                    .map_err(|e| aws_error("GetCallerIdentity", e))?;
                out.account()
                    .map(str::to_owned)
                    .ok_or_else(|| Error::Config("GetCallerIdentity returned no account".into()))
            })
            .await
            .cloned()
    }
}

async fn assume_role(sdk: &SdkConfig, role_arn: &str, selection: &Selection) -> AssumeRoleProvider {
    let mut builder = AssumeRoleProvider::builder(role_arn)
        .configure(sdk)
        .session_name(selection.session_name.clone());
    if let Some(id) = &selection.external_id {
        builder = builder.external_id(id.clone());
    }
    builder.build().await
}

/// ACTIVE accounts of the Organization, all pages: (id, name, partition).
async fn list_active_accounts(
    client: &aws_sdk_organizations::Client,
) -> Result<Vec<(String, String, String)>, Error> {
    let mut accounts = Vec::new();
    let mut pages = client.list_accounts().into_paginator().send();
    let mut all = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| aws_error("ListAccounts", e))?;
        all.extend(page.accounts.unwrap_or_default());
    }
    for account in all {
        #[allow(deprecated)]
        let active = match (account.state(), account.status()) {
            (Some(state), _) => state.as_str() == "ACTIVE",
            (None, Some(status)) => status.as_str() == "ACTIVE",
            (None, None) => false,
        };
        let (Some(id), true) = (account.id(), active) else {
            continue;
        };
        let partition = account
            .arn()
            .and_then(|arn| arn.split(':').nth(1))
            .filter(|p| !p.is_empty())
            .unwrap_or("aws");
        accounts.push((
            id.to_owned(),
            account.name().unwrap_or_default().to_owned(),
            partition.to_owned(),
        ));
    }
    Ok(accounts)
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
    fn shards_split_accounts_evenly_and_stably() {
        let shards: Vec<Shard> = (0..3)
            .map(|i| Shard::parse(&format!("{i}/3")).unwrap())
            .collect();
        let mut sizes = [0; 3];
        for n in 0..3000u64 {
            let id = format!("{:012}", 100_000_000_000 + n * 7919);
            let owners: Vec<usize> = (0..3).filter(|&i| shards[i].owns(&id)).collect();
            assert_eq!(owners.len(), 1, "{id} has exactly one shard");
            sizes[owners[0]] += 1;
        }
        assert!(sizes.iter().all(|&s| (900..1100).contains(&s)), "{sizes:?}");
        // Pinned: a change of hash would move accounts between replicas.
        assert!(
            Shard::parse("0/2").unwrap().owns("123456789012")
                != Shard::parse("1/2").unwrap().owns("123456789012")
        );
        for bad in ["3/3", "1", "a/2", "0/0"] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
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

    #[tokio::test]
    async fn files_and_filters() {
        let selection = Selection {
            report_files: vec!["a.csv".into(), "b.json".into()],
            ..Selection::default()
        };
        let accounts = Accounts::new(selection, None).await;
        let keys: Vec<String> = accounts
            .targets()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.key)
            .collect();
        assert_eq!(keys, ["a.csv", "b.json"]);
        assert!(accounts.is_fleet());

        let accounts = Accounts {
            selection: Selection {
                include_accounts: vec!["111111111111".into(), "222222222222".into()],
                exclude_accounts: vec!["222222222222".into()],
                ..Selection::default()
            },
            sdk: None,
            organizations: None,
            own_account: OnceCell::new(),
        };
        assert!(accounts.selected("111111111111"));
        assert!(!accounts.selected("222222222222"));
        assert!(!accounts.selected("333333333333"));
    }
}
