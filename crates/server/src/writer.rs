//! Group commit: every durable write of the relay's hot path (a send's
//! copies, blob readers and group epoch, an ack's deletions) goes through
//! one writer task. It takes whatever has queued up meanwhile and commits
//! it in one transaction (one fsync), pushes the new copies to online
//! devices in id order and hands each request's outcome back to its
//! connection, which answers it (`Sent`, `Done`). Connections do not wait
//! for the commit: they go on reading frames (up to a bound of requests in
//! flight, see conn.rs).
//!
//! Where the store gives ids before the commit (SQLite) and nothing in the
//! batch can be refused at the commit (no blob, no group step), the copies
//! are pushed *before* the commit, while it runs: delivery does not wait
//! for the disk. The senders' answers still wait for it, so an
//! acknowledged send is durable; a copy pushed but lost with its commit
//! (a crash, a failed commit) belongs to a send that was not acknowledged,
//! which its sender sends again with the same message id, and the
//! recipient's engine drops the second copy (docs/protocol.md,
//! "Durability"). An ack of a copy pushed early reaches this task after
//! the commit that stores the copy, so it deletes it.

use crate::Shared;
use crate::cluster::{DeviceRef, Notice};
use crate::router::{ConnHandle, Done, Outbound, Outcome, Written};
use crate::store::{AckedCopies, BlobSend, GroupEpochStep, GroupId, NewEnvelope, StoreError, StoredEnvelope};
use std::collections::VecDeque;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Most copies stored in one transaction.
const MAX_BATCH: usize = 8192;
/// Most acknowledged ids deleted in one transaction.
const MAX_ACKED: usize = 16_384;
/// How long pipelined requests gather into one group before it closes
/// and the next one opens. Their copies are pushed meanwhile, so delivery
/// does not wait; only the senders' answers do. At a few thousand
/// messages a second it makes each commit take tens of requests instead
/// of one or two, and a commit's fixed cost (its transaction, its fsync)
/// was most of the server's CPU time per message.
const GATHER: Duration = Duration::from_millis(2);
/// How long a closed group waits, from its opening, for the acks of the
/// copies it pushed early before it is committed anyway. A copy acked
/// before its commit starts is never written (see [`Gathered::elide`]);
/// under load acks come back a few milliseconds after the push, later
/// than the commit would start without this wait, and then every copy was
/// written and deleted again: about a quarter of the server's CPU at full
/// load. Only the senders' answers wait for it, and only while an early
/// copy of theirs is unacknowledged.
const ACK_WAIT: Duration = Duration::from_millis(100);
/// Copies and acks held in uncommitted groups beyond which the writer
/// takes no new request until a commit makes room (memory bound).
const MAX_HELD: usize = 4 * MAX_BATCH;

/// What to write.
pub enum Op {
    /// Store a send's copies, make their target devices readers of the
    /// blobs it names, and move its group's epoch on (all in the same
    /// transaction).
    Store(Box<SendWrite>),
    /// Delete copies a device acknowledged.
    Ack(AckedCopies),
}

/// A checked send, for the writer to store.
pub struct SendWrite {
    /// One per target device: the copies', then the fan-out's.
    pub envelopes: Vec<NewEnvelope>,
    pub blobs: Option<BlobSend>,
    /// A group change: stored only if `from` is then the group's epoch
    /// (docs/protocol.md §15.3).
    pub epoch: Option<GroupEpochStep>,
    /// How many of `envelopes` are the fan-out's (for the metrics).
    pub fanout: usize,
}

/// One request's write, and whom to tell once it is durable.
pub struct WriteRequest {
    pub op: Op,
    /// The connection that asked, its request id, and the answer on success.
    pub reply: (ConnHandle, u64, Outcome),
}

/// Stored copies per device (count, ciphertext bytes), for the queue
/// quotas. Only the writer adds to it, so its check and its commit cannot
/// race with another send. An entry is read from the store when first
/// needed. When the device acknowledges copies it is only marked stale: it
/// may then count more than is stored, never less, so a send that fits it
/// fits the store; one that does not is checked again against the store.
/// So a device that reads its messages as they come costs no query per
/// message. An entry is forgotten (read again) when another node stored
/// copies for the device, and all are after the expiry sweep ran (at worst
/// a send is checked against copies expired a moment ago).
#[derive(Debug, Default)]
pub struct Usage {
    map: Mutex<HashMap<(String, u32), Counted>>,
}

/// A device's stored copies as counted: `stale` once some were
/// acknowledged since (an overcount).
#[derive(Debug, Clone, Copy)]
struct Counted {
    n: u64,
    bytes: u64,
    stale: bool,
}

impl Usage {
    /// Forgets everything (after expiry deleted copies).
    pub fn clear(&self) {
        self.map.lock().expect("usage lock").clear();
    }

    /// Forgets a device's count (copies stored elsewhere: it may undercount).
    pub fn forget(&self, handle: &str, device_id: u32) {
        self.map.lock().expect("usage lock").remove(&(handle.to_string(), device_id));
    }

    /// The device acknowledged copies: its count may now be too high.
    pub fn acked(&self, handle: &str, device_id: u32) {
        if let Some(c) = self.map.lock().expect("usage lock").get_mut(&(handle.to_string(), device_id)) {
            c.stale = true;
        }
    }

    fn cached(&self, handle: &str, device_id: u32) -> Option<Counted> {
        self.map.lock().expect("usage lock").get(&(handle.to_string(), device_id)).copied()
    }

    fn set(&self, handle: &str, device_id: u32, counted: Counted) {
        self.map.lock().expect("usage lock").insert((handle.to_string(), device_id), counted);
    }
}

/// The device's stored copies, from the store (and remembered).
async fn read_usage(s: &Shared, handle: &str, device_id: u32) -> Result<Counted, StoreError> {
    let (n, bytes) = s.store.queue_usage(handle, device_id).await?;
    let counted = Counted { n, bytes, stale: false };
    s.usage.set(handle, device_id, counted);
    Ok(counted)
}

