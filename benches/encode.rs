//! /metrics encode time at Organization scale: 200 accounts × 5,000 users (generated reports,
//! parsed by the real parser), through the real collector and both text encoders, with the
//! default per-user series cap (1000). Results: docs/benchmarks.md.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion};
use iam_mfa_exporter::collector::{BuildInfo, Collector};
use iam_mfa_exporter::report::Fetched;
use iam_mfa_exporter::server::{encode, Format};
use iam_mfa_exporter::state::Shared;

mod common;

const ACCOUNTS: usize = 200;
const USERS: usize = 5000;

fn benches(c: &mut Criterion) {
    let shared = Arc::new(Shared::new());
    for i in 0..ACCOUNTS {
        let account = format!("{:012}", 100_000_000_000u64 + i as u64);
        let fetched = Fetched {
            csv: common::report(&account, USERS),
            generated_at: Some(1_795_507_200),
            summary: None,
        };
        let data = fetched
            .into_account_data()
            .expect("generated reports parse");
        shared
            .record_success(&account, data, SystemTime::now(), Duration::from_millis(5))
            .expect("one target per account");
    }
    let build = BuildInfo {
        version: "bench".into(),
        revision: "bench".into(),
    };
    let registry = Collector::new(shared, build, 1000).into_registry();
    let body = encode(&registry, Format::PrometheusText).expect("encodes");
    eprintln!(
        "200 accounts x 5000 users: /metrics is {} bytes, {} lines",
        body.len(),
        body.lines().count()
    );

    let mut group = c.benchmark_group("metrics_200_accounts_5000_users");
    group.bench_function("encode_prometheus_text", |b| {
        b.iter(|| encode(black_box(&registry), Format::PrometheusText))
    });
    group.bench_function("encode_openmetrics", |b| {
        b.iter(|| encode(black_box(&registry), Format::OpenMetrics))
    });
    group.finish();
}

criterion_group!(encode_benches, benches);
criterion_main!(encode_benches);
