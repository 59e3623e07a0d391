//! The query parameters every dashboard view takes, so that each view is addressable by URL:
//! `?range=7d&window=1h&version=v2&segment=country&feature=age&at=2026-01-02T10:00:00Z`, or
//! `from=`/`to=` instead of `range=`. Parsing never panics; a bad value is a
//! [`DashError::BadRequest`] naming it.
//!
//! Defaults fit the data: the range never starts before the model's first event, and without
//! `window` the window is the narrowest of 1h, 1d, 7d that gives at most [`AUTO_WINDOWS`]
//! windows over the range (see `data::Span::of`).

use crate::DashError;
use modelwatch_core::{parse_timestamp, Timestamp, Window};

/// How far back a view looks, ending at the model's last event (or at `to`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// The last `seconds` before the end.
    Last(i64),
    /// From the model's first event.
    All,
}

/// The ranges the picker offers.
pub const RANGES: [(&str, &str); 5] = [
    ("24h", "last 24 hours"),
    ("7d", "last 7 days"),
    ("30d", "last 30 days"),
    ("90d", "last 90 days"),
    ("all", "everything"),
];

/// The windows the picker offers.
pub const WINDOWS: [&str; 3] = ["1h", "1d", "7d"];

/// Default range: the last week (from the model's first event when it is younger).
pub const DEFAULT_RANGE: &str = "7d";

/// Most windows an automatic window gives over the range.
pub const AUTO_WINDOWS: i64 = 200;

/// Most windows one view computes: a window narrower than the range allows is refused with
/// a 400 that says which window to pick instead.
pub const MAX_WINDOWS: i64 = 2_200;

impl Range {
    pub fn parse(s: &str) -> Result<Range, DashError> {
        if s == "all" {
            return Ok(Range::All);
        }
        Window::parse(s)
            .map(|w| Range::Last(w.seconds()))
            .map_err(|_| {
                DashError::BadRequest(format!(
                    "`range`: {s:?} is not a range: use 24h, 7d, 30d, 90d or all"
                ))
            })
    }
}

/// Parsed view parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewParams {
    /// As given (`7d`), for links and the picker.
    pub range_label: String,
    pub range: Range,
    /// As given; empty when the window is chosen to fit the range.
    pub window_label: String,
    /// `None`: chosen to fit the range (`AUTO_WINDOWS`).
    pub window: Option<Window>,
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    pub version: Option<String>,
    /// Segments view: the feature (or `tag:name`) to segment by.
    pub segment: Option<String>,
    /// Drift view: the feature whose distributions are shown first.
    pub feature: Option<String>,
    /// The window the window-detail sections show (confusion matrix, calibration): the one
    /// holding this time. Default: the last complete window with labels.
    pub at: Option<Timestamp>,
}

impl Default for ViewParams {
    fn default() -> Self {
        ViewParams::parse(&[]).expect("defaults parse")
    }
}

impl ViewParams {
    /// Parses `key=value` pairs; unknown keys and bad values are a 400, not ignored, so that a
    /// mistyped link says so instead of silently showing something else.
    pub fn parse(pairs: &[(String, String)]) -> Result<ViewParams, DashError> {
        let mut p = ViewParams {
            range_label: DEFAULT_RANGE.into(),
            range: Range::parse(DEFAULT_RANGE)?,
            window_label: String::new(),
            window: None,
            from: None,
            to: None,
            version: None,
            segment: None,
            feature: None,
            at: None,
        };
        let time = |k: &str, v: &str| {
            parse_timestamp(v).map_err(|e| DashError::BadRequest(format!("`{k}`: {e}")))
        };
        for (k, v) in pairs {
            let v = v.trim();
            match k.as_str() {
                "range" if !v.is_empty() => {
                    p.range = Range::parse(v)?;
                    p.range_label = v.to_string();
                }
                "window" if !v.is_empty() => {
                    let w = Window::parse(v)
                        .map_err(|e| DashError::BadRequest(format!("`window`: {e}")))?;
                    p.window_label = w.label();
                    p.window = Some(w);
                }
                "from" if !v.is_empty() => p.from = Some(time("from", v)?),
                "to" if !v.is_empty() => p.to = Some(time("to", v)?),
                "version" if !v.is_empty() => p.version = Some(v.to_string()),
                "segment" if !v.is_empty() => p.segment = Some(v.to_string()),
                "feature" if !v.is_empty() => p.feature = Some(v.to_string()),
                "at" if !v.is_empty() => p.at = Some(time("at", v)?),
                "range" | "window" | "from" | "to" | "version" | "segment" | "feature" | "at" => {}
                other => {
                    return Err(DashError::BadRequest(format!(
                        "unknown parameter `{other}`: use range, window, from, to, version, segment, feature or at"
                    )))
                }
            }
        }
        if let (Some(f), Some(t)) = (p.from, p.to) {
            if f >= t {
                return Err(DashError::BadRequest("`from` must be before `to`".into()));
            }
        }
        Ok(p)
    }

