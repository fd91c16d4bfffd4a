//! Integration tests: one binary, one module per concern.
//! - `golden`: fixture reports through the real refresher and HTTP handler, against `.prom` files.
//! - `http`: routes, methods, readiness, content negotiation.
//! - `binary`: the real executable (`--once`, serving, keeping the last good data, SIGTERM).
//! - `metrics_doc`: docs/metrics.md lists exactly the metrics the code exposes.

mod binary;
mod common;
mod fleet;
mod golden;
mod http;
mod metrics_doc;
