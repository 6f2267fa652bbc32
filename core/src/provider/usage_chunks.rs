//! Running usage totals as records that only ever add up.
//!
//! Gigs reports a day's total so far and Airalo a package's used allowance: the same window
//! is read again and again with a larger value. Core stores each record once by its key, so
//! a total is split into fixed chunks keyed by their index: a re-read repeats the keys it
//! already sent and adds only the chunks that are new. The part short of a whole chunk is
//! sent once the window is closed (the day is over, the package finished), so the sum is
//! exact and no read, skipped or repeated, loses or doubles usage.

/// The chunk size: small enough that an open window lags by little, large enough that a
/// big package is a few thousand keys.
pub(crate) const CHUNK_BYTES: i64 = 10 * 1024 * 1024;

/// The records of a window whose running total is `used` bytes, as (key suffix, bytes).
pub(crate) fn chunks(used: i64, closed: bool) -> Vec<(String, i64)> {
    let used = used.max(0);
    let whole = used / CHUNK_BYTES;
    let mut parts: Vec<(String, i64)> =
        (0..whole).map(|i| (format!("c{i}"), CHUNK_BYTES)).collect();
    let rest = used - whole * CHUNK_BYTES;
    if closed && rest > 0 {
        parts.push(("rest".into(), rest));
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(parts: &[(String, i64)]) -> i64 {
        parts.iter().map(|(_, bytes)| bytes).sum()
    }

    #[test]
    fn growing_totals_repeat_old_keys_and_add_only_new_chunks() {
        let early = chunks(CHUNK_BYTES * 2 + 5, false);
        let later = chunks(CHUNK_BYTES * 3 + 1, false);
        assert_eq!(total(&early), CHUNK_BYTES * 2);
        assert!(early.iter().all(|part| later.contains(part)));
        assert_eq!(later.len(), 3);
        let closed = chunks(CHUNK_BYTES * 3 + 7, true);
        assert_eq!(total(&closed), CHUNK_BYTES * 3 + 7);
        assert!(later.iter().all(|part| closed.contains(part)));
        assert!(chunks(0, true).is_empty());
        assert!(chunks(-4, true).is_empty());
    }
}
