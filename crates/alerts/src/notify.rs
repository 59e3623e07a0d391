//! Notifiers: where a firing or resolved alert is sent, and how each receiver wants it.
//!
//! Every notification goes through the outbox first (see `db`): it is written, then sent, and
//! marked delivered only when the receiver said 2xx (SMTP: accepted the mail). A failure keeps
//! it with its error and a next attempt time; nothing is dropped.

use crate::lifecycle::{Alert, State};
use hmac::{Hmac, Mac};
use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::time::Duration;

/// Header carrying the webhook body's signature: `sha256=<hex HMAC-SHA256>` of
/// `<timestamp>.<body>` with the notifier's secret.
pub const SIGNATURE_HEADER: &str = "x-modelwatch-signature";
/// Header carrying the Unix time (seconds) that the signature covers.
pub const TIMESTAMP_HEADER: &str = "x-modelwatch-timestamp";

const PAGERDUTY_URL: &str = "https://events.pagerduty.com/v2/enqueue";

fn pagerduty_url() -> String {
    PAGERDUTY_URL.to_owned()
}

fn smtp_port() -> u16 {
    587
}

/// How an SMTP connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain text: only for a relay on the same host.
    None,
    /// STARTTLS, required.
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// One configured receiver. TOML: `[alerts.notifiers.<name>]` with `kind = "..."`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum NotifierConfig {
    /// A JSON POST of the alert, signed with HMAC-SHA256 when `secret` is set. Also the way
    /// to call an orchestrator (route a `retrain` rule to it).
    Webhook {
        url: String,
        #[serde(default, skip_serializing)]
        secret: Option<String>,
    },
    /// A Slack incoming webhook.
    Slack { url: String },
    /// PagerDuty Events API v2: trigger and resolve with the alert's fingerprint as dedup key.
    Pagerduty {
        #[serde(skip_serializing)]
        routing_key: String,
        #[serde(default = "pagerduty_url")]
        url: String,
    },
    /// Mail over SMTP.
    Email {
        smtp_host: String,
        #[serde(default = "smtp_port")]
        smtp_port: u16,
        #[serde(default)]
        tls: SmtpTls,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        username: Option<String>,
        #[serde(default, skip_serializing)]
        password: Option<String>,
        from: String,
        to: Vec<String>,
    },
    /// Prometheus Alertmanager: `POST <url>/api/v2/alerts`.
    Alertmanager { url: String },
}

impl NotifierConfig {
    pub fn kind(&self) -> &'static str {
        match self {
            NotifierConfig::Webhook { .. } => "webhook",
            NotifierConfig::Slack { .. } => "slack",
            NotifierConfig::Pagerduty { .. } => "pagerduty",
            NotifierConfig::Email { .. } => "email",
            NotifierConfig::Alertmanager { .. } => "alertmanager",
        }
    }

    /// Checks what serde cannot: URLs and addresses.
    pub fn validate(&self, name: &str) -> Result<(), String> {
        let url_ok = |u: &str| u.starts_with("http://") || u.starts_with("https://");
        let bad_url = |field: &str, u: &str| {
            Err(format!(
                "notifier `{name}`: `{field}` {u:?} is not an http:// or https:// URL"
            ))
        };
        match self {
            NotifierConfig::Webhook { url, .. }
            | NotifierConfig::Slack { url }
            | NotifierConfig::Pagerduty { url, .. }
            | NotifierConfig::Alertmanager { url } => {
                if !url_ok(url) {
                    return bad_url("url", url);
                }
            }
            NotifierConfig::Email { from, to, .. } => {
                from.parse::<lettre::message::Mailbox>()
                    .map_err(|e| format!("notifier `{name}`: `from` {from:?}: {e}"))?;
                if to.is_empty() {
                    return Err(format!(
                        "notifier `{name}`: `to` needs at least one address"
                    ));
                }
                for t in to {
                    t.parse::<lettre::message::Mailbox>()
                        .map_err(|e| format!("notifier `{name}`: `to` {t:?}: {e}"))?;
                }
            }
        }
        if let NotifierConfig::Pagerduty { routing_key, .. } = self {
            if routing_key.trim().is_empty() {
                return Err(format!("notifier `{name}`: `routing_key` is empty"));
            }
        }
        Ok(())
    }
}

/// What is queued: the alert as it was when the notification was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub alert: Alert,
    /// Link to the model's page on the dashboard, when `alerts.dashboard_url` is set.
    pub dashboard_url: Option<String>,
}

