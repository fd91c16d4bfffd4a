//! /metrics encode time at Organization scale: 200 accounts × 5,000 users (generated reports,
//! parsed by the real parser), through the real collector and both text encoders, with the
//! default per-user series cap (1000), with the credential-hygiene group on (the default) and
//! off. Results: docs/benchmarks.md.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion};
use iam_mfa_exporter::collector::{BuildInfo, Collector};
use iam_mfa_exporter::report::hygiene::{At, Thresholds};
use iam_mfa_exporter::report::{Fetched, Keep};
use iam_mfa_exporter::server::{encode, Format};
use iam_mfa_exporter::state::Shared;

mod common;

const ACCOUNTS: usize = 200;
const USERS: usize = 5000;

/// A registry over 200 generated accounts; `hygiene`: run the hygiene checks at 2026-11-24.
fn registry(hygiene: bool) -> prometheus_client::registry::Registry {
    let shared = Arc::new(Shared::new());
    let keep = Keep {
        hygiene: hygiene.then_some(At {
            now: 1_795_521_600,
            thresholds: Thresholds::default(),
            keep: 1000,
        }),
        console_users_with_mfa: false,
    };
    for i in 0..ACCOUNTS {
        let account = format!("{:012}", 100_000_000_000u64 + i as u64);
        let fetched = Fetched {
            csv: common::report(&account, USERS),
            generated_at: Some(1_795_507_200),
            summary: None,
        };
        let data = fetched
            .into_account_data_keeping(keep)
            .expect("generated reports parse");
        shared.register(&account, Some(account.clone()), None);
        shared
            .record_success(&account, data, SystemTime::now(), Duration::from_millis(5))
            .expect("one target per account");
    }
    let build = BuildInfo {
        version: "bench".into(),
        revision: "bench".into(),
    };
    Collector::new(shared, build, 1000).into_registry()
}

fn benches(c: &mut Criterion) {
    let mut group = c.benchmark_group("metrics_200_accounts_5000_users");
    for (name, hygiene) in [("hygiene_on", true), ("hygiene_off", false)] {
        let registry = registry(hygiene);
        let body = encode(&registry, Format::PrometheusText).expect("encodes");
        eprintln!(
            "200 accounts x 5000 users, {name}: /metrics is {} bytes, {} lines",
            body.len(),
            body.lines().count()
        );
        group.bench_function(format!("encode_prometheus_text_{name}"), |b| {
            b.iter(|| encode(black_box(&registry), Format::PrometheusText))
        });
        group.bench_function(format!("encode_openmetrics_{name}"), |b| {
            b.iter(|| encode(black_box(&registry), Format::OpenMetrics))
        });
    }
    group.finish();
}

criterion_group!(encode_benches, benches);
criterion_main!(encode_benches);
