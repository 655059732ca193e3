//! When each device was last seen, recorded in memory as connections come
//! and go (and every few minutes while they talk) and written to the store
//! once a second, every device seen in that second in one transaction.
//! A device connecting used to write (and fsync) its own row before it
//! could read its queue: 200,000 devices reconnecting after a restart
//! queued 200,000 transactions. Nothing reads the time closer than a day
//! (the inactivity rules; devices lists show it to people), so a second
//! late costs nothing, and a crash loses at most that second.

use crate::store::{Seen, Store};
use std::collections::HashMap;
use std::sync::Mutex;

/// How often what was seen is written.
pub const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Debug, Default)]
pub struct Activity {
    seen: Mutex<HashMap<(String, u32), u64>>,
}

impl Activity {
    /// The device was active at `now_ms`.
    pub fn record(&self, handle: &str, device_id: u32, now_ms: u64) {
        let mut seen = self.seen.lock().expect("activity lock");
        match seen.get_mut(&(handle.to_string(), device_id)) {
            Some(at) => *at = (*at).max(now_ms),
            None => {
                seen.insert((handle.to_string(), device_id), now_ms);
            }
        }
    }

    /// Writes what was seen since the last flush. On a failure it is kept
    /// for the next one.
    pub async fn flush(&self, store: &dyn Store) {
        let taken = std::mem::take(&mut *self.seen.lock().expect("activity lock"));
        if taken.is_empty() {
            return;
        }
        let seen: Vec<Seen> =
            taken.into_iter().map(|((handle, device_id), at_ms)| Seen { handle, device_id, at_ms }).collect();
        if let Err(e) = store.touch(&seen).await {
            tracing::warn!("recording {} devices' activity failed: {e}", seen.len());
            for s in seen {
                self.record(&s.handle, s.device_id, s.at_ms);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::conformance::{account, device};

    /// What was seen reaches the store at the flush: the latest time of
    /// each device, never an earlier one than stored.
    #[tokio::test]
    async fn a_flush_writes_each_device_s_latest_time_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::SqliteStore::open(dir.path()).await.unwrap();
        store.create_account(&account("alice"), &device(0, 10), 100).await.unwrap();
        let activity = Activity::default();
        activity.record("alice", 0, 300);
        activity.record("alice", 0, 200);
        let active = |store: &crate::SqliteStore| {
            let store = store.clone();
            async move { store.device_by_key(&[10; 32]).await.unwrap().unwrap().active_ms }
        };
        assert_eq!(active(&store).await, 100, "not written before the flush");
        activity.flush(&store).await;
        assert_eq!(active(&store).await, 300);
        assert!(activity.seen.lock().unwrap().is_empty());
        activity.record("alice", 0, 250);
        activity.flush(&store).await;
        assert_eq!(active(&store).await, 300, "activity never goes back");
    }
}
