//! docs/metrics.md must list exactly the metrics of `metrics::METRICS`, with the same type and
//! labels: a table row per metric, `| `name` | type | labels | meaning |`.

use iam_mfa_exporter::metrics::METRICS;

use crate::common::repo_path;

#[test]
fn docs_list_every_metric_with_type_and_labels() {
    let doc = std::fs::read_to_string(repo_path("docs/metrics.md")).unwrap();
    let documented: Vec<(String, String, String)> = doc
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line
                .trim()
                .trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect();
            let name = cells.first()?.strip_prefix('`')?.strip_suffix('`')?;
            name.starts_with("aws_iam_").then(|| {
                (
                    name.to_owned(),
                    cells.get(1).copied().unwrap_or_default().to_owned(),
                    cells.get(2).copied().unwrap_or_default().to_owned(),
                )
            })
        })
        .collect();
    let in_code: Vec<(String, String, String)> = METRICS
        .iter()
        .map(|m| {
            let labels = m
                .labels
                .iter()
                .map(|l| format!("`{l}`"))
                .collect::<Vec<_>>()
                .join(", ");
            (m.name.to_owned(), m.kind.as_str().to_owned(), labels)
        })
        .collect();
    assert_eq!(
        documented, in_code,
        "docs/metrics.md and metrics::METRICS disagree"
    );
}
