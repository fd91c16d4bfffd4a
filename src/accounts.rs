//! Which accounts to refresh and how to reach each: report files, the exporter's own account
//! (aws-config's default chain), explicit role ARNs, and AWS Organizations discovery, filtered by
//! include/exclude lists and a shard. Re-evaluated every refresh cycle by [`crate::fleet`].

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use tokio::sync::OnceCell;

use crate::arn::role_account;
use crate::aws::{aws_error, Aws};
use crate::error::Error;
use crate::hash::stable_hash;
use crate::source::Source;

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
    /// Unique key: the account id for AWS targets (always known before their first refresh), the
    /// path for report files.
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
    aws: Option<Aws>,
    organizations: Option<aws_sdk_organizations::Client>,
    own_account: OnceCell<String>,
}

impl Accounts {
    pub async fn new(selection: Selection, region: Option<String>) -> Self {
        if !selection.report_files.is_empty() {
            return Self {
                selection,
                aws: None,
                organizations: None,
                own_account: OnceCell::new(),
            };
        }
        let aws = Aws::load(
            region,
            selection.external_id.clone(),
            selection.session_name.clone(),
        )
        .await;
        let organizations = if selection.organization {
            Some(
                aws.organizations(selection.organization_role_arn.as_deref())
                    .await,
            )
        } else {
            None
        };
        Self {
            selection,
            aws: Some(aws),
            organizations,
            own_account: OnceCell::new(),
        }
    }

    /// Whether targets are discovered (AWS modes: STS, Organizations), so discovery can fail.
    pub fn discovers(&self) -> bool {
        self.selection.report_files.is_empty()
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
            // One account: the exporter's own, whatever the credentials say it is. Its id is
            // asked of STS first, so its series carry `account_id` from the first failure on.
            let own = self.own_account().await?;
            return Ok(vec![Target {
                key: own.clone(),
                account_id: Some(own.clone()),
                name: s.account_names.get(&own).cloned(),
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

    /// The source of one target (see [`Source::connect`]).
    pub async fn source(&self, target: &Target) -> Result<Source, Error> {
        Source::connect(&target.reach, self.aws.as_ref()).await
    }

    /// The account of the exporter's own credentials (STS GetCallerIdentity, asked once).
    async fn own_account(&self) -> Result<String, Error> {
        let aws = self
            .aws
            .as_ref()
            .ok_or_else(|| Error::Config("no AWS configuration".into()))?;
        self.own_account
            .get_or_try_init(|| async {
                let out = aws
                    .sts()
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
            aws: None,
            organizations: None,
            own_account: OnceCell::new(),
        };
        assert!(accounts.selected("111111111111"));
        assert!(!accounts.selected("222222222222"));
        assert!(!accounts.selected("333333333333"));
    }
}
