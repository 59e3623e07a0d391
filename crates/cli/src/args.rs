//! Options several commands share, declared once so that their names, help and conflicts agree.

use std::path::PathBuf;

/// Where a command finds the events: the embedded store's data directory, a shared store
/// (ClickHouse), or a running server.
#[derive(clap::Args, Debug)]
pub struct Target {
    /// Data directory of the embedded store (default ./modelwatch-data); not with --server or --store
    #[arg(long, conflicts_with_all = ["server", "store"])]
    pub data: Option<PathBuf>,
    /// A shared store instead of the data directory: clickhouse://HOST:PORT[,HOST:PORT]/DATABASE
    /// (clickhouses:// for TLS; user and password from MODELWATCH_CLICKHOUSE_USER and
    /// MODELWATCH_CLICKHOUSE_PASSWORD) [env: MODELWATCH_STORE]; not with --server
    #[arg(long, conflicts_with = "server")]
    pub store: Option<String>,
    /// Use a running server instead, e.g. http://127.0.0.1:8080
    #[arg(long)]
    pub server: Option<String>,
    /// API key for --server (or MODELWATCH_API_KEY)
    #[arg(long, env = "MODELWATCH_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
}

/// The event-time windows a query reports.
#[derive(clap::Args, Debug)]
pub struct Windows {
    /// Window width: 1h, 1d, 7d, ...
    #[arg(long, default_value = "1d")]
    pub window: String,
    /// Start of the range (RFC 3339), inclusive
    #[arg(long)]
    pub from: Option<String>,
    /// End of the range (RFC 3339), exclusive
    #[arg(long)]
    pub to: Option<String>,
    /// Only this model version
    #[arg(long)]
    pub version: Option<String>,
}

impl Target {
    /// The data directory: `--data`, else `./modelwatch-data`.
    pub fn data_dir(&self) -> PathBuf {
        self.data
            .clone()
            .unwrap_or_else(|| PathBuf::from("modelwatch-data"))
    }

    /// The store a command without `--server` reads or writes: `--data`, `--store`,
    /// `MODELWATCH_STORE`, else the default data directory (see [`crate::store_arg`]).
    pub fn location(&self) -> anyhow::Result<crate::store_arg::Location> {
        crate::store_arg::Location::choose(
            self.data.as_deref(),
            self.store.as_deref(),
            None,
            &|k| std::env::var(k).ok(),
        )
        .map(|l| l.unwrap_or_else(|| crate::store_arg::Location::Data(self.data_dir())))
    }
}
