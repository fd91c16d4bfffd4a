//! Wires the pieces: flags → logging → [`App::new`] → [`App::run`] until SIGTERM/SIGINT.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser as _;
use iam_mfa_exporter::app::App;
use iam_mfa_exporter::config::Config;
use iam_mfa_exporter::server::shutdown_signal;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    if let Err(error) = iam_mfa_exporter::logging::init(&config.log_level, config.log_format) {
        eprintln!("iam-mfa-exporter: {error:#}");
        return ExitCode::FAILURE;
    }
    let result = match App::new(config).await {
        Ok(app) => app.run(shutdown_signal()).await,
        Err(error) => Err(error),
    };
    result.unwrap_or_else(|error| {
        tracing::error!("{error:#}");
        ExitCode::FAILURE
    })
}
