//! Which store a command opens, decided here for every command: the embedded store in a data
//! directory (`--data DIR`, the default), or a shared store named by a URL (`--store
//! clickhouse://HOST:PORT/DATABASE`, the config file's `store`, or `MODELWATCH_STORE`).
//!
//! Precedence, as for every other setting: a flag wins over the environment, which wins over
//! the config file. `--data` and `--store` on one command line are refused by clap. The
//! ClickHouse user and password come from the config file's `[clickhouse]` or from
//! `MODELWATCH_CLICKHOUSE_USER` / `MODELWATCH_CLICKHOUSE_PASSWORD`, never from a flag: a
//! command line shows in `ps`.

use anyhow::{bail, Context};
use modelwatch_store::{SqliteStore, Store};
use modelwatch_store_clickhouse::{ClickHouseAlertStore, ClickHouseConfig, ClickHouseStore};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the events are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The embedded store's data directory.
    Data(PathBuf),
    /// A ClickHouse database, as its URL: `clickhouse://HOST:PORT[,HOST:PORT]/DATABASE`
    /// (`clickhouses://` for TLS).
    ClickHouse(String),
}

/// The schemes `--store` takes.
const SCHEMES: [&str; 2] = ["clickhouse://", "clickhouses://"];

impl Location {
    /// The store named by the command line (`data`, `store`), else the environment, else the
    /// config file (`config_store`); `None` when none names one (the caller's default data
    /// directory). `from` names where a bad URL came from in the error.
    pub fn choose(
        data: Option<&Path>,
        store: Option<&str>,
        config_store: Option<&str>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Option<Location>> {
        if let Some(dir) = data {
            return Ok(Some(Location::Data(dir.to_owned())));
        }
        if let Some(url) = store {
            return Location::url("--store", url).map(Some);
        }
        if let Some(url) = env("MODELWATCH_STORE").filter(|u| !u.is_empty()) {
            return Location::url("MODELWATCH_STORE", &url).map(Some);
        }
        if let Some(url) = config_store {
            return Location::url("the config file's `store`", url).map(Some);
        }
        Ok(None)
    }

    /// A store URL given as `from`; anything but a known scheme is refused, naming what is wrong.
    pub fn url(from: &str, url: &str) -> anyhow::Result<Location> {
        let url = url.trim();
        if url
            .split_once("://")
            .is_some_and(|(_, rest)| rest.split(['/', '?']).next().unwrap_or("").contains('@'))
        {
            // Never echoed: the URL holds a password, and errors go to logs.
            bail!(
                "{from}: a store URL carries no user or password (a command line shows in `ps`, \
                 an error in logs): set [clickhouse] user and password in the config file, or \
                 MODELWATCH_CLICKHOUSE_USER and MODELWATCH_CLICKHOUSE_PASSWORD"
            );
        }
        if SCHEMES.iter().any(|s| url.starts_with(s)) {
            // Checked now, so that the error names where the URL came from.
            ClickHouseConfig::from_url(url).map_err(|e| anyhow::anyhow!("{from}: {e}"))?;
            return Ok(Location::ClickHouse(url.to_owned()));
        }
        match url.split_once("://") {
            Some((scheme, _)) => bail!(
                "{from} `{url}`: unknown store `{scheme}://`: name a ClickHouse database as \
                 clickhouse://HOST:PORT/DATABASE (clickhouses:// for TLS), or use --data DIR for \
                 the embedded store"
            ),
            None => bail!(
                "{from} `{url}`: not a store URL: name a ClickHouse database as \
                 clickhouse://HOST:PORT/DATABASE (clickhouses:// for TLS); a data directory is \
                 given with --data DIR"
            ),
        }
    }

    /// A store URL, or else a data directory (`modelwatch migrate --to`).
    pub fn url_or_dir(from: &str, text: &str) -> anyhow::Result<Location> {
        if text.contains("://") {
            Location::url(from, text)
        } else {
            Ok(Location::Data(PathBuf::from(text)))
        }
    }

    /// How logs and messages name it: the directory, or the URL.
    pub fn describe(&self) -> String {
        match self {
            Location::Data(d) => d.display().to_string(),
            Location::ClickHouse(url) => url.clone(),
        }
    }
}

/// The ClickHouse user and password, and the authorities to trust with TLS.
#[derive(Clone, Default)]
pub struct Credentials {
    pub user: Option<String>,
    pub password: Option<String>,
    /// A PEM file of certificate authorities for `clickhouses://` (else the Mozilla roots).
    pub ca_file: Option<std::path::PathBuf>,
}

impl Credentials {
    /// From the environment only (the commands without a config file).
    pub fn from_env() -> Credentials {
        Credentials {
            user: std::env::var("MODELWATCH_CLICKHOUSE_USER").ok(),
            password: std::env::var("MODELWATCH_CLICKHOUSE_PASSWORD").ok(),
            ca_file: std::env::var_os("MODELWATCH_CLICKHOUSE_CA_FILE")
                .filter(|v| !v.is_empty())
                .map(Into::into),
        }
    }
}

/// How the embedded store is opened: the service's writer, or an import's (the process ends
/// with the import, so its writer may take more memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Service,
    Import,
}

