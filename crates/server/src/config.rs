//! The service's configuration: one typed struct, read from a TOML file, then overridden by
//! environment variables. Unknown keys are errors, so a typo never silently does nothing.
//! Every key is documented in docs/configuration.md; keep the two in step.

use modelwatch_alerts::rule::Origin;
use modelwatch_alerts::{AlertsConfig, RuleSpec};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address to listen on. Port 0 picks a free port (printed at start).
    pub addr: SocketAddr,
    /// The data directory of the embedded store and its alert state (`alerts.sqlite`); unused
    /// with `store` set (the alert state is then in the shared store too).
    pub data_dir: PathBuf,
    /// A shared store instead of the embedded one: `clickhouse://HOST:PORT[,HOST:PORT]/DATABASE`
    /// (`clickhouses://` for TLS). Unset: the embedded store in `data_dir`.
    pub store: Option<String>,
    /// Credentials for a ClickHouse `store` (never on the command line, where `ps` shows them).
    pub clickhouse: ClickHouseCredentials,
    pub limits: Limits,
    pub auth: Auth,
    pub retention: Retention,
    /// Evaluation schedule, retries and notifiers (`[alerts]`, `[alerts.notifiers.<name>]`).
    pub alerts: AlertsConfig,
    /// Per-model settings, by model name.
    pub models: BTreeMap<String, ModelConfig>,
}

/// `[clickhouse]`: the user and password modelwatch sends to a ClickHouse `store`, and the
/// cluster lease's epoch.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseCredentials {
    pub user: Option<String>,
    pub password: Option<String>,
    /// Length of the cluster lease's epochs (ADR 020): the process holding it evaluates the
    /// alert rules, sends notifications and refreshes in the background; a dead holder is
    /// replaced within about two epochs. The processes' clocks must differ by less than a
    /// quarter of it.
    pub lease_seconds: u64,
    /// With `clickhouses://`: a PEM file of the certificate authorities to trust instead of the
    /// Mozilla roots (a self-hosted cluster whose certificates its own CA signed).
    pub ca_file: Option<PathBuf>,
}

impl Default for ClickHouseCredentials {
    fn default() -> Self {
        ClickHouseCredentials {
            user: None,
            password: None,
            lease_seconds: 10,
            ca_file: None,
        }
    }
}

/// Never prints the password (a config is logged by `{:?}` in places).
impl std::fmt::Debug for ClickHouseCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClickHouseCredentials")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("lease_seconds", &self.lease_seconds)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest request body accepted, after gzip decompression (413 above it).
    pub max_body_bytes: usize,
    /// Most rows in one ingest batch (413 above it).
    pub max_batch_rows: usize,
    /// Most features one model may have: a row (prediction or reference) that would add one
    /// more is refused on its own, naming the feature and the limit, and the batch's other rows
    /// are kept. Bounds what one client sending values as feature names can cost everyone.
    pub max_features_per_model: usize,
}

/// API keys. All lists empty (the default) means no authentication. An admin key may do
/// everything; an ingest key may only send predictions, labels and KPIs; a read key may only read.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    pub ingest_keys: Vec<String>,
    pub read_keys: Vec<String>,
    pub admin_keys: Vec<String>,
    /// Host names (as in the `Host` header, without the port) that may reach the service while
    /// no API key is set, besides `localhost` and IP addresses: a guard against DNS rebinding
    /// (server/src/browser.rs).
    pub allowed_hosts: Vec<String>,
}

