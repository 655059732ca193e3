//! Groups: each group's state (name, members, admins) as a chain of
//! changes, and the rules that decide which change a device applies
//! (docs/protocol.md §15.2). Every device applies the same rules to the
//! same chain, so all converge on the same member list; a change the rules
//! refuse changes nothing, whatever the server relays.

use crate::content::{GroupChange, GroupMember, GroupState};
use crate::effects::Effects;
use crate::error::Error;
use crate::olm::hex;
use crate::store::{KvStore, load_all};
use prost::Message;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use crate::sorted::{Map, Set};

const NS_GROUPS: &str = "groups";

/// Members a group may have at most (docs/protocol.md §15).
pub const MAX_GROUP_MEMBERS: usize = 1024;
/// Changes waiting for their parent, per group.
const MAX_WAITING: usize = 64;
/// A group chat's key: this prefix and the id in hex.
pub const GROUP_CHAT_PREFIX: &str = "g:";

/// The chat key of a group id (hex).
pub fn chat_key(group_hex: &str) -> String {
    format!("{GROUP_CHAT_PREFIX}{group_hex}")
}

/// The group id (hex) of a chat key, if it names a group.
pub fn group_of(chat: &str) -> Option<&str> {
    chat.strip_prefix(GROUP_CHAT_PREFIX).filter(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify), tsify(missing_as_null))]
pub struct Member {
    pub handle: String,
    pub admin: bool,
}

/// A group as this device holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// 32 hex digits.
    pub id: String,
    pub name: String,
    pub epoch: u64,
    /// The current state's hash (hex).
    pub hash: String,
    /// In the order they joined.
    pub members: Vec<Member>,
    /// Changes that arrived before their parent: (author, encoded change).
    #[serde(default)]
    pub waiting: Vec<(String, Vec<u8>)>,
}

impl Group {
    pub fn is_member(&self, handle: &str) -> bool {
        self.members.iter().any(|m| m.handle == handle)
    }

    pub fn is_admin(&self, handle: &str) -> bool {
        self.members.iter().any(|m| m.handle == handle && m.admin)
    }

    pub fn handles(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|m| m.handle.as_str())
    }

    fn state(&self) -> GroupState {
        GroupState { name: self.name.clone(), members: self.members.iter().map(|m| GroupMember { handle: m.handle.clone(), admin: m.admin }).collect() }
    }
}

/// A change the user asks for; turned into a [`GroupChange`] on top of the
/// state current when it is sent (so it can be re-applied if another
/// change came first, docs/protocol.md §15.3).
// Read through `tagged` (see its `Deserialize`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[cfg_attr(feature = "wasm", derive(tsify::Tsify))]
pub enum GroupOp {
    Add { handles: Vec<String> },
    Remove { handles: Vec<String> },
    Leave,
    Rename { name: String },
    SetAdmin { handle: String, admin: bool },
}

/// The `op`-tagged records the derived form reads, through one flat struct
/// (see `tagged`).
impl<'de> Deserialize<'de> for GroupOp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use crate::tagged::need;
        #[derive(Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum Op {
            Add,
            Remove,
            Leave,
            Rename,
            SetAdmin,
        }
        #[derive(Deserialize)]
        struct Flat {
            op: Op,
            handles: Option<Vec<String>>,
            name: Option<String>,
            handle: Option<String>,
            admin: Option<bool>,
        }
        let f = Flat::deserialize(d)?;
        Ok(match f.op {
            Op::Add => GroupOp::Add { handles: need(f.handles, "handles")? },
            Op::Remove => GroupOp::Remove { handles: need(f.handles, "handles")? },
            Op::Leave => GroupOp::Leave,
            Op::Rename => GroupOp::Rename { name: need(f.name, "name")? },
            Op::SetAdmin => GroupOp::SetAdmin { handle: need(f.handle, "handle")?, admin: need(f.admin, "admin")? },
        })
    }
}

/// SHA-256 over the chain position and the state (§15.2).
pub fn state_hash(group_id: &[u8], epoch: u64, parent: &[u8], state: &GroupState) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"tether group state v1");
    h.update(group_id);
    h.update(epoch.to_be_bytes());
    h.update(parent);
    h.update(state.encode_to_vec());
    h.finalize().to_vec()
}