/// Would this send's copies keep every recipient device within its quota?
/// If so they are counted (before the commit: a failed commit clears the
/// counts). Each device appears at most once per send (handlers.rs).
async fn within_quota(s: &Shared, envelopes: &[NewEnvelope]) -> Result<bool, StoreError> {
    let (max_n, max_bytes) = (s.config.queue_max_envelopes, s.config.queue_max_bytes);
    let mut after = Vec::with_capacity(envelopes.len());
    for e in envelopes {
        let len = e.ciphertext.len() as u64;
        let fits = |c: &Counted| c.n < max_n && c.bytes + len <= max_bytes;
        let mut counted = match s.usage.cached(&e.handle, e.device_id) {
            Some(c) => c,
            None => read_usage(s, &e.handle, e.device_id).await?,
        };
        if !fits(&counted) && counted.stale {
            // Acknowledged copies may still be counted: count again.
            counted = read_usage(s, &e.handle, e.device_id).await?;
        }
        if !fits(&counted) {
            return Ok(false);
        }
        after.push(Counted { n: counted.n + 1, bytes: counted.bytes + len, stale: counted.stale });
    }
    for (e, c) in envelopes.iter().zip(after) {
        s.usage.set(&e.handle, e.device_id, c);
    }
    Ok(true)
}

/// The group's epoch now, after the epochs stored and those that the
/// sends before it in this batch move on (`batch`). The writer is the only
/// one that stores epochs, so nothing can change them between this check
/// and the commit.
async fn epoch_now(s: &Shared, batch: &HashMap<GroupId, u64>, group_id: &GroupId) -> Result<u64, StoreError> {
    match batch.get(group_id) {
        Some(&epoch) => Ok(epoch),
        None => s.store.group_epoch(group_id).await,
    }
}

/// Checks 9 and 10 of a send (docs/protocol.md §4.9): its group epoch is
/// above the group's (then the step moves on from the group's epoch), and
/// its copies fit the recipients' queues. With `EpochTaken`, the group's
/// epoch.
async fn admit(s: &Shared, batch: &HashMap<GroupId, u64>, send: &mut SendWrite) -> Result<(Written, u64), StoreError> {
    if let Some(step) = &mut send.epoch {
        let now = epoch_now(s, batch, &step.group_id).await?;
        if step.to <= now {
            return Ok((Written::EpochTaken, now));
        }
        step.from = now;
    }
    Ok((if within_quota(s, &send.envelopes).await? { Written::Ok } else { Written::QueueFull }, 0))
}

/// A send accepted into the batch: how many of the batch's copies are its
/// own (they lie in request order), its blobs and group epoch, how many of
/// its copies are the fan-out's, and whom to answer.
struct Accepted {
    copies: usize,
    blobs: Option<BlobSend>,
    epoch: Option<GroupEpochStep>,
    fanout: usize,
    reply: (ConnHandle, u64, Outcome),
}

/// Runs until every sender is dropped and the queue is drained.
///
/// Where the store reserves ids (SQLite), sends that cannot be refused at
/// the commit (no blob, no group step) and acks are *pipelined*: each is
/// admitted and its copies pushed as soon as it arrives, also while the
/// commit before it runs, and they gather into the next group commit,
/// which starts when that one ends. So a message never waits for another
/// batch's fsync to be delivered; its sender's answer waits for its own.
/// Anything else (a blob, a group step, a store without reserved ids)
/// waits until the commits before it are done and is committed alone.
pub async fn run(shared: Weak<Shared>, mut rx: mpsc::Receiver<WriteRequest>) {
    let mut pipe = Pipeline::default();
    let mut batch: Vec<WriteRequest> = Vec::new();
    loop {
        let room = pipe.room();
        let wake = pipe.next_wake();
        let running = pipe.inflight.as_mut().map(|(commit, _)| commit);
        let step = tokio::select! {
            r = rx.recv(), if room => Step::Request(r),
            _ = async { running.expect("a running commit").await }, if running.is_some() => Step::Committed,
            () = tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)), if wake.is_some() => Step::Timer,
            // Unreachable: a full pipeline has a group to start (advance).
            else => Step::Timer,
        };
        let first = match step {
            Step::Request(r) => r,
            Step::Committed | Step::Timer => {
                if matches!(step, Step::Committed) {
                    pipe.committed();
                }
                match shared.upgrade() {
                    Some(shared) => pipe.advance(&shared),
                    None => pipe.inflight = None,
                }
                continue;
            }
        };
        let Some(first) = first else { break };
        let Some(shared) = shared.upgrade() else { return };
        batch.push(first);
        let (mut copies, mut acked) = (0, 0);
        loop {
            match &batch[batch.len() - 1].op {
                Op::Store(send) => copies += send.envelopes.len(),
                Op::Ack(a) => acked += a.ids.len(),
            }
            if copies >= MAX_BATCH || acked >= MAX_ACKED {
                break;
            }
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let pipelined = batch.iter().all(|r| match &r.op {
            Op::Store(send) => send.blobs.is_none() && send.epoch.is_none(),
            Op::Ack(_) => true,
        });
        if !pipelined {
            // Behind every commit before it, and alone.
            pipe.drain(&shared).await;
            let (envelopes, sends, acks, ack_replies) = admit_batch(&shared, &mut batch).await;
            commit(&shared, envelopes, sends, acks, ack_replies, None).await;
            continue;
        }
        let (envelopes, sends, mut acks, ack_replies) = admit_batch(&shared, &mut batch).await;
        let elided = pipe.elide(&mut acks);
        shared.metrics.acked_before_commit.inc_by(elided);
        let Some(ids) = shared.store.reserve_ids(envelopes.len()) else {
            // No ids before the commit (PostgreSQL, or the reserved range
            // is used up until the next commit renews it).
            pipe.drain(&shared).await;
            commit(&shared, envelopes, sends, acks, ack_replies, None).await;
            continue;
        };
        let reached = push_in_streaks(
            &ids,
            &envelopes,
            |handle, device_id| shared.router.device(handle, device_id),
            &mut pipe.streaks,
            pipe.seq,
        );
        shared.metrics.pushed_before_commit.inc_by(reached.iter().filter(|r| r.is_some()).count() as u64);
        pipe.pending.add(envelopes, ids, reached, sends, acks, ack_replies);
        pipe.advance(&shared);
    }
    if let Some(shared) = shared.upgrade() {
        pipe.drain(&shared).await;
    } else if let Some((commit, _)) = pipe.inflight.take() {
        let _ = commit.await;
    }
}

