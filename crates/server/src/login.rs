//! The dashboard with API keys: a browser cannot send `Authorization: Bearer`, so `/login`
//! takes a read or admin key in a form, checks it in constant time like the API's middleware,
//! and sets a session cookie that the dashboard's pages (and only they) accept.
//!
//! The cookie holds no key: it is `v1.<expires>.<mac>`, the HMAC-SHA256 of the expiry under
//! the key that logged in. A page checks it against every read and admin key (all of them,
//! in constant time), so it needs no server-side state, survives a restart, expires after
//! [`SESSION_SECONDS`], and stops working when its key is removed from the configuration.
//!
//! A session is as strong as the key that opened it: a page's form that changes something (the
//! alerts view's acknowledge form) needs a session an admin key opened, as its API route needs
//! an admin key; a read key's session gets 403.

use crate::dashboard::html;
use crate::error::status;
use crate::{authorize, key_matches, ApiError, AppState};
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use modelwatch_core::ErrorCode;
use modelwatch_dashboard::pages;
use modelwatch_dashboard::params::url_encode;
use serde::Deserialize;
use sha2::Sha256;
use std::time::Instant;
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "modelwatch_session";
/// How long a login lasts.
pub const SESSION_SECONDS: i64 = 12 * 3600;

fn now_secs() -> i64 {
    modelwatch_core::Timestamp::now().0.div_euclid(1_000_000)
}

fn mac(key: &str, expires: i64) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    m.update(format!("modelwatch dashboard session v1 {expires}").as_bytes());
    m.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A session token for `key`, valid until `expires` (unix seconds).
fn token(key: &str, expires: i64) -> String {
    format!("v1.{expires}.{}", mac(key, expires))
}

/// Who a session is: which kind of key logged in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Session {
    Read,
    Admin,
}

/// The session `token` opens, if one of the read or admin keys made it and it has not
/// expired. Every key is compared, in constant time, whichever matches.
fn session_of(state: &AppState, token: &str, now: i64) -> Option<Session> {
    let mut parts = token.splitn(3, '.');
    let (Some("v1"), Some(expires), Some(given)) = (parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    let expires = expires.parse::<i64>().ok()?;
    if expires <= now || expires > now + SESSION_SECONDS + 60 {
        return None;
    }
    let auth = &state.config.auth;
    let matches = |keys: &[String]| {
        keys.iter().fold(false, |found, k| {
            found | bool::from(mac(k, expires).as_bytes().ct_eq(given.as_bytes()))
        })
    };
    let (read, admin) = (matches(&auth.read_keys), matches(&auth.admin_keys));
    if admin {
        Some(Session::Admin)
    } else if read {
        Some(Session::Read)
    } else {
        None
    }
}

/// The session cookie's value, if the request has one.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

fn keys_configured(state: &AppState) -> bool {
    !state.config.auth.is_open()
}

/// Where to go after logging in: a path on this server, else `/`.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.starts_with("/login")
                && n.len() <= 2048
                && !n.chars().any(|c| c.is_control() || c == '\\') =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

pub(crate) fn see_other(location: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// Put on each page request by [`authorize_page`]: whether its sender may change things
/// (acknowledge alerts): no keys configured, an admin key in the header, or an admin key's
/// session. The alerts view shows its form only then.
#[derive(Debug, Clone, Copy)]
pub struct MayChange(pub bool);

/// In front of the dashboard's pages. Without keys configured: open. A request with an
/// `Authorization` header is checked exactly as the API checks it; otherwise a valid session
/// cookie opens the page, and a browser without one is sent to `/login` (the report's JSON,
/// which a program reads, gets the API's 401 instead).
pub(crate) async fn authorize_page(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    if !keys_configured(&state) {
        req.extensions_mut().insert(MayChange(true));
        return authorize(State(state), req, next).await;
    }
    if let Some(h) = req.headers().get(header::AUTHORIZATION) {
        // `authorize` decides what the request may do; this only tells the page.
        let given = h.to_str().ok().and_then(|v| v.strip_prefix("Bearer "));
        let admin =
            given.is_some_and(|k| key_matches(&state.config.auth.admin_keys, k.trim().as_bytes()));
        req.extensions_mut().insert(MayChange(admin));
        return authorize(State(state), req, next).await;
    }
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD);
    match session_cookie(req.headers()).and_then(|t| session_of(&state, t, now_secs())) {
        // A page's form that changes something (acknowledging an alert) needs what the API
        // route it mirrors needs: an admin key. A read key's session only reads.
        Some(Session::Read) if changes_state => {
            let refused = ApiError::new(
                ErrorCode::Forbidden,
                "forbidden",
                "this session was opened with a read key, which may not change anything: \
                 log out and log in with an admin key to acknowledge alerts",
            );
            return crate::dashboard::error_page(&refused, Instant::now());
        }
        Some(session) => {
            req.extensions_mut()
                .insert(MayChange(session == Session::Admin));
            return next.run(req).await;
        }
        None => {}
    }
    if req.uri().path().ends_with("/report.json") {
        return ApiError::new(
            ErrorCode::Unauthenticated,
            "unauthorized",
            "missing API key: send the header `Authorization: Bearer <key>`",
        )
        .into_response();
    }
    // After the login, back to the page: a form's POST route is not one (the alerts view
    // holds the acknowledge form).
    let here = if changes_state {
        req.uri()
            .path()
            .split_once("/alerts/")
            .map_or("/".to_owned(), |(model, _)| format!("{model}/alerts"))
    } else {
        req.uri()
            .path_and_query()
            .map_or("/".to_owned(), |p| p.as_str().to_owned())
    };
    let here = here.as_str();
    see_other(&format!("/login?next={}", url_encode(here)))
}

#[derive(Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub(crate) struct LoginForm {
    key: String,
    next: Option<String>,
}

