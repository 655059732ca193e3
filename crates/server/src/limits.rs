//! Per-account limits on what one account can take from others: one-time
//! keys claimed from a device, and device-list lookups of other accounts
//! (handle enumeration); and per-source limits on account restores (each
//! `RestoreLookup` and `Restore` takes a token, so nobody tests recovery
//! phrases or account keys online at any useful rate). Counted in memory, in bounded maps (bounded.rs): a
//! restart forgets the counts, which costs an attacker a restart of the
//! server it does not control.

use crate::Config;
use crate::bounded::BoundedMap;
use std::sync::Mutex;

/// One claim window per (claimer, device) lasts this long.
const CLAIM_WINDOW_MS: u64 = 60 * 60 * 1000;
/// Most (claimer, device) windows at once, in total …
const CLAIM_WINDOWS: usize = 200_000;
/// … and per claiming account: the devices one account may claim from
/// per hour: as many as the largest group fan-out (a new group's creator
/// starts a session with every member device).
const CLAIM_TARGETS_PER_ACCOUNT: u32 = 4_096;
/// Most lookup buckets at once (one per account that looked up another
/// recently; a bucket that refilled is forgotten).
const LOOKUP_BUCKETS: usize = 200_000;
/// A handle an account looked up is free to look up again for this long:
/// enumeration means many *different* handles; a client that fetches its
/// contacts' lists again (each CLI run does) is not enumerating.
const KNOWN_MS: u64 = 24 * 60 * 60 * 1000;
/// Most (account, handle) pairs remembered, in total and per account.
const KNOWN_PAIRS: usize = 500_000;
const KNOWN_PER_ACCOUNT: u32 = 2_000;

/// Restore attempts (lookups and restores) one source may make at once …
const RESTORE_BURST: f64 = 6.0;
/// … and then one per this many ms (10 an hour).
const RESTORE_EVERY_MS: f64 = 6.0 * 60.0 * 1000.0;
/// Most sources with restore attempts remembered at once.
const RESTORE_BUCKETS: usize = 100_000;

/// Why a claim or lookup is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limited {
    /// This account used its allowance.
    Exhausted,
    /// The table of counters is full (too many accounts at once).
    Busy,
}

/// A token bucket in ms (the server's clock).
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at_ms: u64,
}

/// (claimer handle, target handle, target device).
type ClaimKey = (String, String, u32);

#[derive(Debug)]
pub struct Limits {
    claims_per_hour: u32,
    claims: Mutex<BoundedMap<ClaimKey, u32, String>>,
    /// Tokens per ms and the burst of lookups.
    lookup_rate: f64,
    lookup_burst: f64,
    lookups: Mutex<BoundedMap<String, Bucket, ()>>,
    /// (account, handle) pairs looked up lately: free to look up again.
    known: Mutex<BoundedMap<(String, String), (), String>>,
    /// Restore attempts per source (see [`Limits::restore`]).
    restores: Mutex<BoundedMap<crate::links::Source, Bucket, ()>>,
}

impl Limits {
    pub fn new(c: &Config) -> Self {
        Self {
            claims_per_hour: c.claims_per_hour,
            claims: Mutex::new(BoundedMap::new(CLAIM_WINDOWS, CLAIM_TARGETS_PER_ACCOUNT)),
            lookup_rate: f64::from(c.lookups_per_minute) / 60_000.0,
            lookup_burst: f64::from(c.lookup_burst.max(1)),
            lookups: Mutex::new(BoundedMap::new(LOOKUP_BUCKETS, u32::MAX)),
            known: Mutex::new(BoundedMap::new(KNOWN_PAIRS, KNOWN_PER_ACCOUNT)),
            restores: Mutex::new(BoundedMap::new(RESTORE_BUCKETS, u32::MAX)),
        }
    }

    /// Reserves one claim by `claimer` of a one-time key of (`handle`,
    /// `device_id`); [`Self::refund_claim`] gives it back if no one-time key
    /// was handed out.
    pub fn reserve_claim(&self, claimer: &str, handle: &str, device_id: u32, now_ms: u64) -> Result<(), Limited> {
        let mut m = self.claims.lock().expect("limits lock");
        m.expire(now_ms, |_, _| {});
        let key = (claimer.to_string(), handle.to_string(), device_id);
        if let Some(n) = m.get_mut(&key) {
            if *n >= self.claims_per_hour {
                return Err(Limited::Exhausted);
            }
            *n += 1;
            return Ok(());
        }
        if self.claims_per_hour == 0 {
            return Err(Limited::Exhausted);
        }
        let heap = claimer.len() + handle.len();
        m.insert(key, 1, claimer.to_string(), now_ms + CLAIM_WINDOW_MS, heap).map(|_| ()).map_err(|e| match e {
            crate::bounded::Refused::SourceFull => Limited::Exhausted,
            crate::bounded::Refused::Full => Limited::Busy,
        })
    }

