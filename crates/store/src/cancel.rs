//! Reads nobody waits for any more: a long scan checks, between stored chunks, whether the
//! request it answers was abandoned (its client closed the connection, or gave up waiting),
//! and stops there instead of running to the end.
//!
//! Why: a query that scans the raw events (a segment split, a tag split, a non-hour window)
//! can take minutes on a large live hour. A client that times out and asks again would
//! otherwise leave its first scan running beside the second, and each retry adds one more:
//! CPU and memory grow with no reader left for the answers (seen in the soak test, see
//! docs/operations.md).
//!
//! The flag is a thread-local set for the duration of one request's store work
//! ([`run_cancellable`]), so the `Store` trait needs no extra parameter, and work outside a
//! request (the background refresh of the per-hour state, alert passes) is never cancelled.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::StoreError;

thread_local! {
    static CURRENT: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Runs `f` on this thread with `abandoned` as its request's flag: once the flag is set, the
/// store's scans stop with [`StoreError::Cancelled`] at the next chunk.
pub fn run_cancellable<T>(abandoned: Arc<AtomicBool>, f: impl FnOnce() -> T) -> T {
    /// Puts back what was there before, also when `f` unwinds.
    struct Restore(Option<Arc<AtomicBool>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT.with(|c| *c.borrow_mut() = previous);
        }
    }
    let previous = CURRENT.with(|c| c.borrow_mut().replace(abandoned));
    let _restore = Restore(previous);
    f()
}

/// `Err(Cancelled)` when the request this thread works for was abandoned.
pub(crate) fn check() -> Result<(), StoreError> {
    CURRENT.with(|c| match &*c.borrow() {
        Some(flag) if flag.load(Ordering::Relaxed) => Err(StoreError::Cancelled),
        _ => Ok(()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flag_counts_only_inside_its_run_and_only_once_set() {
        let flag = Arc::new(AtomicBool::new(false));
        assert!(check().is_ok());
        run_cancellable(flag.clone(), || {
            assert!(check().is_ok());
            flag.store(true, Ordering::Relaxed);
            assert!(matches!(check(), Err(StoreError::Cancelled)));
        });
        // Outside the run (the background refresh on a reused thread) nothing is cancelled.
        assert!(check().is_ok());
    }
}
