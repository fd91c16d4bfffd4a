//! iam-mfa-exporter: AWS IAM MFA compliance as Prometheus metrics.
//!
//! A report travels: [`report::fetch`] (AWS) or [`report::file`] → [`report::parse`] →
//! [`report::AccountData`] → [`state::Shared`] (swapped by [`refresh::Refresher`]) →
//! [`collector::Collector`] → [`server`] at `/metrics`. [`accounts`] decides which accounts (or
//! files) there are and how to reach them; [`fleet`] schedules their refreshes.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod collector;
pub mod config;
pub mod error;
pub mod fleet;
pub mod logging;
pub mod refresh;
pub mod report;
pub mod server;
pub mod state;
pub mod web;

pub use error::{Error, Reason};
