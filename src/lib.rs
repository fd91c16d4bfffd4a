//! iam-mfa-exporter: AWS IAM MFA compliance as Prometheus metrics.
//!
//! A report travels in this order (docs/architecture.md draws it):
//! [`accounts`] (which targets) → [`fleet`] (when) → [`refresh`] (one target) → [`source`] (AWS
//! or a file, through [`aws`]) → [`report`] (pure parsing) → [`state`] (immutable snapshots) →
//! [`collector`] (families named in [`metrics`]) → [`server`] at `/metrics` (behind [`web`]).
//! [`app`] assembles them from [`config`]; `main` only wires.
//!
//! Without the default `exporter` feature only the pure parts build ([`report`], [`arn`],
//! [`hash`]): what the fuzz targets need.
#![forbid(unsafe_code)]

#[cfg(feature = "exporter")]
pub mod accounts;
#[cfg(feature = "exporter")]
pub mod app;
pub mod arn;
#[cfg(feature = "exporter")]
pub mod aws;
#[cfg(feature = "exporter")]
pub mod collector;
#[cfg(feature = "exporter")]
pub mod config;
#[cfg(feature = "exporter")]
pub mod error;
#[cfg(feature = "exporter")]
pub mod fleet;
pub mod hash;
#[cfg(feature = "exporter")]
pub mod logging;
#[cfg(feature = "exporter")]
pub mod metrics;
pub mod mfa;
#[cfg(feature = "exporter")]
pub mod refresh;
pub mod report;
#[cfg(feature = "exporter")]
pub mod server;
#[cfg(feature = "exporter")]
pub mod source;
#[cfg(feature = "exporter")]
pub mod state;
#[cfg(feature = "exporter")]
pub mod web;

#[cfg(feature = "exporter")]
pub use error::{Error, Reason};