    pub fn refund_claim(&self, claimer: &str, handle: &str, device_id: u32) {
        let mut m = self.claims.lock().expect("limits lock");
        if let Some(n) = m.get_mut(&(claimer.to_string(), handle.to_string(), device_id)) {
            *n = n.saturating_sub(1);
        }
    }

    /// Lets `account` look up `handle`: free if it did lately, else it
    /// takes one of the account's tokens (and remembers the handle).
    pub fn lookup(&self, account: &str, handle: &str, now_ms: u64) -> Result<(), Limited> {
        let pair = (account.to_string(), handle.to_string());
        {
            let mut known = self.known.lock().expect("limits lock");
            known.expire(now_ms, |_, _| {});
            if known.get(&pair).is_some() {
                known.extend(&pair, now_ms + KNOWN_MS);
                return Ok(());
            }
        }
        self.take_lookup(account, now_ms)?;
        let heap = account.len() * 2 + handle.len();
        // A full table only means the next lookup of this handle costs a token again.
        let _ = self.known.lock().expect("limits lock").insert(pair, (), account.to_string(), now_ms + KNOWN_MS, heap);
        Ok(())
    }

    /// Takes one restore token of `source` (a `RestoreLookup` or a
    /// `Restore`, whether it succeeds or not): a burst of
    /// [`RESTORE_BURST`], then one every [`RESTORE_EVERY_MS`].
    pub fn restore(&self, source: crate::links::Source, now_ms: u64) -> Result<(), Limited> {
        let mut m = self.restores.lock().expect("limits lock");
        m.expire(now_ms, |_, _| {});
        let rate = 1.0 / RESTORE_EVERY_MS;
        // A bucket is forgotten once it would be full again.
        let refill_ms = (RESTORE_BURST * RESTORE_EVERY_MS) as u64;
        let ok = match m.get_mut(&source) {
            Some(b) => {
                let elapsed = now_ms.saturating_sub(b.at_ms) as f64;
                b.tokens = (b.tokens + elapsed * rate).min(RESTORE_BURST);
                b.at_ms = now_ms;
                let ok = b.tokens >= 1.0;
                if ok {
                    b.tokens -= 1.0;
                }
                ok
            }
            None => {
                let b = Bucket { tokens: RESTORE_BURST - 1.0, at_ms: now_ms };
                m.insert(source, b, (), now_ms + refill_ms, 0).map_err(|_| Limited::Busy)?;
                true
            }
        };
        m.extend(&source, now_ms + refill_ms);
        if ok { Ok(()) } else { Err(Limited::Exhausted) }
    }

    /// Takes one lookup token of `account`.
    fn take_lookup(&self, account: &str, now_ms: u64) -> Result<(), Limited> {
        let mut m = self.lookups.lock().expect("limits lock");
        m.expire(now_ms, |_, _| {});
        // A bucket is forgotten once it would be full again.
        let refill_ms =
            if self.lookup_rate > 0.0 { (self.lookup_burst / self.lookup_rate) as u64 } else { u64::MAX / 4 };
        let key = account.to_string();
        let ok = match m.get_mut(&key) {
            Some(b) => {
                let elapsed = now_ms.saturating_sub(b.at_ms) as f64;
                b.tokens = (b.tokens + elapsed * self.lookup_rate).min(self.lookup_burst);
                b.at_ms = now_ms;
                let ok = b.tokens >= 1.0;
                if ok {
                    b.tokens -= 1.0;
                }
                ok
            }
            None => {
                let b = Bucket { tokens: self.lookup_burst - 1.0, at_ms: now_ms };
                m.insert(key.clone(), b, (), now_ms + refill_ms, account.len()).map_err(|_| Limited::Busy)?;
                true
            }
        };
        m.extend(&key, now_ms + refill_ms);
        if ok { Ok(()) } else { Err(Limited::Exhausted) }
    }
}
