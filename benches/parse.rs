//! Parse + snapshot of a generated 5,000-user credential report (IAM's per-account user limit),
//! with and without the credential-hygiene checks, against a raw `csv::ByteRecord` scan of the
//! same bytes: the floor any CSV-based parser pays.
//! Results: docs/benchmarks.md.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

mod common;
use common::report;

fn raw_scan(bytes: &[u8]) -> usize {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut record = csv::ByteRecord::new();
    let mut fields = 0;
    while reader.read_byte_record(&mut record).unwrap_or(false) {
        fields += record.len();
    }
    fields
}

fn benches(c: &mut Criterion) {
    let bytes = report("123456789012", 5000);
    let parsed = iam_mfa_exporter::report::parse(&bytes).expect("the generated report parses");
    assert_eq!(parsed.users, 5000);

    let mut group = c.benchmark_group("credential_report_5000_users");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("parse_and_snapshot", |b| {
        b.iter(|| iam_mfa_exporter::report::parse(black_box(&bytes)))
    });
    let keep = |hygiene| iam_mfa_exporter::report::Keep {
        hygiene,
        console_users_with_mfa: false,
    };
    let at = iam_mfa_exporter::report::hygiene::At {
        now: 1_795_521_600,
        thresholds: Default::default(),
        keep: 1000,
    };
    group.bench_function("parse_file_mode", |b| {
        b.iter(|| iam_mfa_exporter::report::parse_keeping(black_box(&bytes), keep(None)))
    });
    group.bench_function("parse_and_snapshot_with_hygiene", |b| {
        b.iter(|| iam_mfa_exporter::report::parse_keeping(black_box(&bytes), keep(Some(at))))
    });
    group.bench_function("raw_csv_byte_record_scan", |b| {
        b.iter(|| raw_scan(black_box(&bytes)))
    });
    group.finish();
}

criterion_group!(parse, benches);
criterion_main!(parse);
