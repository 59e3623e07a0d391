//! What a browser may do to the service on behalf of a page from elsewhere: nothing.
//!
//! The service is meant to be reached by clients (the SDK, curl, Prometheus) and by its own
//! dashboard. A page on another site can still make a visitor's browser send requests to it:
//! a cross-site form or `fetch` POST (CSRF; with no API keys, the default, it would store
//! predictions), or a page on a name the attacker points at 127.0.0.1 (DNS rebinding: the
//! browser then calls the service same-origin, and reads the answers). So:
//!
//! - a state-changing request (anything but GET, HEAD, OPTIONS) whose `Origin` is not this
//!   service's own (the `Origin`'s host is the `Host` header's), or that the browser marks
//!   `Sec-Fetch-Site: cross-site`, is refused with 403. Clients that are not browsers send no
//!   `Origin`; the dashboard's own forms send a matching one. This covers `/login` and
//!   `/logout` too.
//! - while no API key is set, a request whose `Host` is a name (not an IP address, not
//!   `localhost` or `*.localhost`, not in `[auth] allowed_hosts`) is refused with 403: a
//!   rebinding attack needs a name of the attacker's, and a proxy in front of the service names
//!   its public host in `allowed_hosts` (with keys set, a rebound page has no key to send).

use crate::{ApiError, AppState};
use axum::extract::{Request, State};
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use modelwatch_core::ErrorCode;

/// The host part of a `Host` header or an origin's authority: `[::1]:8080` → `::1`,
/// `example.com:80` → `example.com`.
fn host_part(authority: &str) -> &str {
    if let Some(rest) = authority.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

fn is_local_or_literal(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
        || host.parse::<std::net::IpAddr>().is_ok()
}

fn forbidden(message: String) -> Response {
    ApiError::new(ErrorCode::Forbidden, "cross_site_refused", message).into_response()
}

pub(crate) async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let auth = &state.config.auth;
    if auth.is_open() && !host.is_empty() {
        let name = host_part(host);
        if !is_local_or_literal(name)
            && !auth
                .allowed_hosts
                .iter()
                .any(|a| a.eq_ignore_ascii_case(name))
        {
            return forbidden(format!(
                "the host name `{name}` is not one this service answers to while no API key is \
                 set (a guard against DNS rebinding): add it to `[auth] allowed_hosts` \
                 (MODELWATCH_ALLOWED_HOSTS), or set API keys"
            ));
        }
    }
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if changes_state {
        if headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
        {
            return forbidden(
                "a page on another site cannot send requests that change this service".into(),
            );
        }
        if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            // Host parts only: a proxy may forward the host without its port (nginx's `$host`).
            let authority = origin.split_once("://").map_or(origin, |(_, a)| a);
            if origin == "null" || !host_part(authority).eq_ignore_ascii_case(host_part(host)) {
                return forbidden(format!(
                    "a page from {origin} cannot send requests that change this service \
                     (it answers to {host})"
                ));
            }
        }
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_parts_and_what_counts_as_local() {
        assert_eq!(host_part("[::1]:8080"), "::1");
        assert_eq!(host_part("127.0.0.1:80"), "127.0.0.1");
        assert_eq!(host_part("example.com"), "example.com");
        for local in ["localhost", "app.localhost", "127.0.0.1", "::1", "10.1.2.3"] {
            assert!(is_local_or_literal(local), "{local}");
        }
        for name in ["evil.example", "localhost.evil.example", "127.0.0.1.nip.io"] {
            assert!(!is_local_or_literal(name), "{name}");
        }
    }
}