/// What woke the writer.
enum Step {
    Request(Option<WriteRequest>),
    Committed,
    Timer,
}

/// Admits a batch's requests in order (group epochs, queue quotas),
/// answering the refused ones; returns the copies to store, the sends
/// they belong to, the acks and whom to answer for them.
async fn admit_batch(
    shared: &Shared,
    batch: &mut Vec<WriteRequest>,
) -> (Vec<NewEnvelope>, Vec<Accepted>, Vec<AckedCopies>, Vec<(ConnHandle, u64, Outcome)>) {
    let mut envelopes: Vec<NewEnvelope> = Vec::new();
    let mut sends: Vec<Accepted> = Vec::new();
    let mut acks: Vec<AckedCopies> = Vec::new();
    let mut ack_replies: Vec<(ConnHandle, u64, Outcome)> = Vec::new();
    // The group epochs this batch moves on so far.
    let mut epochs: HashMap<GroupId, u64> = HashMap::new();
    for r in batch.drain(..) {
        match r.op {
            Op::Store(mut send) => {
                let (written, group_epoch) = admit(shared, &epochs, &mut send).await.unwrap_or_else(|err| {
                    tracing::error!("reading a queue's size or a group's epoch failed: {err}");
                    (Written::failed(&err), 0)
                });
                if written != Written::Ok {
                    if written == Written::EpochTaken {
                        refused_epoch(shared, send.epoch);
                    }
                    let (conn, request_id, outcome) = r.reply;
                    conn.done(Done { request_id, outcome, written, group_epoch });
                    continue;
                }
                let SendWrite { envelopes: mut e, blobs, epoch, fanout } = *send;
                if let Some(step) = epoch {
                    epochs.insert(step.group_id, step.to);
                }
                sends.push(Accepted { copies: e.len(), blobs, epoch, fanout, reply: r.reply });
                envelopes.append(&mut e)
            }
            Op::Ack(a) => {
                acks.push(a);
                ack_replies.push(r.reply);
            }
        }
    }
    (envelopes, sends, acks, ack_replies)
}

/// The writer's pipelined commits: the one running (with the number of
/// the last group it holds), the groups closed behind it, oldest first,
/// each waiting for its turn and for the acks of its early copies, the
/// group gathering (all their copies already pushed), and per device where
/// its copies of uncommitted groups went.
#[derive(Default)]
struct Pipeline {
    inflight: Option<(tokio::task::JoinHandle<()>, u64)>,
    closed: VecDeque<Gathered>,
    pending: Gathered,
    /// The number of the group `pending` will be (counted from 0); the
    /// closed ones and the running commit's are below it.
    seq: u64,
    streaks: Streaks,
}

/// Requests gathered for one group commit, their copies pushed early.
#[derive(Default)]
struct Gathered {
    envelopes: Vec<NewEnvelope>,
    early: Early,
    sends: Vec<Accepted>,
    acks: Vec<AckedCopies>,
    acked: usize,
    ack_replies: Vec<(ConnHandle, u64, Outcome)>,
    /// When the first request joined the group.
    opened: Option<Instant>,
    /// Copies pushed early and not acknowledged yet.
    unacked: usize,
    /// The group's number (see [`Pipeline::seq`]), once closed.
    seq: u64,
}

impl Gathered {
    fn add(
        &mut self,
        mut envelopes: Vec<NewEnvelope>,
        ids: Vec<u64>,
        reached: Vec<Option<u64>>,
        mut sends: Vec<Accepted>,
        acks: Vec<AckedCopies>,
        mut ack_replies: Vec<(ConnHandle, u64, Outcome)>,
    ) {
        self.opened.get_or_insert_with(Instant::now);
        self.unacked += reached.iter().filter(|r| r.is_some()).count();
        self.envelopes.append(&mut envelopes);
        self.early.ids.extend(ids);
        self.early.reached.extend(reached);
        self.early.elided.resize(self.early.ids.len(), false);
        self.sends.append(&mut sends);
        self.acked += acks.iter().map(|a| a.ids.len()).sum::<usize>();
        self.acks.extend(acks);
        self.ack_replies.append(&mut ack_replies);
    }

    fn is_empty(&self) -> bool {
        self.envelopes.is_empty() && self.sends.is_empty() && self.ack_replies.is_empty()
    }

    /// Takes out of `acks` the ids of copies gathered here (pushed early,
    /// their commit not started) that their own device acknowledges: such
    /// a copy is neither stored nor deleted. The device has it, and its
    /// sender's answer still waits for this group's commit, so if the
    /// server dies first the sender sends it again and the device drops
    /// the copy by its message id (docs/protocol.md, "Durability"). The
    /// acks stay (emptied or not), for their answers and the queue counts
    /// they make stale. Returns how many copies were taken out.
    fn elide(&mut self, acks: &mut [AckedCopies]) -> u64 {
        let mut n = 0;
        // Reserved ids only grow: `early.ids` is sorted.
        let (ids, elided, envelopes) = (&self.early.ids, &mut self.early.elided, &self.envelopes);
        let (reached, unacked) = (&self.early.reached, &mut self.unacked);
        for a in acks.iter_mut() {
            let before = a.ids.len();
            a.ids.retain(|id| match ids.binary_search(id) {
                Ok(i) if !elided[i] && envelopes[i].device_id == a.device_id && envelopes[i].handle == a.handle => {
                    elided[i] = true;
                    if reached[i].is_some() {
                        *unacked = unacked.saturating_sub(1);
                    }
                    false
                }
                _ => true,
            });
            n += (before - a.ids.len()) as u64;
        }
        n
    }

    /// Copies and acked ids held.
    fn held(&self) -> usize {
        self.envelopes.len() + self.acked
    }

    /// Closed now: old enough, or as large as one commit may be.
    fn closes(&self, now: Instant) -> bool {
        self.opened.is_some_and(|at| now >= at + GATHER) || self.envelopes.len() >= MAX_BATCH || self.acked >= MAX_ACKED
    }

    /// Ready to commit: every early copy acknowledged, or waited enough.
    fn settled(&self, now: Instant) -> bool {
        self.unacked == 0 || self.opened.is_none_or(|at| now >= at + ACK_WAIT)
    }

