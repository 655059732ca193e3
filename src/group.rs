//! Groups as the popup shows them (docs/protocol.md §15): who has one of
//! this account's messages, member by member ("read by"). The group
//! itself (name, members, admins) is the engine's `GroupInfo`; this module
//! only lays the receipts the engine keeps out for a UI to paint.

use serde::Serialize;
use tether_client::groups::group_of;
use tether_client::{Engine, Status};
use tsify::Tsify;

/// How far an own group message got with one member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct MemberReceipt {
    pub handle: String,
    /// The name shown for them (the engine's display name).
    pub name: String,
    /// `read`, `delivered`, or `sent` (not on any of their devices yet).
    pub status: Status,
}

/// Who has own message `id` of group chat `chat`: every member it went to
/// that answered, and every current member that has not yet (as `sent`);
/// read first, then delivered, then the rest, each in the group's order.
/// Empty for a message that is not this account's or not in a group.
pub fn message_receipts(engine: &Engine, chat: &str, id: &str) -> Vec<MemberReceipt> {
    let Some(m) = engine.messages(chat).iter().find(|m| m.id == id && m.from_me) else { return Vec::new() };
    if group_of(chat).is_none() {
        return Vec::new();
    }
    let members = engine.group_info(chat).map(|g| g.members).unwrap_or_default();
    let mut handles: Vec<&str> = members.iter().filter(|p| !p.me).map(|p| p.handle.as_str()).collect();
    // Members that answered and have left since still count.
    for h in m.receipts.keys() {
        if !handles.contains(&h.as_str()) && !members.iter().any(|p| p.me && p.handle == *h) {
            handles.push(h);
        }
    }
    let mut out: Vec<MemberReceipt> = handles
        .into_iter()
        .map(|h| MemberReceipt {
            handle: h.to_string(),
            name: engine.display_name(h),
            status: m.receipts.get(h).copied().unwrap_or(Status::Sent),
        })
        .collect();
    // A stable sort keeps the group's order within each status.
    out.sort_by(|a, b| b.status.cmp(&a.status));
    out
}