    /// The query string of these parameters with `key` set to `value` (or removed when
    /// `value` is empty): the links of pickers and tabs keep the rest of the view.
    pub fn query_with(&self, key: &str, value: &str) -> String {
        let mut pairs: Vec<(&str, String)> = vec![("range", self.range_label.clone())];
        if !self.window_label.is_empty() {
            pairs.push(("window", self.window_label.clone()));
        }
        if let Some(f) = self.from {
            pairs.push(("from", f.to_rfc3339()));
        }
        if let Some(t) = self.to {
            pairs.push(("to", t.to_rfc3339()));
        }
        if let Some(t) = self.at {
            pairs.push(("at", t.to_rfc3339()));
        }
        for (k, v) in [
            ("version", &self.version),
            ("segment", &self.segment),
            ("feature", &self.feature),
        ] {
            if let Some(v) = v {
                pairs.push((k, v.clone()));
            }
        }
        pairs.retain(|(k, _)| *k != key);
        if !value.is_empty() {
            pairs.push((key, value.to_string()));
        }
        let parts: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{k}={}", url_encode(v)))
            .collect();
        format!("?{}", parts.join("&"))
    }

    /// The query string of these parameters as they are.
    pub fn query(&self) -> String {
        self.query_with("", "")
    }
}

/// Percent-encodes a query or path component (everything but unreserved characters).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_and_overrides() {
        let p = ViewParams::parse(&[]).unwrap();
        assert_eq!(p.range, Range::Last(7 * 86_400));
        assert_eq!(p.window, None, "chosen to fit the range");
        assert_eq!(p.query(), "?range=7d");
        let p = ViewParams::parse(&pairs(&[("range", "all"), ("window", "1d")])).unwrap();
        assert_eq!(p.range, Range::All);
        assert_eq!(p.window, Some(Window::DAY));
    }

    #[test]
    fn bad_values_are_errors_not_panics() {
        for q in [
            [("window", "forever")],
            [("range", "-3d")],
            [("from", "yesterday")],
            [("bogus", "1")],
            [("window", "99999999999999999999h")],
            [("at", "noon")],
        ] {
            match ViewParams::parse(&pairs(&q)) {
                Err(DashError::BadRequest(m)) => assert!(!m.is_empty()),
                other => panic!("{q:?}: expected a bad request, got {other:?}"),
            }
        }
        let e = ViewParams::parse(&pairs(&[
            ("from", "2026-01-02T00:00:00Z"),
            ("to", "2026-01-01T00:00:00Z"),
        ]));
        assert!(matches!(e, Err(DashError::BadRequest(_))));
    }

    #[test]
    fn links_keep_the_view_and_encode_values() {
        let p = ViewParams::parse(&pairs(&[("version", "v 1&x"), ("window", "1d")])).unwrap();
        assert_eq!(
            p.query_with("range", "30d"),
            "?window=1d&version=v%201%26x&range=30d"
        );
        assert_eq!(url_encode("<script>"), "%3Cscript%3E");
    }
}
