//! Wires the pieces: flags → logging → source → refresher + HTTP server, until SIGTERM/SIGINT.
#![forbid(unsafe_code)]

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser as _;
use iam_mfa_exporter::accounts::Accounts;
use iam_mfa_exporter::collector::{BuildInfo, Collector};
use iam_mfa_exporter::config::Config;
use iam_mfa_exporter::fleet::Fleet;
use iam_mfa_exporter::server::{self, App, Format};
use iam_mfa_exporter::state::Shared;
use iam_mfa_exporter::web::WebConfigWatcher;
use tokio::sync::Semaphore;

#[tokio::main]
async fn main() -> ExitCode {
    let config = Config::parse();
    if let Err(error) = iam_mfa_exporter::logging::init(&config.log_level, config.log_format) {
        eprintln!("iam-mfa-exporter: {error:#}");
        return ExitCode::FAILURE;
    }
    match run(config).await {
        Ok(code) => code,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> anyhow::Result<ExitCode> {
    let shared = Arc::new(Shared::new());
    let collector = Collector::new(
        Arc::clone(&shared),
        BuildInfo::current(),
        config.max_user_series,
    );
    let registry = collector.into_registry();
    let accounts = Accounts::new(config.selection(), config.aws_region.clone()).await;
    let fleet = Fleet::new(
        accounts,
        Arc::clone(&shared),
        config.refresh_interval,
        config.refresh_timeout,
        usize::from(config.max_concurrency),
    );

    if config.once {
        return once(&fleet, &registry).await;
    }

    let web = match &config.web_config_file {
        Some(path) => Some(Arc::new(
            WebConfigWatcher::new(path).map_err(|e| anyhow::anyhow!("--web.config.file: {e}"))?,
        )),
        None => None,
    };
    let listener = server::bind(&config.listen_address)
        .await
        .with_context(|| format!("listening on {}", config.listen_address))?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        address = %server::local_addr(&listener).map_or(config.listen_address.clone(), |a| a.to_string()),
        telemetry_path = %config.telemetry_path,
        refresh_interval = %humantime::format_duration(config.refresh_interval),
        tls = web.as_ref().is_some_and(|w| w.current().tls.is_some()),
        "listening"
    );
    let app = Arc::new(App {
        shared,
        registry,
        telemetry_path: config.telemetry_path.clone(),
        max_requests: (config.max_requests > 0)
            .then(|| Arc::new(Semaphore::new(config.max_requests))),
        web,
        cache: Default::default(),
    });
    let refresh = tokio::spawn(fleet.run());
    server::serve(listener, app, shutdown_signal())
        .await
        .context("serving HTTP")?;
    refresh.abort();
    tracing::info!("shut down");
    Ok(ExitCode::SUCCESS)
}

/// `--once`: every target refreshed once, the metrics on stdout, the outcome in the exit code.
async fn once(
    fleet: &Fleet,
    registry: &prometheus_client::registry::Registry,
) -> anyhow::Result<ExitCode> {
    let all_ok = fleet.refresh_once().await.context("listing accounts")?;
    let body = server::encode(registry, Format::PrometheusText).context("encoding metrics")?;
    print!("{body}");
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("received SIGINT, shutting down"),
        () = terminate => tracing::info!("received SIGTERM, shutting down"),
    }
}