/// Checks a state on its own: a valid name, 1 to the maximum of members,
/// valid handles each once, an admin while anyone remains.
fn check_state(state: &GroupState) -> Result<(), &'static str> {
    let name = crate::names::sanitize_name(&state.name);
    if name.is_empty() || name != state.name || name.chars().count() > 100 {
        return Err("the group's name is empty, too long or not clean");
    }
    if state.members.is_empty() || state.members.len() > MAX_GROUP_MEMBERS {
        return Err("a group has 1 to 1,024 members");
    }
    let mut seen = Set::new();
    for m in &state.members {
        if tether_proto::normalize_handle(&m.handle).ok().as_deref() != Some(m.handle.as_str()) || !seen.insert(&m.handle) {
            return Err("a member's handle is invalid or appears twice");
        }
    }
    if !state.members.iter().any(|m| m.admin) {
        return Err("a group must keep an admin");
    }
    Ok(())
}

/// Whether `author` may turn `parent` into `next` (§15.2 rule 4).
fn allowed(parent: &Group, author: &str, next: &GroupState) -> Result<(), &'static str> {
    if !parent.is_member(author) {
        return Err("the author is not a member of the group");
    }
    if parent.is_admin(author) {
        return Ok(());
    }
    // A non-admin may only leave.
    let without: Vec<GroupMember> = parent.state().members.into_iter().filter(|m| m.handle != author).collect();
    let leave = GroupState { name: parent.name.clone(), members: without };
    if *next == leave { Ok(()) } else { Err("only an admin may add, remove, promote or rename") }
}

/// The state `op` makes of `g` when `me` asks, or why it may not.
pub fn apply_op(g: &Group, me: &str, op: &GroupOp) -> Result<GroupState, Error> {
    let mut s = g.state();
    let admin = g.is_admin(me);
    let need_admin = || if admin { Ok(()) } else { Err(Error::Invalid("only an admin of the group may do that".into())) };
    if !g.is_member(me) {
        return Err(Error::Invalid("you are not a member of this group".into()));
    }
    match op {
        GroupOp::Add { handles } => {
            need_admin()?;
            for h in handles {
                if !s.members.iter().any(|m| &m.handle == h) {
                    s.members.push(GroupMember { handle: h.clone(), admin: false });
                }
            }
        }
        GroupOp::Remove { handles } => {
            need_admin()?;
            s.members.retain(|m| !handles.contains(&m.handle));
        }
        GroupOp::Leave => s.members.retain(|m| m.handle != me),
        GroupOp::Rename { name } => {
            need_admin()?;
            s.name = crate::names::sanitize_name(name);
        }
        GroupOp::SetAdmin { handle, admin } => {
            need_admin()?;
            let m = s.members.iter_mut().find(|m| &m.handle == handle).ok_or_else(|| Error::Invalid(format!("{handle} is not in the group")))?;
            m.admin = *admin;
        }
    }
    // The last admin leaving (or demoting itself) hands over to the member
    // who joined first.
    if !s.members.is_empty() && !s.members.iter().any(|m| m.admin) {
        s.members[0].admin = true;
    }
    if s.members.is_empty() {
        // The last member leaves: nothing to send the change to but itself.
        return Err(Error::Invalid("you are the group's last member; delete the chat instead".into()));
    }
    check_state(&s).map_err(|e| Error::Invalid(e.into()))?;
    Ok(s)
}

/// What receiving a change did.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// Applied: the group as it is now, with the states before (None for
    /// a creation). More waiting changes may have followed.
    Changed(Vec<(Option<Group>, Group)>),
    /// Kept until its parent arrives.
    Waiting,
    /// Already applied (the same change again).
    Known,
}

#[derive(Default)]
pub struct Groups {
    by_id: Map<String, Group>,
}

impl Groups {
    pub(crate) fn load(store: &dyn KvStore) -> Result<Self, Error> {
        let by_id = load_all::<Group>(store, NS_GROUPS, "group")?.into_iter().map(|g| (g.id.clone(), g)).collect();
        Ok(Self { by_id })
    }

    pub(crate) fn clear(&mut self) {
        self.by_id.clear();
    }

    pub fn get(&self, id: &str) -> Option<&Group> {
        self.by_id.get(id)
    }

    pub fn all(&self) -> impl Iterator<Item = &Group> {
        self.by_id.values()
    }

    fn put(&mut self, g: Group, fx: &mut Effects) {
        fx.put(NS_GROUPS, &g.id, &g);
        self.by_id.insert(g.id.clone(), g);
    }