/// `GET /login`: the form (without keys configured there is nothing to log in to: `/`).
pub(crate) async fn form(
    State(state): State<AppState>,
    q: Result<Query<LoginQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if !keys_configured(&state) {
        return see_other("/");
    }
    let next = safe_next(q.ok().and_then(|Query(q)| q.next).as_deref());
    html(
        StatusCode::OK,
        pages::login_page(&next, None),
        Instant::now(),
    )
}

/// Failed logins per client address: the first [`FREE_FAILURES`] cost nothing, each one after
/// doubles the wait before the next attempt from that address is read (1 s, 2 s, 4 s ... up to
/// [`MAX_WAIT`]). A success clears the address. Without it a script tried thousands of keys a
/// second. Behind a proxy every client has the proxy's address, and the wait is shared.
#[derive(Debug, Default)]
pub struct LoginThrottle {
    failures: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, (u32, Instant)>>,
}

const FREE_FAILURES: u32 = 5;
const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(300);
/// Addresses remembered at most; past it, those whose wait is over are forgotten.
const MAX_TRACKED: usize = 10_000;

impl LoginThrottle {
    /// How long `ip` must still wait before its next attempt is read, if at all.
    fn wait(&self, ip: std::net::IpAddr) -> Option<std::time::Duration> {
        let map = self.failures.lock().ok()?;
        let (_, until) = map.get(&ip)?;
        until.checked_duration_since(Instant::now())
    }

    fn failed(&self, ip: std::net::IpAddr) {
        let Ok(mut map) = self.failures.lock() else {
            return;
        };
        let now = Instant::now();
        if map.len() >= MAX_TRACKED {
            map.retain(|_, (_, until)| *until > now);
        }
        let entry = map.entry(ip).or_insert((0, now));
        entry.0 += 1;
        if entry.0 > FREE_FAILURES {
            let doublings = (entry.0 - FREE_FAILURES - 1).min(16);
            entry.1 = now + std::time::Duration::from_secs(1 << doublings).min(MAX_WAIT);
        }
    }

    fn succeeded(&self, ip: std::net::IpAddr) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(&ip);
        }
    }
}

/// The client's address, put on each request by the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::IpAddr);

/// `POST /login` (form `key`, `next`): a read or admin key sets the session cookie and goes
/// to `next`; anything else is the form again with a 401.
pub(crate) async fn login(
    State(state): State<AppState>,
    peer: Option<axum::Extension<Peer>>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let started = Instant::now();
    if !keys_configured(&state) {
        return see_other("/");
    }
    let ip = peer.map_or(std::net::IpAddr::from([0, 0, 0, 0]), |p| p.0 .0);
    if let Some(wait) = state.login_throttle.wait(ip) {
        let secs = wait.as_secs() + 1;
        let mut r = html(
            status(ErrorCode::TooManyRequests),
            pages::login_page(
                "/",
                Some(&format!(
                    "Too many wrong keys from this address: try again in {secs} s."
                )),
            ),
            started,
        );
        if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return r;
    }
    let Ok(Form(f)) = form else {
        return html(
            status(ErrorCode::InvalidInput),
            pages::login_page("/", Some("send the form's `key` field")),
            started,
        );
    };
    let next = safe_next(f.next.as_deref());
    let given = f.key.trim().as_bytes();
    let auth = &state.config.auth;
    // Both lists are compared whole, in constant time, whatever the first one says.
    let read = key_matches(&auth.read_keys, given);
    let admin = key_matches(&auth.admin_keys, given);
    if !(read | admin) {
        state.login_throttle.failed(ip);
        tracing::warn!(%ip, "dashboard login refused: not a read or admin key");
        return html(
            status(ErrorCode::Unauthenticated),
            pages::login_page(
                &next,
                Some("That is not a read or admin key of this server."),
            ),
            started,
        );
    }
    state.login_throttle.succeeded(ip);
    let expires = now_secs() + SESSION_SECONDS;
    // Behind a TLS proxy the cookie is only ever sent back over HTTPS.
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"));
    // Lax, not Strict: a dashboard link in a Slack or e-mail alert is a cross-site navigation,
    // and Strict would send the reader back to /login each time. Pages are read-only GETs, and
    // Lax still withholds the cookie from cross-site POSTs (/login, /logout and the alerts
    // view's acknowledge form, which `browser::guard` also refuses from another origin).
    let cookie = format!(
        "{COOKIE}={}; Path=/; Max-Age={SESSION_SECONDS}; HttpOnly; SameSite=Lax{}",
        token(f.key.trim(), expires),
        if secure { "; Secure" } else { "" }
    );
    let mut r = see_other(&next);
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// `POST /logout`: forgets the cookie in this browser and shows the form.
pub(crate) async fn logout() -> Response {
    let mut r = see_other("/login");
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("modelwatch_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_server() {
        assert_eq!(
            safe_next(Some("/models/a?range=all")),
            "/models/a?range=all"
        );
        for bad in [
            "//evil.example",
            "/\\evil.example",
            "https://evil.example",
            "evil",
            "/login?next=/",
            "/a\nb",
        ] {
            assert_eq!(safe_next(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; modelwatch_session=v1.9.ab; b=2"),
        );
        assert_eq!(session_cookie(&h), Some("v1.9.ab"));
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("modelwatch_sessionx=1"),
        );
        assert_eq!(session_cookie(&h), None);
    }
}