    /// Appends a later group (its reserved ids are all above this one's).
    fn absorb(&mut self, later: Gathered) {
        let Gathered { mut envelopes, early, mut sends, acks, acked, mut ack_replies, opened, unacked, seq } = later;
        self.envelopes.append(&mut envelopes);
        self.early.ids.extend(early.ids);
        self.early.reached.extend(early.reached);
        self.early.elided.extend(early.elided);
        self.sends.append(&mut sends);
        self.acks.extend(acks);
        self.acked += acked;
        self.ack_replies.append(&mut ack_replies);
        self.opened = self.opened.or(opened);
        self.unacked += unacked;
        self.seq = seq;
    }

    /// The group to commit: without the copies acknowledged while it
    /// gathered (each send keeps its answer; its count of copies shrinks).
    fn without_elided(mut self) -> Self {
        if !self.early.elided.contains(&true) {
            return self;
        }
        let elided = std::mem::take(&mut self.early.elided);
        let mut start = 0;
        for send in &mut self.sends {
            let gone = elided[start..start + send.copies].iter().filter(|&&e| e).count();
            start += send.copies;
            send.copies -= gone;
        }
        without(&mut self.envelopes, &elided);
        without(&mut self.early.ids, &elided);
        without(&mut self.early.reached, &elided);
        self
    }
}

/// Drops the items of `v` whose place is marked in `gone` (as long as `v`).
fn without<T>(v: &mut Vec<T>, gone: &[bool]) {
    let mut gone = gone.iter();
    v.retain(|_| !gone.next().copied().unwrap_or(false));
}

impl Pipeline {
    /// Takes the ids of copies of uncommitted groups that their devices
    /// acknowledge out of `acks` (see [`Gathered::elide`]).
    fn elide(&mut self, acks: &mut [AckedCopies]) -> u64 {
        self.closed.iter_mut().chain([&mut self.pending]).map(|g| g.elide(acks)).sum()
    }

    /// Room for more requests?
    fn room(&self) -> bool {
        self.closed.iter().chain([&self.pending]).map(Gathered::held).sum::<usize>() < MAX_HELD
    }

    /// When a group closes or one's wait for its acks ends.
    fn next_wake(&self) -> Option<Instant> {
        let closes = self.pending.opened.map(|at| at + GATHER);
        let settles = match (&self.inflight, self.closed.front()) {
            (None, Some(head)) => head.opened.map(|at| at + ACK_WAIT),
            _ => None,
        };
        closes.into_iter().chain(settles).min()
    }

    /// Closes the gathering group when due; when no commit runs, starts
    /// one of the closed groups at the head that are settled (all in one
    /// transaction). Without room, the head goes settled or not.
    fn advance(&mut self, shared: &Arc<Shared>) {
        let now = Instant::now();
        if self.pending.closes(now) {
            self.close();
        }
        if self.inflight.is_some() {
            return;
        }
        let force = !self.room();
        let mut group: Option<Gathered> = None;
        while let Some(head) = self.closed.front() {
            let fits = group.as_ref().is_none_or(|g| g.envelopes.len() + head.envelopes.len() <= MAX_BATCH);
            if !fits || !(head.settled(now) || (force && group.is_none())) {
                break;
            }
            let head = self.closed.pop_front().expect("a head");
            match &mut group {
                Some(g) => g.absorb(head),
                None => group = Some(head),
            }
        }
        if let Some(group) = group {
            self.start(shared, group);
        }
    }

    fn close(&mut self) {
        let mut group = std::mem::take(&mut self.pending);
        group.seq = self.seq;
        self.seq += 1;
        self.closed.push_back(group);
    }

    /// Starts committing `group` (none may be running).
    fn start(&mut self, shared: &Arc<Shared>, group: Gathered) {
        debug_assert!(self.inflight.is_none());
        let seq = group.seq;
        if group.is_empty() {
            self.inflight = None;
            self.forget_streaks(seq);
            return;
        }
        let Gathered { envelopes, early, sends, acks, ack_replies, .. } = group.without_elided();
        let shared = shared.clone();
        self.inflight = Some((
            tokio::spawn(async move {
                commit(&shared, envelopes, sends, acks, ack_replies, Some(early)).await;
            }),
            seq,
        ));
    }

    /// The running commit has ended (its answers and late pushes are out):
    /// its devices' early pushes start afresh.
    fn committed(&mut self) {
        if let Some((_, seq)) = self.inflight.take() {
            self.forget_streaks(seq);
        }
    }

    /// Groups up to `seq` are committed.
    fn forget_streaks(&mut self, seq: u64) {
        self.streaks.retain(|_, (_, group)| *group > seq);
    }

    /// Waits for every commit, committing everything gathered.
    async fn drain(&mut self, shared: &Arc<Shared>) {
        if !self.pending.is_empty() {
            self.close();
        }
        loop {
            if let Some((commit, _)) = self.inflight.as_mut() {
                let _ = commit.await;
                self.committed();
            }
            let Some(mut group) = self.closed.pop_front() else { return };
            while let Some(next) = self.closed.front()
                && group.envelopes.len() + next.envelopes.len() <= MAX_BATCH
            {
                let next = self.closed.pop_front().expect("a next");
                group.absorb(next);
            }
            self.start(shared, group);
        }
    }
}

/// Copies pushed before their commit: their reserved ids, and for each the
/// connection whose queue took it.
#[derive(Default)]
struct Early {
    ids: Vec<u64>,
    reached: Vec<Option<u64>>,
    /// Acknowledged before the commit started (see [`Gathered::elide`]).
    elided: Vec<bool>,
}

/// Per device with copies in uncommitted groups: the connection its last
/// copy reached early (`None`: it missed, so the device's later copies
/// wait for their commits), and that copy's group.
type Streaks = HashMap<(String, u32), (Option<u64>, u64)>;