impl Notification {
    fn firing(&self) -> bool {
        self.alert.state != State::Resolved
    }

    fn status(&self) -> &'static str {
        if self.firing() {
            "firing"
        } else {
            "resolved"
        }
    }

    fn value_line(&self) -> String {
        let a = &self.alert;
        let number = |v: Option<f64>| v.map_or("n/a".to_owned(), crate::condition::fmt_value);
        let mut s = format!("{} = {}", a.signal, number(a.value));
        if a.baseline.is_some() {
            s.push_str(&format!(" (baseline {})", number(a.baseline)));
        }
        if let (Some(st), Some(en)) = (a.window_start, a.window_end) {
            s.push_str(&format!(" in window {st} – {en}"));
        }
        if let Some(n) = a.n {
            s.push_str(&format!(", n = {n}"));
        }
        s
    }

    /// `Acknowledged by alice at ...: comment`, when someone took the alert.
    fn ack_line(&self) -> Option<String> {
        self.alert.acknowledged.as_ref().map(|a| {
            let mut s = format!("Acknowledged by {} at {}", a.owner, a.at);
            if !a.comment.is_empty() {
                s.push_str(&format!(": {}", a.comment));
            }
            s
        })
    }

    /// The likely causes in a few lines (a firing performance alert's): the `top` features most
    /// likely behind the drop, then the worst segment.
    pub fn causes_lines(&self, top: usize) -> Vec<String> {
        let Some(c) = self.alert.causes.as_ref().filter(|_| self.firing()) else {
            return Vec::new();
        };
        let mut lines = Vec::new();
        let features: Vec<String> = c
            .features
            .iter()
            .filter(|f| f.score > 0.0)
            .take(top)
            .enumerate()
            .map(|(i, f)| format!("{}. {}", i + 1, f.reason))
            .collect();
        if !features.is_empty() {
            lines.push("Likely causes:".to_owned());
            lines.extend(features);
        }
        if let Some(s) = c.segments.first() {
            let interval = s
                .interval
                .map(|i| {
                    format!(
                        ", 95 % CI {}–{}",
                        crate::condition::fmt_value(i.low),
                        crate::condition::fmt_value(i.high)
                    )
                })
                .unwrap_or_default();
            lines.push(format!(
                "Worst segment: {} ({} {} on {} rows{interval})",
                s.segment,
                c.metric,
                crate::condition::fmt_value(s.value),
                s.rows
            ));
        }
        lines
    }

    /// The title line: `[FIRING critical] fraud: f1-vs-test → retrain`.
    pub fn title(&self) -> String {
        let a = &self.alert;
        format!(
            "[{} {}] {}: {} → {}",
            self.status().to_uppercase(),
            a.severity,
            a.model,
            a.rule,
            a.decision
        )
    }

    /// Plain text for mail and Slack's fallback.
    pub fn text(&self) -> String {
        let mut t = format!(
            "{}\n{}\n{}",
            self.title(),
            self.value_line(),
            self.alert.summary
        );
        for l in self.causes_lines(3) {
            t.push_str(&format!("\n{l}"));
        }
        if let Some(a) = self.ack_line() {
            t.push_str(&format!("\n{a}"));
        }
        if let Some(u) = &self.dashboard_url {
            t.push_str(&format!("\nDashboard: {u}"));
        }
        t
    }

    /// The generic webhook's JSON body.
    pub fn webhook_body(&self) -> Value {
        let a = &self.alert;
        json!({
            "version": "1",
            "status": self.status(),
            "fingerprint": a.fingerprint,
            "model": a.model,
            "rule": a.rule,
            "signal": a.signal,
            "decision": a.decision,
            "severity": a.severity,
            "value": a.value,
            "baseline": a.baseline,
            "window": {"start": a.window_start, "end": a.window_end},
            "n": a.n,
            "summary": a.summary,
            "started_at": a.fired_at.unwrap_or(a.active_at),
            "resolved_at": a.resolved_at,
            "acknowledged": a.acknowledged,
            "dashboard_url": self.dashboard_url,
            "causes": a.causes,
        })
    }

    pub fn slack_body(&self) -> Value {
        let a = &self.alert;
        let icon = if self.firing() {
            ":red_circle:"
        } else {
            ":large_green_circle:"
        };
        let mut lines = vec![
            format!(
                "{icon} *{}* [{}] *{}* on model `{}` — decision: *{}*",
                self.status().to_uppercase(),
                a.severity,
                a.rule,
                a.model,
                a.decision
            ),
            self.value_line(),
            a.summary.clone(),
        ];
        // Short: the three likely causes on top and the worst segment; the rest is one click
        // away on the dashboard.
        lines.extend(self.causes_lines(3));
        lines.extend(self.ack_line());
        if let Some(u) = &self.dashboard_url {
            lines.push(format!("<{u}|Open the dashboard>"));
        }
        let text = lines.join("\n");
        json!({"text": text,
               "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]})
    }

    pub fn pagerduty_body(&self, routing_key: &str) -> Value {
        let a = &self.alert;
        if !self.firing() {
            return json!({"routing_key": routing_key, "event_action": "resolve",
                          "dedup_key": a.fingerprint});
        }
        let severity = match a.severity.as_str() {
            "critical" => "critical",
            "warning" => "warning",
            _ => "info",
        };
        let mut body = json!({
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": a.fingerprint,
            "payload": {
                "summary": format!("{}: {} — {}", a.model, a.rule, self.value_line()),
                "source": format!("modelwatch/{}", a.model),
                "severity": severity,
                "component": a.model,
                "group": a.decision,
                "class": a.signal,
                "timestamp": a.fired_at.unwrap_or(a.active_at),
                "custom_details": self.webhook_body(),
            },
        });
        if let Some(u) = &self.dashboard_url {
            body["links"] = json!([{"href": u, "text": "modelwatch dashboard"}]);
        }
        body
    }

    /// Alertmanager's body. `ends_at` on a firing alert is when Alertmanager may consider it
    /// resolved if it hears nothing more (Prometheus sends now + 4 resend intervals).
    pub fn alertmanager_body(&self, ends_at: Option<modelwatch_core::Timestamp>) -> Value {
        let a = &self.alert;
        let mut alert = json!({
            "labels": {"alertname": a.rule, "model": a.model, "severity": a.severity,
                       "decision": a.decision, "signal": a.signal, "source": "modelwatch"},
            "annotations": {"summary": self.value_line(), "description": a.summary,
                            "value": a.value.map(crate::condition::fmt_value),
                            "baseline": a.baseline.map(crate::condition::fmt_value)},
            "startsAt": a.fired_at.unwrap_or(a.active_at),
        });
        if let Some(ack) = self.ack_line() {
            alert["annotations"]["acknowledged"] = json!(ack);
        }
        if let Some(r) = a.resolved_at.or(ends_at) {
            alert["endsAt"] = json!(r);
        }
        if let Some(u) = &self.dashboard_url {
            alert["generatorURL"] = json!(u);
        }
        json!([alert])
    }
}

/// Signs `<timestamp>.<body>`: `sha256=<hex>`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any size");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// Sends notifications; one HTTP agent (connection pool) for all receivers.
pub struct Sender {
    http: ureq::Agent,
    notifiers: BTreeMap<String, NotifierConfig>,
}

impl Sender {
    pub fn new(notifiers: BTreeMap<String, NotifierConfig>) -> Result<Sender, String> {
        let http: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .user_agent(concat!("modelwatch/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Sender { http, notifiers })
    }

    pub fn names(&self) -> Vec<String> {
        self.notifiers.keys().cloned().collect()
    }

    pub fn notifiers(&self) -> &BTreeMap<String, NotifierConfig> {
        &self.notifiers
    }

    /// POSTs a JSON body on the blocking pool; `Err` says what the receiver answered.
    async fn post(
        &self,
        url: &str,
        body: Vec<u8>,
        headers: Vec<(&'static str, String)>,
    ) -> Result<(), String> {
        let agent = self.http.clone();
        let url = url.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut req = agent.post(&url).header("content-type", "application/json");
            for (k, v) in headers {
                req = req.header(k, v);
            }
            let mut resp = req
                .send(&body[..])
                .map_err(|e| format!("POST {url}: {e}"))?;
            let status = resp.status();
            if status.is_success() {
                return Ok(());
            }
            let text = resp.body_mut().read_to_string().unwrap_or_default();
            let text: String = text.chars().take(200).collect();
            Err(format!("POST {url}: HTTP {status}: {text}"))
        })
        .await
        .map_err(|e| format!("sender task failed: {e}"))?
    }

    /// Re-sends a firing alert to every Alertmanager notifier among `routes` (all when empty),
    /// valid until `ends_at`; best effort: the outbox already delivered the trigger once.
    pub async fn resend_to_alertmanagers(
        &self,
        n: &Notification,
        routes: &[String],
        ends_at: modelwatch_core::Timestamp,
    ) {
        for (name, cfg) in &self.notifiers {
            let NotifierConfig::Alertmanager { url } = cfg else {
                continue;
            };
            if !routes.is_empty() && !routes.contains(name) {
                continue;
            }
            let url = format!("{}/api/v2/alerts", url.trim_end_matches('/'));
            let body = match serde_json::to_vec(&n.alertmanager_body(Some(ends_at))) {
                Ok(b) => b,
                Err(_) => continue,
            };
            if let Err(e) = self.post(&url, body, Vec::new()).await {
                tracing::warn!(notifier = %name, error = %e, "alertmanager re-send failed");
            }
        }
    }

    /// Delivers one notification to the named notifier. `Err` carries what a person needs to
    /// fix it (status and body start, or the connection error).
    pub async fn send(
        &self,
        notifier: &str,
        n: &Notification,
        now_secs: i64,
    ) -> Result<(), String> {
        let Some(cfg) = self.notifiers.get(notifier) else {
            return Err(format!("notifier `{notifier}` is not configured"));
        };
        let json = |v: Value| serde_json::to_vec(&v).map_err(|e| e.to_string());
        match cfg {
            NotifierConfig::Webhook { url, secret } => {
                let body = json(n.webhook_body())?;
                let headers = match secret {
                    Some(s) => vec![
                        (TIMESTAMP_HEADER, now_secs.to_string()),
                        (SIGNATURE_HEADER, sign(s, now_secs, &body)),
                    ],
                    None => Vec::new(),
                };
                self.post(url, body, headers).await
            }
            NotifierConfig::Slack { url } => {
                self.post(url, json(n.slack_body())?, Vec::new()).await
            }
            NotifierConfig::Pagerduty { url, routing_key } => {
                self.post(url, json(n.pagerduty_body(routing_key))?, Vec::new())
                    .await
            }
            NotifierConfig::Alertmanager { url } => {
                let url = format!("{}/api/v2/alerts", url.trim_end_matches('/'));
                self.post(&url, json(n.alertmanager_body(None))?, Vec::new())
                    .await
            }
            NotifierConfig::Email {
                smtp_host,
                smtp_port,
                tls,
                username,
                password,
                from,
                to,
            } => {
                let mut msg = Message::builder()
                    .from(from.parse().map_err(|e| format!("from {from:?}: {e}"))?)
                    .subject(n.title())
                    .header(ContentType::TEXT_PLAIN);
                for t in to {
                    msg = msg.to(t.parse().map_err(|e| format!("to {t:?}: {e}"))?);
                }
                let msg = msg.body(n.text()).map_err(|e| e.to_string())?;
                let builder = match tls {
                    SmtpTls::None => {
                        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp_host)
                    }
                    SmtpTls::Starttls => {
                        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(smtp_host)
                            .map_err(|e| e.to_string())?
                    }
                    SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(smtp_host)
                        .map_err(|e| e.to_string())?,
                };
                let mut builder = builder
                    .port(*smtp_port)
                    .timeout(Some(Duration::from_secs(10)));
                if let Some(u) = username {
                    builder = builder.credentials(Credentials::new(
                        u.clone(),
                        password.clone().unwrap_or_default(),
                    ));
                }
                builder
                    .build()
                    .send(msg)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("smtp {smtp_host}:{smtp_port}: {e}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_and_body() {
        // The value Python computes independently:
        // hmac.new(b"key", b"1700000000.{}", hashlib.sha256).hexdigest()
        assert_eq!(
            sign("key", 1_700_000_000, b"{}"),
            "sha256=9d713ed406bb7076d4123f0dc2c39d2df5c654ed4b0cd56b52c8b4c940bd63ae"
        );
    }

    fn alert(state: State) -> Notification {
        let t = modelwatch_core::Timestamp::from_secs(1_800_000_000);
        Notification {
            alert: Alert {
                fingerprint: "0123456789abcdef".into(),
                model: "fraud".into(),
                rule: "f1-vs-test".into(),
                signal: "f1".into(),
                severity: "critical".into(),
                decision: "retrain".into(),
                state,
                active_at: t,
                fired_at: Some(t),
                resolved_at: (state == State::Resolved).then_some(t),
                last_active_at: t,
                evaluated_at: t,
                value: Some(0.71),
                baseline: Some(0.82),
                window_start: Some(t),
                window_end: Some(t),
                n: Some(640),
                summary: "0.71 vs baseline 0.82".into(),
                notified: true,
                silenced: false,
                acknowledged: None,
                causes: None,
            },
            dashboard_url: Some("http://dash/models/fraud".into()),
        }
    }

    #[test]
    fn alertmanager_re_sends_carry_an_expiry_and_resolves_their_end() {
        let until = modelwatch_core::Timestamp::from_secs(1_800_000_240);
        let firing = alert(State::Firing).alertmanager_body(Some(until));
        assert_eq!(firing[0]["endsAt"], "2027-01-15T08:04:00Z");
        assert!(alert(State::Firing).alertmanager_body(None)[0]
            .get("endsAt")
            .is_none());
        let resolved = alert(State::Resolved).alertmanager_body(Some(until));
        assert_eq!(resolved[0]["endsAt"], "2027-01-15T08:00:00Z");
        assert_eq!(resolved[0]["labels"]["alertname"], "f1-vs-test");
        let pd = alert(State::Resolved).pagerduty_body("k");
        assert_eq!(pd["event_action"], "resolve");
        assert_eq!(pd["dedup_key"], "0123456789abcdef");
    }

    /// Causes with `n` features (scores n-1 .. 0) and one segment.
    fn with_causes(state: State, n: usize) -> Notification {
        let mut a = alert(state);
        let c = serde_json::json!({
            "computed_at": "2027-01-15T08:00:00Z", "window_start": "2027-01-14T00:00:00Z",
            "window_end": "2027-01-15T00:00:00Z", "metric": "f1", "labelled_rows": 640,
            "sampled_rows": 640, "sample_cap": 20000, "importance": "error_correlation",
            "min_segment_rows": 50,
            "features": (0..n).map(|i| serde_json::json!({
                "feature": format!("f{i}"), "score": (n - 1 - i) as f64, "change": 0.5,
                "importance": 0.4, "importance_measure": "spearman", "drifted": i == 0,
                "reason": format!("f{i}: why {i}")})).collect::<Vec<_>>(),
            "segments": [{"segment": "country = BR", "conditions": [{"feature": "country", "value": "BR"}],
                "value": 0.31, "rows": 812, "interval": {"low": 0.27, "high": 0.35, "method": "bootstrap"},
                "reference_value": null, "reference_rows": 0, "drop": 0.5, "drop_lower_bound": 0.45}],
        });
        a.alert.causes = Some(serde_json::from_value(c).unwrap());
        a
    }

    #[test]
    fn slack_says_the_three_likely_causes_and_the_worst_segment() {
        let n = with_causes(State::Firing, 5);
        let text = n.slack_body()["text"].as_str().unwrap().to_owned();
        assert!(
            text.contains("Likely causes:\n1. f0: why 0\n2. f1: why 1\n3. f2: why 2\nWorst segment: country = BR (f1 0.31 on 812 rows, 95 % CI 0.27–0.35)"),
            "{text}"
        );
        assert!(!text.contains("f3: why"), "{text}");
        // A feature that explains nothing (score 0) is not listed.
        assert!(!with_causes(State::Firing, 2).text().contains("2. f1"));
        // The webhook has them all; a resolve says nothing of causes in its text.
        assert_eq!(
            n.webhook_body()["causes"]["features"]
                .as_array()
                .unwrap()
                .len(),
            5
        );
        assert!(!with_causes(State::Resolved, 5)
            .text()
            .contains("Likely causes"));
        assert!(alert(State::Firing).webhook_body()["causes"].is_null());
    }

    #[test]
    fn notifier_config_is_strict() {
        let ok: NotifierConfig =
            toml::from_str("kind = \"slack\"\nurl = \"https://hooks.example/x\"").unwrap();
        assert!(ok.validate("s").is_ok());
        let e = toml::from_str::<NotifierConfig>("kind = \"slack\"\nurl = \"x\"\nchannel = \"y\"")
            .unwrap_err();
        assert!(e.to_string().contains("channel"), "{e}");
        let bad: NotifierConfig = toml::from_str("kind = \"webhook\"\nurl = \"ftp://x\"").unwrap();
        assert!(bad.validate("w").unwrap_err().contains("url"));
    }
}
