//! Work spread over the machine's cores, shared by the drift tests here and by the engine
//! (refresh passes, scans of a range, the columns of a drift query) and the CLI's offline drift.
//! It lives in `stats` because every crate that needs it already depends on `stats`, and `stats`
//! depends on none of ours.

/// Maps `f` over `items` on up to `available_parallelism` scoped threads, keeping order.
/// Workers take the next item from a shared counter, which balances items of different cost
/// (numeric vs categorical features, hours of different volume) without a thread pool
/// dependency.
pub fn parallel_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(f).collect();
    }
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= items.len() {
                    break;
                }
                let r = f(&items[i]);
                results.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|r| r.expect("every index is processed"))
        .collect()
}
