//! Time to live: in a family with a TTL, every value and merge operand is
//! stored with its write time appended, as 8 bytes (seconds since the Unix
//! epoch, u64 LE), added when the batch is written. An entry whose write
//! time is more than the TTL ago reads as absent (a value as if deleted, an
//! operand as if never written) and compactions remove it.
//!
//! The time is the system clock's. If the clock moves back, entries that
//! had expired but were not yet compacted away read again until the clock
//! catches up; if it jumps forward, entries expire early.

/// Bytes of write time at the end of a stored value.
pub(crate) const TIME_LEN: usize = 8;

/// A fixed time for `now` (0: the system clock), set by the model suite
/// through `internals::set_clock` so expiry is deterministic.
#[cfg(feature = "internals")]
pub(crate) static FIXED_NOW: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Seconds since the Unix epoch, now (0 if the clock is before it).
pub(crate) fn now() -> u64 {
    #[cfg(feature = "internals")]
    {
        let fixed = FIXED_NOW.load(std::sync::atomic::Ordering::Relaxed);
        if fixed != 0 {
            return fixed;
        }
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `value` with `time` appended.
pub(crate) fn with_time(value: &[u8], time: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(value.len() + TIME_LEN);
    v.extend_from_slice(value);
    append_time(&mut v, time);
    v
}

/// Appends `time` to a value being built.
pub(crate) fn append_time(buf: &mut Vec<u8>, time: u64) {
    buf.extend_from_slice(&time.to_le_bytes());
}

/// Splits a stored value into the user's value and its write time; `None`
/// when it is too short to hold one (damage, or a value written before the
/// family had a TTL, which options refuse).
pub(crate) fn split(stored: &[u8]) -> Option<(&[u8], u64)> {
    let at = stored.len().checked_sub(TIME_LEN)?;
    let (value, time) = stored.split_at(at);
    Some((value, u64::from_le_bytes(time.try_into().ok()?)))
}

/// Whether an entry written at `time` has outlived `ttl` seconds at `now`.
pub(crate) fn expired(time: u64, ttl: u64, now: u64) -> bool {
    now.saturating_sub(time) > ttl
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_expiry() {
        let v = with_time(b"abc", 1000);
        assert_eq!(split(&v), Some((&b"abc"[..], 1000)));
        assert_eq!(split(b"short"), None);
        assert!(!expired(1000, 60, 1060));
        assert!(expired(1000, 60, 1061));
        assert!(
            !expired(2000, 60, 1000),
            "a clock that went back expires nothing"
        );
    }
}