/// Pushes each copy under its id to its device's connection (`conn_of`),
/// returning for each the connection that took it. A connection skips ids
/// at or below the last it sent, so a copy pushed again after the commit
/// must not follow a later copy of the batch to the same connection. So,
/// per device, early pushes go on only while every one reached the same
/// connection; from the first that did not (no connection, a full queue,
/// another connection that replaced it), the device's copies wait for the
/// commit and go then, in order. The streaks carry over from the groups
/// still committing (`streaks`, this group `group`): a copy pushed again
/// after one group's commit must not follow the next group's either.
fn push_in_streaks(
    ids: &[u64],
    envelopes: &[NewEnvelope],
    conn_of: impl Fn(&str, u32) -> Option<ConnHandle>,
    streaks: &mut Streaks,
    group: u64,
) -> Vec<Option<u64>> {
    ids.iter()
        .zip(envelopes)
        .map(|(&id, envelope)| {
            let conn = conn_of(&envelope.handle, envelope.device_id);
            let to = conn.as_ref().map(|c| c.id);
            let streak = streaks.get(&(envelope.handle.clone(), envelope.device_id));
            let unbroken = match streak {
                Some(&(seen, _)) => seen.is_some() && seen == to,
                None => to.is_some(),
            };
            let pushed = unbroken
                && conn.is_some_and(|conn| {
                    conn.try_push(Outbound::Envelope(Arc::new(StoredEnvelope { id, envelope: envelope.clone() })))
                });
            let reached = if pushed { to } else { None };
            streaks.insert((envelope.handle.clone(), envelope.device_id), (reached, group));
            reached
        })
        .collect()
}

fn refused_epoch(s: &Shared, step: Option<GroupEpochStep>) {
    s.metrics.group_epoch_refusals.inc();
    if let Some(step) = step {
        tracing::debug!(group = %step.group_id, epoch = step.to, "a group change refused: not the next epoch");
    }
}

/// Takes the sends that `refused` picks out of the batch (with their
/// copies) and answers them `written`. A later send of the same group as a
/// refused change is refused too (`EpochTaken`): the step it was admitted
/// with moves on from the refused one's epoch. Returns whether any send was refused.
fn refuse(
    s: &Shared,
    envelopes: &mut Vec<NewEnvelope>,
    sends: &mut Vec<Accepted>,
    refused: impl Fn(&Accepted) -> bool,
    written: Written,
) -> bool {
    // Counted before the commit: read the queues again.
    s.usage.clear();
    let before = sends.len();
    let mut start = 0;
    let mut broken: HashSet<GroupId> = HashSet::new();
    let mut kept = Vec::with_capacity(sends.len());
    for a in sends.drain(..) {
        let why = if refused(&a) {
            Some(written)
        } else if a.epoch.is_some_and(|e| broken.contains(&e.group_id)) {
            Some(Written::EpochTaken)
        } else {
            None
        };
        let Some(why) = why else {
            start += a.copies;
            kept.push(a);
            continue;
        };
        if let Some(step) = a.epoch {
            broken.insert(step.group_id);
        }
        if why == Written::EpochTaken {
            refused_epoch(s, a.epoch);
        }
        envelopes.drain(start..start + a.copies);
        let (conn, request_id, outcome) = a.reply;
        conn.done(Done { request_id, outcome, written: why, group_epoch: 0 });
    }
    *sends = kept;
    sends.len() != before
}

