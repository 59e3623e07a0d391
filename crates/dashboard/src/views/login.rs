//! The login page of a server with API keys (the server's `login.rs` checks the key and keeps
//! the session).

use crate::layout::layout;
use maud::html;

/// The login page of a server with API keys: a form that posts a read or admin key to
/// `/login`, which sets the session cookie and goes back to `next`.
pub fn login_page(next: &str, error: Option<&str>) -> String {
    layout(
        "Log in",
        html! {
            div.login {
                h1 { "Log in" }
                p.meta { "This modelwatch needs an API key. Enter a read or an admin key: the server checks it and keeps a session cookie (HttpOnly, SameSite=Lax) for 12 hours." }
                @if let Some(e) = error { p.bad data-login-error { (e) } }
                form.login method="post" action="/login" {
                    input type="hidden" name="next" value=(next);
                    label { "API key" input type="password" name="key" autocomplete="current-password" required autofocus; }
                    button type="submit" { "Log in" }
                }
            }
        },
    )
}