impl Auth {
    /// No key of any kind is set: every request is allowed (the default).
    pub fn is_open(&self) -> bool {
        self.ingest_keys.is_empty() && self.read_keys.is_empty() && self.admin_keys.is_empty()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Retention {
    /// Days of predictions kept for models with no setting of their own; none keeps all.
    pub default_days: Option<u32>,
    /// How often old data is deleted.
    pub interval_seconds: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    pub retention_days: Option<u32>,
    /// The model's task (`binary`, `multiclass` or `regression`): overrides detection, and
    /// any task declared over the API.
    pub task: Option<modelwatch_engine::performance::Task>,
    /// Alert rules of the model (`[[models.<name>.rules]]`), read-only over the API.
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            addr: "127.0.0.1:8080".parse().expect("valid address"),
            data_dir: PathBuf::from("modelwatch-data"),
            store: None,
            clickhouse: ClickHouseCredentials::default(),
            limits: Limits::default(),
            auth: Auth::default(),
            retention: Retention::default(),
            alerts: AlertsConfig::default(),
            models: BTreeMap::new(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 64 * 1024 * 1024,
            max_batch_rows: 100_000,
            max_features_per_model: modelwatch_core::DEFAULT_MAX_FEATURES_PER_MODEL,
        }
    }
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            default_days: None,
            interval_seconds: 3600,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: String,
        source: Box<toml::de::Error>,
    },
    #[error("environment variable {name}={value:?}: {reason}")]
    Env {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error("config: {0}")]
    Invalid(String),
}