/// Commits one batch and answers its requests. A send whose blob vanished
/// since its handler checked it (expired, or fetched by its last reader)
/// fails the transaction: that send alone is refused (`BlobGone`) and the
/// rest is committed again without it. So is a send whose group's epoch
/// the store no longer holds (`EpochTaken`; only another writer of the
/// same store could have moved it).
async fn commit(
    shared: &Shared,
    mut envelopes: Vec<NewEnvelope>,
    mut sends: Vec<Accepted>,
    acks: Vec<AckedCopies>,
    ack_replies: Vec<(ConnHandle, u64, Outcome)>,
    early: Option<Early>,
) {
    #[cfg(feature = "adversary")]
    let hold = shared.adversary.read().expect("adversary lock").as_ref().and_then(|a| a.hold_commit());
    #[cfg(feature = "adversary")]
    if let Some(hold) = hold {
        hold.notified().await;
    }
    let result = loop {
        if sends.is_empty() && ack_replies.is_empty() {
            return;
        }
        let blobs: Vec<BlobSend> = sends.iter().filter_map(|a| a.blobs.clone()).collect();
        let epochs: Vec<GroupEpochStep> = sends.iter().filter_map(|a| a.epoch).collect();
        let ids = early.as_ref().map(|e| e.ids.as_slice());
        match shared.store.commit_batch_as(&envelopes, ids, &acks, &blobs, &epochs).await {
            Err(StoreError::BlobGone(id)) => {
                tracing::info!(blob = %id, "a send names a blob that is gone: refused");
                let names = |a: &Accepted| a.blobs.as_ref().is_some_and(|b| b.blob_ids.contains(&id));
                if !refuse(shared, &mut envelopes, &mut sends, names, Written::BlobGone) {
                    // No send of this batch names it: a store bug; fail all.
                    break Err(StoreError::BlobGone(id));
                }
            }
            Err(StoreError::EpochTaken(id)) => {
                tracing::warn!(group = %id, "a group's epoch changed under the writer: its changes are refused");
                let moves = |a: &Accepted| a.epoch.is_some_and(|e| e.group_id == id);
                if !refuse(shared, &mut envelopes, &mut sends, moves, Written::EpochTaken) {
                    break Err(StoreError::EpochTaken(id));
                }
            }
            other => break other,
        }
    };
    let fanout: Vec<usize> = sends.iter().map(|a| a.fanout).filter(|&n| n > 0).collect();
    let early = early.unwrap_or_default();
    let replies = sends.into_iter().map(|a| a.reply).chain(ack_replies);
    match result {
        Ok(done) => {
            if !envelopes.is_empty() {
                shared.metrics.store_batches.inc();
                shared.metrics.envelopes_stored.inc_by(done.ids.len() as u64);
            }
            shared.metrics.envelopes_acked.inc_by(done.acked);
            shared.metrics.fanout_sends.inc_by(fanout.len() as u64);
            shared.metrics.fanout_devices.inc_by(fanout.iter().sum::<usize>() as u64);
            // Acknowledged copies are gone: those queues' counts may be too
            // high now (here and on the other nodes).
            for a in &acks {
                shared.usage.acked(&a.handle, a.device_id);
                shared.cluster.tell(Notice::Acked(DeviceRef::new(&a.handle, a.device_id)));
            }
            // Pushes first (delivery latency), then the answers. With
            // other nodes, each device that got copies is named to them
            // once: the one holding its connection wakes it, every one
            // forgets its queue size.
            // Copies pushed before the commit are pushed again only where
            // that push did not reach the device's connection of now (it
            // was full, or the device connected meanwhile and read its
            // queue before the commit).
            let mut stored = HashSet::new();
            for (n, (id, envelope)) in done.ids.into_iter().zip(envelopes).enumerate() {
                if shared.cluster.is_shared() {
                    stored.insert(DeviceRef::new(&envelope.handle, envelope.device_id));
                }
                if let Some(conn) = shared.router.device(&envelope.handle, envelope.device_id)
                    && early.reached.get(n).is_none_or(|&to| to != Some(conn.id))
                {
                    conn.push(Outbound::Envelope(Arc::new(StoredEnvelope { id, envelope })));
                }
            }
            for device in stored {
                shared.cluster.tell(Notice::Stored(device));
            }
            for (conn, request_id, outcome) in replies {
                conn.done(Done { request_id, outcome, written: Written::Ok, group_epoch: 0 });
            }
        }
        Err(e) => {
            tracing::error!("a group commit of {} copies and {} acks failed: {e}", envelopes.len(), acks.len());
            shared.usage.clear();
            let written = Written::failed(&e);
            for (conn, request_id, outcome) in replies {
                conn.done(Done { request_id, outcome, written, group_epoch: 0 });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::Next;
    use crate::store::{Blob, BlobId, BlobLimits};
    use crate::{Config, ManualClock, Server};

    fn copy(handle: &str, n: u8) -> NewEnvelope {
        NewEnvelope {
            handle: handle.into(),
            device_id: 0,
            message_id: vec![n; 16],
            sender_handle: "alice".into(),
            sender_device: 0,
            ciphertext: vec![n; 8].into(),
            created_ms: 1,
        }
    }

    fn accepted(copies: usize, blobs: Option<BlobSend>, epoch: Option<GroupEpochStep>, conn: &ConnHandle) -> Accepted {
        Accepted { copies, blobs, epoch, fanout: 0, reply: (conn.clone(), 1, Outcome::Sent { server_time_ms: 1 }) }
    }

    fn step(group: u8, from: u64) -> GroupEpochStep {
        GroupEpochStep { group_id: GroupId([group; 16]), from, to: from + 1, updated_ms: 1 }
    }

    fn answer(conn: &ConnHandle) -> Written {
        match conn.next() {
            Next::Done(d) => d.written,
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    /// Early pushes stop, per device, at the first copy that did not reach
    /// the connection its earlier copies reached (none, a full queue, a
    /// connection that replaced it): those copies go after the commit, in
    /// order, and no later copy of the batch gets ahead of them.
    #[test]
    fn early_pushes_to_a_device_stop_at_its_first_miss() {
        let (old, new, full) = (ConnHandle::new(), ConnHandle::new(), ConnHandle::new());
        for _ in 0..crate::router::PUSH_QUEUE {
            full.push(Outbound::Event(Box::default()));
        }
        let envelopes = vec![
            copy("bob", 1),   // reaches `old`
            copy("carol", 1), // no connection yet
            copy("bob", 2),   // bob reconnected: `new` replaced `old`
            copy("carol", 2), // carol's connection appeared: too late for this batch
            copy("bob", 3),   // still broken for bob
            copy("dave", 1),  // a full queue
            copy("dave", 2),
        ];
        let ids: Vec<u64> = (10..17).collect();
        let calls = std::cell::Cell::new(0);
        let reached = push_in_streaks(
            &ids,
            &envelopes,
            |handle, _| {
                calls.set(calls.get() + 1);
                match (handle, calls.get()) {
                    ("bob", 1) => Some(old.clone()),
                    ("bob", _) => Some(new.clone()),
                    ("carol", 2) => None,
                    ("carol", _) => Some(new.clone()),
                    _ => Some(full.clone()),
                }
            },
            &mut Streaks::new(),
            0,
        );
        assert_eq!(reached, vec![Some(old.id), None, None, None, None, None, None]);
        assert!(matches!(old.next(), Next::Push(Outbound::Envelope(e)) if e.id == 10));
        assert!(matches!(new.next(), Next::Empty), "nothing early for the connection that replaced bob's");
    }

    /// The streaks carry over while a group commits: a device whose copy
    /// of group 0 missed (or whose connection changed since) gets nothing
    /// early in group 1, where its copy would overtake group 0's push
    /// after that commit; once group 0 is committed it starts afresh.
    #[test]
    fn a_miss_holds_the_device_s_early_pushes_until_its_group_is_committed() {
        let (old, new) = (ConnHandle::new(), ConnHandle::new());
        let mut pipe = Pipeline::default();
        let conn_of = |bob: &ConnHandle| {
            let bob = bob.clone();
            move |handle: &str, _| if handle == "bob" { Some(bob.clone()) } else { None }
        };
        // Group 0: bob's copy reaches `old`; carol is offline.
        let group0 = [copy("bob", 1), copy("carol", 1)];
        let reached = push_in_streaks(&[1, 2], &group0, conn_of(&old), &mut pipe.streaks, 0);
        assert_eq!(reached, vec![Some(old.id), None]);
        // Group 1, group 0 still committing: bob reconnected as `new`.
        pipe.seq = 1;
        let reached = push_in_streaks(&[3], &[copy("bob", 2)], conn_of(&new), &mut pipe.streaks, 1);
        assert_eq!(reached, vec![None], "bob's group-0 copy goes to `new` after its commit: nothing before it");
        assert!(matches!(new.next(), Next::Empty));
        // Group 0 committed; group 1 is still gathering: bob stays held.
        pipe.forget_streaks(0);
        assert_eq!(pipe.streaks.len(), 1, "carol's group-0 miss is forgotten, bob's group-1 one is not");
        let reached = push_in_streaks(&[4], &[copy("bob", 3)], conn_of(&new), &mut pipe.streaks, 1);
        assert_eq!(reached, vec![None], "group 1 still holds bob's copy 3 for after its commit");
        // Group 1 committed too: bob's copies go early again.
        pipe.seq = 2;
        pipe.forget_streaks(1);
        assert!(pipe.streaks.is_empty());
        let reached = push_in_streaks(&[5], &[copy("bob", 4)], conn_of(&new), &mut pipe.streaks, 2);
        assert_eq!(reached, vec![Some(new.id)]);
        assert!(matches!(new.next(), Next::Push(Outbound::Envelope(e)) if e.id == 5));
    }

    /// An ack of copies still gathering takes them out of the group: only
    /// the acknowledging device's own copies, each once; the sends keep
    /// their answers with fewer copies, and the rest of the ack stays.
    #[test]
    fn an_ack_takes_its_device_s_gathered_copies_out_of_the_group() {
        let (a, b, bob) = (ConnHandle::new(), ConnHandle::new(), ConnHandle::new());
        let mut g = Gathered::default();
        let copy_to = |handle: &str, device_id: u32, n: u8| NewEnvelope { device_id, ..copy(handle, n) };
        let envelopes = vec![copy_to("bob", 0, 1), copy_to("bob", 1, 1), copy_to("carol", 0, 1), copy_to("bob", 0, 2)];
        let sends = vec![accepted(3, None, None, &a), accepted(1, None, None, &b)];
        g.add(envelopes, vec![10, 11, 12, 13], vec![Some(bob.id), None, None, Some(bob.id)], sends, vec![], vec![]);
        let mut acks = vec![AckedCopies { handle: "bob".into(), device_id: 0, ids: vec![9, 10, 11, 12, 13, 10] }];
        assert_eq!(g.elide(&mut acks), 2);
        assert_eq!(acks[0].ids, vec![9, 11, 12, 10], "others' copies, ids not gathered and repeats stay");
        g.add(vec![], vec![], vec![], vec![], acks, vec![(bob.clone(), 5, Outcome::Acked)]);
        assert_eq!(g.acked, 4);
        let g = g.without_elided();
        assert_eq!(g.early.ids, vec![11, 12]);
        assert_eq!(g.early.reached, vec![None, None]);
        let left: Vec<(&str, u32)> = g.envelopes.iter().map(|e| (e.handle.as_str(), e.device_id)).collect();
        assert_eq!(left, vec![("bob", 1), ("carol", 0)]);
        assert_eq!(g.sends.iter().map(|s| s.copies).collect::<Vec<_>>(), vec![2, 0], "both still answered");
        assert!(g.early.elided.is_empty());
    }

    /// A closed group waits for the acks of the copies it pushed early:
    /// one acknowledged meanwhile is never written, and once the group has
    /// waited [`ACK_WAIT`] it is committed with the copy still
    /// unacknowledged, which is stored. Both senders are answered.
    #[tokio::test]
    async fn a_closed_group_waits_for_the_acks_of_its_early_copies() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { data: dir.path().to_path_buf(), ..Config::default() };
        let server = Server::open(config, Arc::new(ManualClock::new(1))).await.unwrap();
        let s = &server.shared;
        let (a, b, bob) = (ConnHandle::new(), ConnHandle::new(), ConnHandle::new());
        let mut pipe = Pipeline::default();
        let ids = s.store.reserve_ids(2).expect("SQLite reserves ids");
        let sends = vec![accepted(1, None, None, &a), accepted(1, None, None, &b)];
        let reached = vec![Some(bob.id), Some(bob.id)];
        pipe.pending.add(vec![copy("bob", 1), copy("bob", 2)], ids.clone(), reached, sends, vec![], vec![]);
        pipe.advance(s);
        assert!(pipe.closed.is_empty() && pipe.inflight.is_none(), "still gathering");

        pipe.pending.opened = Some(Instant::now() - GATHER);
        pipe.advance(s);
        assert_eq!(pipe.closed.len(), 1, "closed after GATHER");
        assert!(pipe.inflight.is_none(), "waiting for bob's acks");
        assert!(pipe.next_wake().is_some_and(|at| at > Instant::now()), "woken when the wait ends");

        let mut acks = vec![AckedCopies { handle: "bob".into(), device_id: 0, ids: vec![ids[0]] }];
        assert_eq!(pipe.elide(&mut acks), 1);
        assert!(acks[0].ids.is_empty());
        pipe.advance(s);
        assert!(pipe.inflight.is_none(), "one copy is still unacknowledged");

        pipe.closed[0].opened = Some(Instant::now() - ACK_WAIT);
        pipe.advance(s);
        let (commit, seq) = pipe.inflight.take().expect("committing after ACK_WAIT");
        assert_eq!(seq, 0);
        commit.await.unwrap();
        assert_eq!((answer(&a), answer(&b)), (Written::Ok, Written::Ok));
        let stored: Vec<u8> =
            s.store.pending("bob", 0, 0, 10).await.unwrap().iter().map(|e| e.envelope.message_id[0]).collect();
        assert_eq!(stored, vec![2], "the acknowledged copy was never written");
        assert_eq!(s.metrics.envelopes_stored.get(), 1);
    }

    /// A send whose blob vanished between its handler's check and the
    /// commit is refused alone; the rest of the batch is stored.
    #[tokio::test]
    async fn a_blob_gone_at_commit_refuses_only_the_sends_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { data: dir.path().to_path_buf(), ..Config::default() };
        let server = Server::open(config, Arc::new(ManualClock::new(1))).await.unwrap();
        let s = &server.shared;
        let kept = BlobId([1; 16]);
        let blob = Blob {
            id: kept,
            handle: "alice".into(),
            length: 16,
            created_ms: 1,
            expires_ms: 10,
            complete: false,
            sent: false,
        };
        let limits = BlobLimits { quota_bytes: 1000, max_unfinished: 10 };
        s.store.create_blob(&blob, limits).await.unwrap();
        s.store.complete_blob(&kept).await.unwrap();
        let gone = BlobId([2; 16]);

        let (a, b, c, d) = (ConnHandle::new(), ConnHandle::new(), ConnHandle::new(), ConnHandle::new());
        let send = |blobs: Vec<BlobId>| BlobSend { blob_ids: blobs, readers: vec![("bob".into(), 0)], expires_ms: 100 };
        let sends = vec![
            accepted(2, Some(send(vec![kept])), None, &a),
            accepted(1, Some(send(vec![kept, gone])), None, &b),
            accepted(1, None, None, &c),
        ];
        let envelopes = vec![copy("bob", 1), copy("carol", 1), copy("bob", 2), copy("bob", 3)];
        let acks = vec![AckedCopies { handle: "bob".into(), device_id: 0, ids: vec![999] }];
        commit(s, envelopes, sends, acks, vec![(d.clone(), 4, Outcome::Acked)], None).await;

        assert_eq!(answer(&b), Written::BlobGone);
        for conn in [&a, &c, &d] {
            assert_eq!(answer(conn), Written::Ok);
        }
        let stored: Vec<u8> =
            s.store.pending("bob", 0, 0, 10).await.unwrap().iter().map(|e| e.envelope.message_id[0]).collect();
        assert_eq!(stored, vec![1, 3], "the refused send's copy is not stored, the others are");
        assert_eq!(s.store.pending("carol", 0, 0, 10).await.unwrap().len(), 1);
        assert!(s.store.blob_readable_by(&kept, "bob").await.unwrap(), "the first send's readers are stored");
    }

    /// A group change refused at commit (here: its blob is gone) takes
    /// with it the later changes of the same group in the batch, which
    /// build on its epoch; the other group's change and the rest are
    /// stored, epochs included. A store whose epoch moved under the writer
    /// refuses that group's changes alone.
    #[tokio::test]
    async fn a_refused_group_change_refuses_the_changes_built_on_it_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { data: dir.path().to_path_buf(), ..Config::default() };
        let server = Server::open(config, Arc::new(ManualClock::new(1))).await.unwrap();
        let s = &server.shared;
        let gone = BlobId([2; 16]);
        let send = BlobSend { blob_ids: vec![gone], readers: vec![("bob".into(), 0)], expires_ms: 100 };
        let (a, b, c, d, e) =
            (ConnHandle::new(), ConnHandle::new(), ConnHandle::new(), ConnHandle::new(), ConnHandle::new());
        let sends = vec![
            accepted(1, None, Some(step(1, 0)), &a),
            accepted(1, Some(send), Some(step(1, 1)), &b),
            accepted(1, None, Some(step(1, 2)), &c),
            accepted(1, None, Some(step(2, 0)), &d),
            accepted(1, None, None, &e),
        ];
        let envelopes = (1..=5).map(|n| copy("bob", n)).collect();
        commit(s, envelopes, sends, vec![], vec![], None).await;
        assert_eq!(answer(&b), Written::BlobGone);
        assert_eq!(answer(&c), Written::EpochTaken, "built on the refused change");
        for conn in [&a, &d, &e] {
            assert_eq!(answer(conn), Written::Ok);
        }
        let stored: Vec<u8> =
            s.store.pending("bob", 0, 0, 10).await.unwrap().iter().map(|e| e.envelope.message_id[0]).collect();
        assert_eq!(stored, vec![1, 4, 5]);
        assert_eq!(s.store.group_epoch(&GroupId([1; 16])).await.unwrap(), 1);
        assert_eq!(s.store.group_epoch(&GroupId([2; 16])).await.unwrap(), 1);
        assert_eq!(s.metrics.group_epoch_refusals.get(), 1);

        // Group 1 is at 1 in the store; a batch that thinks it is at 0.
        let (f, g) = (ConnHandle::new(), ConnHandle::new());
        let sends = vec![accepted(1, None, Some(step(1, 0)), &f), accepted(1, None, Some(step(2, 1)), &g)];
        commit(s, vec![copy("bob", 6), copy("bob", 7)], sends, vec![], vec![], None).await;
        assert_eq!(answer(&f), Written::EpochTaken);
        assert_eq!(answer(&g), Written::Ok);
        assert_eq!(s.store.group_epoch(&GroupId([1; 16])).await.unwrap(), 1);
        assert_eq!(s.store.group_epoch(&GroupId([2; 16])).await.unwrap(), 2);
        let stored: Vec<u8> =
            s.store.pending("bob", 0, 0, 10).await.unwrap().iter().map(|e| e.envelope.message_id[0]).collect();
        assert_eq!(stored, vec![1, 4, 5, 7]);
    }

    /// Sends queued together share one group commit: of two changes naming
    /// the same epoch of a group only the first is stored; a change that
    /// builds on it and the sends around them are stored too.
    #[tokio::test]
    async fn in_one_group_commit_only_the_first_change_of_an_epoch_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config { data: dir.path().to_path_buf(), ..Config::default() };
        let server = Server::open(config, Arc::new(ManualClock::new(1))).await.unwrap();
        let s = &server.shared;
        let epochs = [Some(step(1, 0)), None, Some(step(1, 0)), Some(step(1, 1)), Some(step(2, 0))];
        let (tx, rx) = mpsc::channel(16);
        let mut conns = Vec::new();
        for (n, epoch) in epochs.into_iter().enumerate() {
            let conn = ConnHandle::new();
            let write = SendWrite { envelopes: vec![copy("bob", n as u8)], blobs: None, epoch, fanout: 0 };
            let reply = (conn.clone(), 1, Outcome::Sent { server_time_ms: 1 });
            tx.send(WriteRequest { op: Op::Store(Box::new(write)), reply }).await.unwrap();
            conns.push(conn);
        }
        drop(tx);
        run(Arc::downgrade(&server.shared), rx).await;
        let answers: Vec<Written> = conns.iter().map(answer).collect();
        assert_eq!(answers, [Written::Ok, Written::Ok, Written::EpochTaken, Written::Ok, Written::Ok]);
        assert_eq!(s.metrics.store_batches.get(), 1, "one group commit");
        let stored: Vec<u8> =
            s.store.pending("bob", 0, 0, 10).await.unwrap().iter().map(|e| e.envelope.message_id[0]).collect();
        assert_eq!(stored, vec![0, 1, 3, 4]);
        assert_eq!(s.store.group_epoch(&GroupId([1; 16])).await.unwrap(), 2);
        assert_eq!(s.store.group_epoch(&GroupId([2; 16])).await.unwrap(), 1);
        assert_eq!(s.metrics.group_epoch_refusals.get(), 1);
    }
}
