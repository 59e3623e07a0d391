//! What kind of failure an error is, in words every crate shares.
//!
//! Each library error says which [`ErrorCode`] it is ([`ServiceError::code`]): whose fault it
//! was (the caller's input, or the service) and what the caller can do about it. Only the
//! server turns codes into HTTP statuses (`crates/server/src/error.rs`, one match), so a
//! library never knows a status number and a failure of the store can never be answered as
//! a mistake of the caller.

/// The kind of a failure. A small set on purpose: add a variant only for a failure a caller
/// must handle differently from every existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is wrong (a parameter, a name, a body): the message says which part and
    /// why. Sending it again unchanged fails again.
    InvalidInput,
    /// The request is readable but nothing in it could be used (every row of an upload was
    /// refused).
    NothingValid,
    /// What the request names does not exist (a model, a rule, an alert).
    NotFound,
    /// The request is valid but what is stored or configured does not allow it now (a name
    /// already taken, no reference to compare with, a resolved alert).
    Conflict,
    /// Who sent the request is not known (no key, or a wrong one).
    Unauthenticated,
    /// Who sent the request is known but may not do this.
    Forbidden,
    /// The request is larger than the configured limits.
    TooLarge,
    /// The body is in a format this request does not take.
    UnsupportedFormat,
    /// Too many attempts from one client: wait before trying again.
    TooManyRequests,
    /// The client took too long to send its request, or stopped waiting for the answer.
    Timeout,
    /// The disk holding the data is full: nothing of the request was stored, and the same
    /// request can succeed once space is freed.
    StorageFull,
    /// A failure of the service itself (storage, a bug), not of the request.
    Internal,
}

/// An error that knows its [`ErrorCode`] (quickwit's `ServiceError` pattern).
pub trait ServiceError: std::error::Error {
    fn code(&self) -> ErrorCode;
}
