//! How long to wait before reconnecting: exponential backoff with jitter.
//!
//! The n-th retry after a failure waits a random time in
//! `[min(30 s, 2^n s), min(30 s, 2^(n+1) s)]`: 1–2 s, 2–4 s, 4–8 s, 8–16 s,
//! 16–30 s, then 30 s at most. A successful handshake resets it. The jitter
//! keeps every browser of a restarted server from reconnecting at once.

/// The first retry waits at least this long (ms).
pub const MIN_MS: f64 = 1_000.0;
/// No retry waits longer than this (ms).
pub const MAX_MS: f64 = 30_000.0;

/// Reconnect delays; pure (the random number comes in), so it is tested natively.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    /// Failed attempts since the last successful handshake.
    attempt: u32,
}

impl Backoff {
    /// The delay before the next attempt (ms), for `random` in `[0, 1)`;
    /// each call counts one more failed attempt.
    pub fn next_delay(&mut self, random: f64) -> f64 {
        let low = (MIN_MS * f64::from(1u32 << self.attempt.min(16))).min(MAX_MS);
        let high = (low * 2.0).min(MAX_MS);
        self.attempt = self.attempt.saturating_add(1);
        low + (high - low) * random.clamp(0.0, 1.0)
    }

    /// A handshake succeeded: the next failure starts again at 1 s.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// Failed attempts since the last success.
    #[cfg(test)]
    pub fn attempts(&self) -> u32 {
        self.attempt
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_within_bounds_and_reset() {
        let mut b = Backoff::default();
        let lows: Vec<f64> = (0..8).map(|_| b.next_delay(0.0)).collect();
        assert_eq!(lows, [1_000.0, 2_000.0, 4_000.0, 8_000.0, 16_000.0, 30_000.0, 30_000.0, 30_000.0]);
        let mut b = Backoff::default();
        let highs: Vec<f64> = (0..7).map(|_| b.next_delay(1.0)).collect();
        assert_eq!(highs, [2_000.0, 4_000.0, 8_000.0, 16_000.0, 30_000.0, 30_000.0, 30_000.0]);
        b.reset();
        assert_eq!(b.attempts(), 0);
        assert_eq!(b.next_delay(0.5), 1_500.0);
    }

    #[test]
    fn jitter_spreads_delays_and_never_leaves_the_range() {
        for attempt in 0..40 {
            for i in 0..=10 {
                let mut b = Backoff { attempt };
                let d = b.next_delay(f64::from(i) / 10.0);
                assert!((MIN_MS..=MAX_MS).contains(&d), "attempt {attempt}: {d}");
            }
        }
        // Many failures never overflow.
        let mut b = Backoff { attempt: u32::MAX };
        assert_eq!(b.next_delay(0.3), MAX_MS);
        assert_eq!(b.attempts(), u32::MAX);
    }
}