    /// The creation change of a new group (epoch 1), not applied yet.
    pub fn creation(group_id: &[u8], name: &str, me: &str, others: &[String]) -> Result<GroupChange, Error> {
        let mut members = vec![GroupMember { handle: me.to_string(), admin: true }];
        for h in others {
            if h != me && !members.iter().any(|m| &m.handle == h) {
                members.push(GroupMember { handle: h.clone(), admin: false });
            }
        }
        let state = GroupState { name: crate::names::sanitize_name(name), members };
        if state.members.len() < 2 {
            return Err(Error::Invalid("a group needs at least one other member".into()));
        }
        check_state(&state).map_err(|e| Error::Invalid(e.into()))?;
        Ok(GroupChange { group_id: group_id.to_vec(), epoch: 1, parent: vec![0; 32], state: Some(state) })
    }

    /// The change `op` makes on the group's current state, at the next
    /// epoch or at `min_epoch` if that is later (the server holds a later
    /// epoch: a change no device applied used it, §15.3).
    pub fn change_for(&self, id: &str, me: &str, op: &GroupOp, min_epoch: u64) -> Result<GroupChange, Error> {
        let g = self.by_id.get(id).ok_or_else(|| Error::Invalid("no such group".into()))?;
        let state = apply_op(g, me, op)?;
        let group_id = crate::engine::hex_to_bytes(&g.id);
        Ok(GroupChange { group_id, epoch: (g.epoch + 1).max(min_epoch), parent: crate::engine::hex_to_bytes(&g.hash), state: Some(state) })
    }

