//! The JSON error body for requests hyper refuses before any handler sees them.
//!
//! When a request head cannot be parsed (a garbage request line, an unknown HTTP version, a
//! malformed header, a URI over 64 KiB, headers over hyper's buffer) hyper answers on its own
//! (400, 414 or 431) with an empty body and closes the connection; the router never runs, so
//! `error::json_error_body` cannot help. [`JsonRefusals`] wraps the connection and replaces
//! that answer, as it is written, with the same status and the JSON error body.
//!
//! Why a wrapper on the written bytes rather than parsing request heads ourselves (httparse
//! on the first head, then a rewinding stream for hyper): hyper decides what it refuses, and
//! a second parser would have to agree with it on every limit and on every request of a
//! keep-alive connection, not just the first. Its refusal, on the other hand, is recognised
//! exactly: it is the last thing written on the connection, a head with a status of 400 or
//! more, `content-length: 0`, `connection: close` and no `content-type`, while every error
//! the router answers has a `content-type` (`json_error_body` makes sure of it). The wrapper
//! says it cannot write vectored, so hyper hands it each response as one buffer (head, then
//! body) and a refusal always ends the buffer it is in.

use axum::http::StatusCode;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection whose writes pass through unchanged, except hyper's own refusal.
pub(crate) struct JsonRefusals<S> {
    inner: S,
    /// A refusal being replaced: the bytes to write instead, how many are written, and how
    /// many of hyper's bytes they stand for.
    replacing: Option<(Vec<u8>, usize, usize)>,
}

impl<S> JsonRefusals<S> {
    pub(crate) fn new(inner: S) -> Self {
        JsonRefusals {
            inner,
            replacing: None,
        }
    }
}

/// Where hyper's refusal starts in `buf` and its status, when `buf` ends with one.
fn refusal(buf: &[u8]) -> Option<(usize, StatusCode)> {
    if !buf.ends_with(b"\r\n\r\n") {
        return None;
    }
    // A head holds no other status line, so the last one is the start of the last head.
    let start = memchr::memmem::rfind(buf, b"HTTP/1.1 ")?;
    let mut headers = [httparse::EMPTY_HEADER; 8];
    let mut head = httparse::Response::new(&mut headers);
    match head.parse(&buf[start..]) {
        Ok(httparse::Status::Complete(n)) if start + n == buf.len() => {}
        _ => return None,
    }
    let status = StatusCode::from_u16(head.code?).ok()?;
    let has = |name: &str, value: Option<&str>| {
        head.headers.iter().any(|h| {
            h.name.eq_ignore_ascii_case(name)
                && value.is_none_or(|v| h.value.eq_ignore_ascii_case(v.as_bytes()))
        })
    };
    let hypers = status.as_u16() >= 400
        && has("content-length", Some("0"))
        && has("connection", Some("close"))
        && !has("content-type", None);
    hypers.then_some((start, status))
}

impl<S: AsyncRead + Unpin> AsyncRead for JsonRefusals<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for JsonRefusals<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.replacing.is_none() {
            let Some((start, status)) = refusal(buf) else {
                return Pin::new(&mut this.inner).poll_write(cx, buf);
            };
            let mut bytes = buf[..start].to_vec();
            bytes.extend_from_slice(&crate::error::refused_head_reply(status));
            this.replacing = Some((bytes, 0, buf.len()));
        }
        // hyper offers the same bytes again after `Pending`; they are already taken over.
        let (bytes, written, stands_for) = this.replacing.as_mut().expect("set above");
        while *written < bytes.len() {
            match ready!(Pin::new(&mut this.inner).poll_write(cx, &bytes[*written..])) {
                Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(n) => *written += n,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        let n = *stands_for;
        this.replacing = None;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    /// No: hyper then writes each response as one buffer (see the module doc).
    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYPER_400: &[u8] = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\
        content-length: 0\r\ndate: Sun, 06 Dec 2026 13:26:08 GMT\r\n\r\n";

    #[test]
    fn hypers_refusal_is_recognised_alone_or_after_a_response() {
        assert_eq!(refusal(HYPER_400), Some((0, StatusCode::BAD_REQUEST)));
        let ok = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
            content-length: 15\r\n\r\n{\"status\":\"ok\"}";
        let both = [&ok[..], HYPER_400].concat();
        assert_eq!(refusal(&both), Some((ok.len(), StatusCode::BAD_REQUEST)));
    }

    #[test]
    fn responses_of_the_router_are_left_alone() {
        for head in [
            // An error of ours: it has a content type (and a body).
            &b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\n\
               content-length: 0\r\nconnection: close\r\n\r\n"[..],
            // Empty and closing, but not an error.
            b"HTTP/1.1 303 See Other\r\nlocation: /\r\nconnection: close\r\n\
              content-length: 0\r\n\r\n",
            // A head whose body is still to come.
            b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 7\r\n\r\n",
            // Not at the end of what is written.
            &[HYPER_400, b"x"].concat(),
        ] {
            assert_eq!(refusal(head), None, "{}", String::from_utf8_lossy(head));
        }
    }
}
