//! The exporter assembled from its flags: shared state, collector, accounts, fleet, web
//! configuration. [`App::run`] then refreshes in the background and serves HTTP until shutdown
//! (or, with `--once`, refreshes once and prints the metrics).

use std::future::Future;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use prometheus_client::registry::Registry;
use tokio::sync::Semaphore;

use crate::accounts::Accounts;
use crate::collector::{BuildInfo, Collector};
use crate::config::Config;
use crate::fleet::Fleet;
use crate::server::{self, Format, Handler};
use crate::state::Shared;
use crate::web::WebConfigWatcher;

/// Everything the exporter runs, built but not started.
#[derive(Debug)]
pub struct App {
    config: Config,
    shared: Arc<Shared>,
    registry: Registry,
    fleet: Fleet,
    web: Option<Arc<WebConfigWatcher>>,
}

impl App {
    /// Builds the pieces; loads the AWS configuration (not in file mode) and the web
    /// configuration file, whose errors stop the exporter here.
    pub async fn new(config: Config) -> anyhow::Result<Self> {
        let shared = Arc::new(Shared::new());
        let registry = Collector::new(
            Arc::clone(&shared),
            BuildInfo::current(),
            config.max_user_series,
        )
        .with_required_strength(config.required_strength)
        .into_registry();
        let accounts = Accounts::new(config.selection(), config.aws_region.clone()).await;
        let fleet = Fleet::new(
            accounts,
            Arc::clone(&shared),
            config.refresh_interval,
            config.refresh_timeout,
            usize::from(config.max_concurrency),
        )
        .with_checks(config.checks());
        let web = match (&config.web_config_file, config.once) {
            // Reading the files and hashing the unknown-user password are blocking work.
            (Some(path), false) => {
                let path = path.clone();
                let watcher = tokio::task::spawn_blocking(move || WebConfigWatcher::new(&path))
                    .await
                    .context("loading --web.config.file")?
                    .map_err(|e| anyhow::anyhow!("--web.config.file: {e}"))?;
                Some(Arc::new(watcher))
            }
            _ => None,
        };
        Ok(Self {
            config,
            shared,
            registry,
            fleet,
            web,
        })
    }

    /// Runs until `shutdown` resolves; with `--once`, one refresh of every target instead.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<ExitCode> {
        if self.config.once {
            return self.once().await;
        }
        let config = &self.config;
        let listener = server::bind(&config.listen_address)
            .await
            .with_context(|| format!("listening on {}", config.listen_address))?;
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            address = %server::local_addr(&listener).map_or(config.listen_address.clone(), |a| a.to_string()),
            telemetry_path = %config.telemetry_path,
            refresh_interval = %humantime::format_duration(config.refresh_interval),
            tls = self.web.as_ref().is_some_and(|w| w.current().tls.is_some()),
            "listening"
        );
        let reload = self.web.clone().map(|w| tokio::spawn(w.watch()));
        let handler = Arc::new(Handler {
            shared: self.shared,
            registry: self.registry,
            telemetry_path: config.telemetry_path.clone(),
            max_requests: (config.max_requests > 0)
                .then(|| Arc::new(Semaphore::new(config.max_requests))),
            web: self.web,
            cache: Default::default(),
        });
        // Dropping the fleet's future (abort) stops every per-target loop with it.
        let refresh = tokio::spawn(self.fleet.run());
        let served = server::serve(listener, handler, shutdown).await;
        refresh.abort();
        if let Some(reload) = reload {
            reload.abort();
        }
        served.context("serving HTTP")?;
        tracing::info!("shut down");
        Ok(ExitCode::SUCCESS)
    }

    /// `--once`: every target refreshed once, the metrics on stdout, the outcome in the exit code.
    async fn once(self) -> anyhow::Result<ExitCode> {
        let all_ok = self.fleet.refresh_once().await;
        let body =
            server::encode(&self.registry, Format::PrometheusText).context("encoding metrics")?;
        print!("{body}");
        Ok(if all_ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
}