    /// Applies a change by `author` if the rules allow it (§15.2), then any
    /// waiting changes it was the parent of.
    /// `me` is this account (a change that adds it to a group it does not
    /// know yet is how it joins).
    pub(crate) fn receive(&mut self, me: Option<&str>, author: &str, change: &GroupChange, fx: &mut Effects) -> Result<Applied, &'static str> {
        let first = self.apply_one(me, author, change, fx)?;
        let Applied::Changed(mut done) = first else { return Ok(first) };
        // Waiting children, in any order they came.
        let id = hex(&change.group_id);
        loop {
            let Some(g) = self.by_id.get_mut(&id) else { break };
            let epoch = g.epoch;
            let hash = g.hash.clone();
            let Some(pos) = g.waiting.iter().position(|(_, bytes)| {
                GroupChange::decode(bytes.as_slice()).is_ok_and(|c| c.epoch > epoch && hex(&c.parent) == hash)
            }) else {
                break;
            };
            let (who, bytes) = g.waiting.remove(pos);
            let next = GroupChange::decode(bytes.as_slice()).expect("checked above");
            if let Ok(Applied::Changed(more)) = self.apply_one(me, &who, &next, fx) {
                done.extend(more);
            }
        }
        Ok(Applied::Changed(done))
    }

    fn apply_one(&mut self, me: Option<&str>, author: &str, change: &GroupChange, fx: &mut Effects) -> Result<Applied, &'static str> {
        if change.group_id.len() != 16 {
            return Err("the group id is not 16 bytes");
        }
        let state = change.state.as_ref().ok_or("the change carries no state")?;
        check_state(state)?;
        let id = hex(&change.group_id);
        let hash = hex(&state_hash(&change.group_id, change.epoch, &change.parent, state));
        let members: Vec<Member> = state.members.iter().map(|m| Member { handle: m.handle.clone(), admin: m.admin }).collect();
        let next = |waiting| Group { id: id.clone(), name: state.name.clone(), epoch: change.epoch, hash: hash.clone(), members: members.clone(), waiting };
        let Some(parent) = self.by_id.get(&id).cloned() else {
            // A creation, or (later epochs) the change that added this
            // account: its state is the group as this device first knows it.
            if change.epoch == 1 && change.parent != [0; 32] {
                return Err("a creation names a parent");
            }
            if !state.members.iter().any(|m| m.handle == author && m.admin) || state.members.len() < 2 {
                return Err("a group this device joins must make its author an admin and have another member");
            }
            if change.epoch > 1 && !state.members.iter().any(|m| Some(m.handle.as_str()) == me) {
                return Err("a change of a group this device does not know");
            }
            let g = next(vec![]);
            self.put(g.clone(), fx);
            return Ok(Applied::Changed(vec![(None, g)]));
        };
        if change.epoch <= parent.epoch {
            return if hash == parent.hash || change.epoch < parent.epoch { Ok(Applied::Known) } else { Err("another change of the same epoch was applied first") };
        }
        if hex(&change.parent) != parent.hash {
            // Built on a state this device does not hold (yet): it may be
            // the child of a change still on its way.
            let mut g = parent;
            if g.waiting.len() < MAX_WAITING {
                g.waiting.push((author.to_string(), change.encode_to_vec()));
                self.put(g, fx);
            }
            return Ok(Applied::Waiting);
        }
        allowed(&parent, author, state)?;
        let g = next(parent.waiting.clone());
        self.put(g.clone(), fx);
        Ok(Applied::Changed(vec![(Some(parent), g)]))
    }

    /// A group from the primary's history, as it has it.
    pub(crate) fn import(&mut self, g: Group, fx: &mut Effects) {
        if check_state(&g.state()).is_ok() && self.by_id.get(&g.id).is_none_or(|mine| mine.epoch < g.epoch) {
            self.put(g, fx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn created(groups: &mut Groups, fx: &mut Effects) -> GroupChange {
        let c = Groups::creation(&[7; 16], "Trip", "alice", &["bob".into(), "carol".into()]).unwrap();
        assert!(matches!(groups.receive(None, "alice", &c, fx), Ok(Applied::Changed(_))));
        c
    }

    #[test]
    fn only_admins_change_a_group_and_anyone_may_leave() {
        let mut fx = Effects::default();
        let mut groups = Groups::default();
        created(&mut groups, &mut fx);
        let id = hex(&[7; 16]);
        // Bob (not an admin) adds mallory: refused by the rules.
        let forged = {
            let g = groups.get(&id).unwrap();
            let mut s = g.state();
            s.members.push(GroupMember { handle: "mallory".into(), admin: false });
            GroupChange { group_id: vec![7; 16], epoch: 2, parent: crate::engine::hex_to_bytes(&g.hash), state: Some(s) }
        };
        assert!(groups.receive(None, "bob", &forged, &mut fx).is_err());
        assert!(groups.receive(None, "mallory", &forged, &mut fx).is_err(), "a non-member neither");
        assert!(!groups.get(&id).unwrap().is_member("mallory"));
        // Bob may leave.
        assert!(groups.change_for(&id, "bob", &GroupOp::Add { handles: vec!["dave".into()] }, 0).is_err());
        let leave = groups.change_for(&id, "bob", &GroupOp::Leave, 0).unwrap();
        assert!(matches!(groups.receive(None, "bob", &leave, &mut fx), Ok(Applied::Changed(_))));
        assert!(!groups.get(&id).unwrap().is_member("bob"));
        // The same change again is known; a sibling of the same epoch is refused.
        assert_eq!(groups.receive(None, "bob", &leave, &mut fx), Ok(Applied::Known));
        // Alice adds dave, then leaves: carol (first remaining) becomes admin.
        let add = groups.change_for(&id, "alice", &GroupOp::Add { handles: vec!["dave".into()] }, 0).unwrap();
        groups.receive(None, "alice", &add, &mut fx).unwrap();
        let leave = groups.change_for(&id, "alice", &GroupOp::Leave, 0).unwrap();
        groups.receive(None, "alice", &leave, &mut fx).unwrap();
        let g = groups.get(&id).unwrap();
        assert_eq!(g.handles().collect::<Vec<_>>(), vec!["carol", "dave"]);
        assert!(g.is_admin("carol") && !g.is_admin("dave"));
    }

    #[test]
    fn changes_wait_for_their_parent_and_forks_are_refused() {
        let mut fx = Effects::default();
        let mut ahead = Groups::default();
        let c1 = created(&mut ahead, &mut fx);
        let id = hex(&[7; 16]);
        let c2 = ahead.change_for(&id, "alice", &GroupOp::Rename { name: "Trip 2".into() }, 0).unwrap();
        ahead.receive(None, "alice", &c2, &mut fx).unwrap();
        let c3 = ahead.change_for(&id, "alice", &GroupOp::Remove { handles: vec!["bob".into()] }, 5).unwrap();
        ahead.receive(None, "alice", &c3, &mut fx).unwrap();

        let mut behind = Groups::default();
        behind.receive(None, "alice", &c1, &mut fx).unwrap();
        assert_eq!(behind.receive(None, "alice", &c3, &mut fx), Ok(Applied::Waiting));
        let Ok(Applied::Changed(done)) = behind.receive(None, "alice", &c2, &mut fx) else { panic!() };
        assert_eq!(done.len(), 2, "the waiting change followed its parent");
        assert_eq!(behind.get(&id), ahead.get(&id), "both devices hold the same state");
        // A sibling of epoch 3 (bob, admin-less, re-adding himself) is refused.
        let mut fork = c3.clone();
        fork.state.as_mut().unwrap().name = "Other".into();
        assert!(behind.receive(None, "alice", &fork, &mut fx).is_err());
    }
}
