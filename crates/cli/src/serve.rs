use anyhow::Context;
use modelwatch_alerts::db::AlertStore;
use modelwatch_alerts::{AlertService, SystemClock};
use modelwatch_server::{AppState, Config};
use modelwatch_store::{Lease, Store};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use crate::store_arg::{self, Credentials, Location, Mode, Opened};

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Data directory of the embedded store [config: data_dir; env: MODELWATCH_DATA; default: ./modelwatch-data]; not with --store
    #[arg(long, conflicts_with = "store")]
    data: Option<PathBuf>,
    /// A shared store instead: clickhouse://HOST:PORT[,HOST:PORT]/DATABASE (clickhouses://
    /// for TLS) [config: store; env: MODELWATCH_STORE]. User and password: [clickhouse] in the config
    /// file, or MODELWATCH_CLICKHOUSE_USER and MODELWATCH_CLICKHOUSE_PASSWORD. The alert state
    /// (rules, alerts, silences, heartbeats, notifications) is in the same database, shared by
    /// every server of it
    #[arg(long)]
    store: Option<String>,
    /// Address to listen on; port 0 picks a free port [config: addr; env: MODELWATCH_ADDR; default: 127.0.0.1:8080]
    #[arg(long)]
    addr: Option<std::net::SocketAddr>,
    /// TOML configuration file (see docs/configuration.md)
    #[arg(long)]
    config: Option<PathBuf>,
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let mut config = Config::load(args.config.as_deref(), |k| std::env::var(k).ok())?;
    // The environment is in `config.store` already (Config::load applies it).
    let location = Location::choose(
        args.data.as_deref(),
        args.store.as_deref(),
        config.store.as_deref(),
        &|_| None,
    )?;
    if let Some(d) = args.data {
        config.data_dir = d;
    }
    if let Some(a) = args.addr {
        config.addr = a;
    }
    let location = location.unwrap_or_else(|| Location::Data(config.data_dir.clone()));
    let credentials = Credentials {
        user: config.clickhouse.user.clone(),
        password: config.clickhouse.password.clone(),
        ca_file: config.clickhouse.ca_file.clone(),
    };
    let max_features = Some(config.limits.max_features_per_model);
    let store = match store_arg::open(&location, credentials.clone(), Mode::Service, max_features)?
    {
        Opened::Embedded(store) => Arc::new(store) as Arc<dyn Store>,
        Opened::Shared(store) => store,
    };
    // With a shared store the alert state is shared too: rules, alerts, silences, heartbeats
    // and the outbox written through any replica are read by every other (ADR 021).
    let shared_alerts = store_arg::shared_alert_state(&location, credentials)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let lease = cluster_lease(&location, &config)?;
    let state = app_state(&config, store, lease, shared_alerts)?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .with_context(|| format!("binding {}", config.addr))?;
        let addr = listener.local_addr()?;
        if !addr.ip().is_loopback() && config.auth.is_open() {
            // Logged before the address line, so that whoever reads that line has seen it.
            tracing::warn!(
                %addr,
                "listening beyond loopback with no API keys: anyone who reaches this port can \
                 read every model's events and change its reference, rules and notifiers; set \
                 MODELWATCH_ADMIN_KEYS, MODELWATCH_INGEST_KEYS and MODELWATCH_READ_KEYS (or \
                 [auth] in the config file), see docs/deployment.md"
            );
        }
        // The first line on stdout is the address: scripts and tests read it when using port 0.
        println!("modelwatch listening on http://{addr}");
        std::io::stdout().flush()?;
        tracing::info!(%addr, store = %location.describe(), data_dir = %config.data_dir.display(), "serving");
        modelwatch_server::serve(listener, state, shutdown_signal()).await?;
        tracing::info!("stopped");
        anyhow::Ok(())
    })
}

/// The service's state over an opened store: the store, the config and the alert service, its
/// state `shared_alerts` when several processes share it (a ClickHouse store), else the data
/// directory's `alerts.sqlite`. `lease`: whether this process does the once-per-cluster work
/// (ADR 020).
pub(crate) fn app_state(
    config: &Config,
    store: Arc<dyn Store>,
    lease: Arc<dyn Lease>,
    shared_alerts: Option<Arc<dyn AlertStore>>,
) -> anyhow::Result<AppState> {
    let rules = config
        .models
        .iter()
        .flat_map(|(m, c)| c.rules.iter().map(move |r| (m.clone(), r.clone())))
        .collect();
    let alerts = match shared_alerts {
        Some(db) => AlertService::with_store(
            db,
            config.alerts.clone(),
            rules,
            store.clone(),
            Arc::new(SystemClock),
        ),
        None => AlertService::open(
            &config.data_dir,
            config.alerts.clone(),
            rules,
            store.clone(),
            Arc::new(SystemClock),
        ),
    }
    .context("starting alerts")?
    .with_lease(lease.clone());
    let state = AppState {
        store,
        config: Arc::new(config.clone()),
        alerts: Arc::new(alerts),
        ingest_counters: Arc::default(),
        refresh_soon: Arc::default(),
        login_throttle: Arc::default(),
        lease,
        background_refresh: Arc::default(),
    };
    Ok(state)
}

/// The cluster lease of a shared store (ADR 020): this process claims it unless
/// `alerts.evaluate = false` keeps it out of the once-per-cluster work altogether. On the
/// embedded store (one process per data directory) it is always held.
fn cluster_lease(location: &Location, config: &Config) -> anyhow::Result<Arc<dyn Lease>> {
    let Location::ClickHouse(url) = location else {
        return Ok(Arc::new(modelwatch_store::SoleProcess));
    };
    if !config.alerts.evaluate {
        tracing::info!("alerts.evaluate = false: this process does not claim the cluster lease (no alert evaluation, notifications or background refresh here)");
        return Ok(Arc::new(modelwatch_store::NeverHeld));
    }
    let ch = modelwatch_store_clickhouse::ClickHouseConfig::from_url(url)
        .map_err(anyhow::Error::msg)?
        .with_credentials(
            config.clickhouse.user.clone(),
            config.clickhouse.password.clone(),
        )
        .with_ca_file(config.clickhouse.ca_file.clone());
    let period = std::time::Duration::from_secs(config.clickhouse.lease_seconds);
    let lease = modelwatch_store_clickhouse::ClickHouseLease::start(&ch, period)
        .with_context(|| format!("starting the cluster lease on {url}"))?;
    tracing::info!(
        holder = lease.holder(),
        seconds = config.clickhouse.lease_seconds,
        "claiming the cluster lease"
    );
    Ok(Arc::new(lease))
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