impl Config {
    /// Reads the file (if any), then applies `MODELWATCH_*` variables from `env`.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })?;
                Config::from_toml(&text).map_err(|source| ConfigError::Parse {
                    path: path.display().to_string(),
                    source: Box::new(source),
                })?
            }
            None => Config::default(),
        };
        config.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }

    pub fn from_toml(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn parsed<T: std::str::FromStr>(name: &'static str, value: String) -> Result<T, ConfigError>
        where
            T::Err: std::fmt::Display,
        {
            value.parse().map_err(|e: T::Err| ConfigError::Env {
                name,
                reason: e.to_string(),
                value,
            })
        }
        let keys = |v: String| -> Vec<String> {
            v.split(',')
                .map(str::trim)
                .filter(|k| !k.is_empty())
                .map(String::from)
                .collect()
        };
        if let Some(v) = env("MODELWATCH_ADDR") {
            self.addr = parsed("MODELWATCH_ADDR", v)?;
        }
        if let Some(v) = env("MODELWATCH_DATA") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = env("MODELWATCH_STORE").filter(|v| !v.is_empty()) {
            self.store = Some(v);
        }
        if let Some(v) = env("MODELWATCH_CLICKHOUSE_USER") {
            self.clickhouse.user = Some(v);
        }
        if let Some(v) = env("MODELWATCH_CLICKHOUSE_PASSWORD") {
            self.clickhouse.password = Some(v);
        }
        if let Some(v) = env("MODELWATCH_CLICKHOUSE_CA_FILE").filter(|v| !v.is_empty()) {
            self.clickhouse.ca_file = Some(PathBuf::from(v));
        }
        if let Some(v) = env("MODELWATCH_MAX_BODY_BYTES") {
            self.limits.max_body_bytes = parsed("MODELWATCH_MAX_BODY_BYTES", v)?;
        }
        if let Some(v) = env("MODELWATCH_MAX_BATCH_ROWS") {
            self.limits.max_batch_rows = parsed("MODELWATCH_MAX_BATCH_ROWS", v)?;
        }
        if let Some(v) = env("MODELWATCH_MAX_FEATURES_PER_MODEL") {
            self.limits.max_features_per_model = parsed("MODELWATCH_MAX_FEATURES_PER_MODEL", v)?;
        }
        if let Some(v) = env("MODELWATCH_INGEST_KEYS") {
            self.auth.ingest_keys = keys(v);
        }
        if let Some(v) = env("MODELWATCH_READ_KEYS") {
            self.auth.read_keys = keys(v);
        }
        if let Some(v) = env("MODELWATCH_ADMIN_KEYS") {
            self.auth.admin_keys = keys(v);
        }
        if let Some(v) = env("MODELWATCH_ALLOWED_HOSTS") {
            self.auth.allowed_hosts = keys(v);
        }
        if let Some(v) = env("MODELWATCH_RETENTION_DAYS") {
            self.retention.default_days = Some(parsed("MODELWATCH_RETENTION_DAYS", v)?);
        }
        Ok(())
    }

    /// The checks [`Config::load`] runs once the file and the environment are read (public for
    /// the config file's fuzz target, crates/fuzz-targets).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.limits.max_body_bytes == 0
            || self.limits.max_batch_rows == 0
            || self.limits.max_features_per_model == 0
        {
            return Err(ConfigError::Invalid("limits must be greater than 0".into()));
        }
        if self.retention.interval_seconds == 0 {
            return Err(ConfigError::Invalid(
                "retention.interval_seconds must be greater than 0".into(),
            ));
        }
        if self.clickhouse.lease_seconds == 0 {
            return Err(ConfigError::Invalid(
                "clickhouse.lease_seconds must be at least 1".into(),
            ));
        }
        self.alerts.validate().map_err(ConfigError::Invalid)?;
        let notifiers: Vec<String> = self.alerts.notifiers.keys().cloned().collect();
        for (name, model) in &self.models {
            modelwatch_core::ModelName::new(name)
                .map_err(|e| ConfigError::Invalid(format!("[models.{name}]: {e}")))?;
            for rule in &model.rules {
                rule.clone()
                    .validate(name, Origin::Config, &notifiers)
                    .map_err(|e| {
                        ConfigError::Invalid(format!(
                            "[[models.{name}.rules]] `{}`: {e}",
                            rule.name
                        ))
                    })?;
            }
        }
        let all = [
            &self.auth.ingest_keys,
            &self.auth.read_keys,
            &self.auth.admin_keys,
        ];
        if all.iter().any(|keys| keys.iter().any(|k| k.len() < 16)) {
            return Err(ConfigError::Invalid(
                "API keys must be at least 16 characters".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_errors() {
        let err = Config::from_toml("adr = \"127.0.0.1:1\"").unwrap_err();
        assert!(err.to_string().contains("unknown field `adr`"), "{err}");
        let err = Config::from_toml("[limits]\nmax_rows = 3").unwrap_err();
        assert!(err.to_string().contains("max_rows"), "{err}");
    }

    #[test]
    fn alert_rules_and_notifiers_are_checked_at_load() {
        let ok = "[alerts.notifiers.pd]\nkind = \"pagerduty\"\nrouting_key = \"k\"\n\
                  [[models.fraud.rules]]\nname = \"f1\"\nsignal = \"f1\"\n\
                  condition = { kind = \"threshold\", op = \"<\", value = 0.8 }\n\
                  decision = \"retrain\"\nseverity = \"critical\"\nnotify = [\"pd\"]\n";
        let c = Config::from_toml(ok).unwrap();
        assert_eq!(c.models["fraud"].rules[0].name, "f1");
        assert!(c.validate().is_ok());
        let typo = ok.replace("severity", "severty");
        let e = Config::from_toml(&typo).unwrap_err().to_string();
        assert!(e.contains("severty"), "{e}");
        let bad_route = Config::from_toml(&ok.replace("[\"pd\"]", "[\"slack\"]")).unwrap();
        let e = bad_route.validate().unwrap_err().to_string();
        assert!(
            e.contains("models.fraud.rules") && e.contains("`notify`"),
            "{e}"
        );
        let e = Config::from_toml("[alerts.notifiers.w]\nkind = \"webhook\"\nurl = \"x\"")
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("alerts.notifiers.w") && e.contains("url"), "{e}");
    }

    /// A slice (`country:DE`) in `alerts.metrics_segments` was accepted and exported nothing:
    /// it is refused at load with the breakdown to name instead; a feature or tag is accepted.
    #[test]
    fn metrics_segments_name_a_breakdown_not_a_slice() {
        let segments = |v: &str| {
            Config::from_toml(&format!("[alerts.metrics_segments]\nfraud = \"{v}\"\n"))
                .unwrap()
                .validate()
        };
        assert!(segments("country").is_ok());
        assert!(segments("tag:region").is_ok());
        let e = segments("country:DE").unwrap_err().to_string();
        assert!(
            e.contains("alerts.metrics_segments.fraud") && e.contains("\"country\""),
            "{e}"
        );
        let e = segments("tag:region:eu").unwrap_err().to_string();
        assert!(e.contains("\"tag:region\""), "{e}");
    }

    /// A shared store and its credentials: from the file, the environment winning; the
    /// password never in a debug print.
    #[test]
    fn store_and_clickhouse_credentials_file_then_env() {
        let file = "store = \"clickhouse://a:8123/mw\"\n[clickhouse]\nuser = \"mw\"\npassword = \"hunter2\"\n";
        let c = Config::from_toml(file).unwrap();
        assert_eq!(c.store.as_deref(), Some("clickhouse://a:8123/mw"));
        assert_eq!(c.clickhouse.user.as_deref(), Some("mw"));
        assert!(!format!("{c:?}").contains("hunter2"));
        let mut c = c;
        let env = |k: &str| match k {
            "MODELWATCH_STORE" => Some("clickhouses://b:8443/mw".to_string()),
            "MODELWATCH_CLICKHOUSE_PASSWORD" => Some("s3cret".to_string()),
            "MODELWATCH_CLICKHOUSE_CA_FILE" => Some("/etc/ssl/ch-ca.pem".to_string()),
            _ => None,
        };
        c.apply_env(env).unwrap();
        assert_eq!(c.store.as_deref(), Some("clickhouses://b:8443/mw"));
        assert_eq!(c.clickhouse.user.as_deref(), Some("mw"));
        assert_eq!(c.clickhouse.password.as_deref(), Some("s3cret"));
        assert_eq!(
            c.clickhouse.ca_file.as_deref(),
            Some(Path::new("/etc/ssl/ch-ca.pem"))
        );
        let c = Config::from_toml("[clickhouse]\nca_file = \"ca.pem\"").unwrap();
        assert_eq!(c.clickhouse.ca_file.as_deref(), Some(Path::new("ca.pem")));
        assert_eq!(Config::default().store, None);
        let e = Config::from_toml("[clickhouse]\nusr = \"mw\"").unwrap_err();
        assert!(e.to_string().contains("usr"), "{e}");
    }

    #[test]
    fn the_cluster_lease_lasts_ten_seconds_unless_configured() {
        assert_eq!(Config::default().clickhouse.lease_seconds, 10);
        let c = Config::from_toml("[clickhouse]\nlease_seconds = 2").unwrap();
        assert_eq!(c.clickhouse.lease_seconds, 2);
        let zero = Config::from_toml("[clickhouse]\nlease_seconds = 0").unwrap();
        let e = zero.validate().unwrap_err();
        assert!(e.to_string().contains("clickhouse.lease_seconds"), "{e}");
    }

    #[test]
    fn file_then_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "addr = \"127.0.0.1:9000\"\n[retention]\ndefault_days = 90\n[models.fraud]\nretention_days = 7\n",
        )
        .unwrap();
        let env = |k: &str| (k == "MODELWATCH_ADDR").then(|| "127.0.0.1:9100".to_string());
        let c = Config::load(Some(&path), env).unwrap();
        assert_eq!(c.addr.port(), 9100);
        assert_eq!(c.retention.default_days, Some(90));
        assert_eq!(c.models["fraud"].retention_days, Some(7));
        assert_eq!(c.limits.max_features_per_model, 2_000);
        let features = |k: &str| (k == "MODELWATCH_MAX_FEATURES_PER_MODEL").then(|| "50".into());
        let c = Config::load(Some(&path), features).unwrap();
        assert_eq!(c.limits.max_features_per_model, 50);
        let c = Config::from_toml("[limits]\nmax_features_per_model = 9000").unwrap();
        assert_eq!(c.limits.max_features_per_model, 9_000);
        let bad = |k: &str| (k == "MODELWATCH_MAX_BATCH_ROWS").then(|| "lots".to_string());
        assert!(Config::load(None, bad)
            .unwrap_err()
            .to_string()
            .contains("MODELWATCH_MAX_BATCH_ROWS"));
    }
}