/// An opened store. The embedded one stays a [`SqliteStore`] for what only it has (the
/// import's bulk path, the feature limit, `check`).
pub enum Opened {
    Embedded(SqliteStore),
    Shared(Arc<dyn Store>),
}

impl Opened {
    pub fn store(&self) -> &dyn Store {
        match self {
            Opened::Embedded(s) => s,
            Opened::Shared(s) => s.as_ref(),
        }
    }
}

/// Opens the store at `location`. `max_features`: the most features a model may have
/// (`limits.max_features_per_model`; `None`: the store's default).
pub fn open(
    location: &Location,
    credentials: Credentials,
    mode: Mode,
    max_features: Option<usize>,
) -> anyhow::Result<Opened> {
    match location {
        Location::Data(dir) => {
            let store = match mode {
                Mode::Service => SqliteStore::open(dir),
                Mode::Import => SqliteStore::open_for_import(dir),
            }
            .with_context(|| format!("opening the data directory {}", dir.display()))?;
            if let Some(max) = max_features {
                store.set_max_features_per_model(max);
            }
            Ok(Opened::Embedded(store))
        }
        Location::ClickHouse(url) => Ok(Opened::Shared(connect_clickhouse(
            url,
            credentials,
            max_features,
        )?)),
    }
}

/// The alert state every `serve` process of a shared store shares: the ClickHouse database's
/// alert tables (created if missing). `None` for a data directory, whose alert state is its
/// own `alerts.sqlite`.
pub fn shared_alert_state(
    location: &Location,
    credentials: Credentials,
) -> anyhow::Result<Option<Arc<dyn modelwatch_alerts::db::AlertStore>>> {
    let Location::ClickHouse(url) = location else {
        return Ok(None);
    };
    let config = ClickHouseConfig::from_url(url)
        .map_err(anyhow::Error::msg)?
        .with_credentials(credentials.user, credentials.password)
        .with_ca_file(credentials.ca_file);
    let state = ClickHouseAlertStore::connect(&config)
        .with_context(|| format!("connecting the alert state to {url}"))?;
    Ok(Some(Arc::new(state)))
}

/// Connects to a ClickHouse database (creating the tables if missing).
fn connect_clickhouse(
    url: &str,
    credentials: Credentials,
    max_features: Option<usize>,
) -> anyhow::Result<Arc<dyn Store>> {
    let config = ClickHouseConfig::from_url(url)
        .map_err(anyhow::Error::msg)?
        .with_credentials(credentials.user, credentials.password)
        .with_ca_file(credentials.ca_file);
    let mut store =
        ClickHouseStore::connect(&config).with_context(|| format!("connecting to {url}"))?;
    if let Some(max) = max_features {
        store = store.with_max_features(max);
    }
    Ok(Arc::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn flags_then_environment_then_config() {
        let ch = |u: &str| Some(Location::ClickHouse(u.to_owned()));
        let env = |k: &str| (k == "MODELWATCH_STORE").then(|| "clickhouse://e:1/db".to_owned());
        let dir = Path::new("d");
        assert_eq!(
            Location::choose(Some(dir), None, Some("clickhouse://c:1/db"), &env).unwrap(),
            Some(Location::Data(dir.to_owned()))
        );
        assert_eq!(
            Location::choose(None, Some("clickhouse://f:1/db"), None, &env).unwrap(),
            ch("clickhouse://f:1/db")
        );
        assert_eq!(
            Location::choose(None, Some("clickhouses://f:1/db"), None, &env).unwrap(),
            ch("clickhouses://f:1/db")
        );
        assert_eq!(
            Location::choose(None, None, Some("clickhouse://c:1/db"), &env).unwrap(),
            ch("clickhouse://e:1/db")
        );
        assert_eq!(
            Location::choose(None, None, Some("clickhouse://c:1/db"), &no_env).unwrap(),
            ch("clickhouse://c:1/db")
        );
        assert_eq!(Location::choose(None, None, None, &no_env).unwrap(), None);
    }

    #[test]
    fn a_bad_url_names_where_it_came_from_and_what_is_wrong() {
        let e = Location::url("--store", "postgres://h:1/db")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--store `postgres://h:1/db`") && e.contains("unknown store `postgres://`"),
            "{e}"
        );
        let e = Location::url("MODELWATCH_STORE", "h:8123/db")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("MODELWATCH_STORE `h:8123/db`: not a store URL"),
            "{e}"
        );
        let e = Location::url("--store", "clickhouse://db/mw")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--store: server `db`") && e.contains("has no port"),
            "{e}"
        );
        let e = Location::url("--to", "clickhouse://db:8123")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("--to: ") && e.contains("names no database"),
            "{e}"
        );
        let e = Location::url("--store", "clickhouse://mw:secret@db:8123/mw")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("carries no user or password") && !e.contains("secret"),
            "{e}"
        );
        assert_eq!(
            Location::url_or_dir("--to", "some/dir").unwrap(),
            Location::Data(PathBuf::from("some/dir"))
        );
    }
}
