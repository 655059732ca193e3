//! Engine values as the JSON the worker and popup read (camelCase).

use serde_json::{Value, json};
use tether_client::{ChatMessage, Engine, Event, MessageBody, Role, Status};

/// The link code on show (kept from the engine's events).
pub struct LinkCode {
    pub uri: String,
    pub qr_svg: String,
    pub expires_ms: u64,
    pub index: usize,
    pub total: usize,
    pub pairing_code: Option<String>,
    pub exhausted: bool,
}

impl LinkCode {
    /// Asked for, not yet shown.
    pub fn pending() -> Self {
        Self { uri: String::new(), qr_svg: String::new(), expires_ms: 0, index: 0, total: 0, pairing_code: None, exhausted: false }
    }
}

fn status(s: Status) -> &'static str {
    match s {
        Status::Pending => "pending",
        Status::Sent => "sent",
        Status::Delivered => "delivered",
        Status::Read => "read",
    }
}

fn body(b: &MessageBody) -> Value {
    match b {
        MessageBody::Text { body } => json!({ "kind": "text", "body": body }),
        MessageBody::Link { url, title, selection } => json!({ "kind": "link", "url": url, "title": title, "selection": selection }),
        MessageBody::Undecryptable { reason } => json!({ "kind": "undecryptable", "reason": reason }),
    }
}

pub fn message(m: &ChatMessage) -> Value {
    json!({
        "id": m.id, "chat": m.chat, "fromMe": m.from_me, "senderHandle": m.sender_handle,
        "senderDevice": m.sender_device, "timeMs": m.time_ms, "status": status(m.status), "body": body(&m.body),
        "preview": m.preview(),
    })
}

pub fn messages(e: &Engine, chat: &str) -> Value {
    Value::Array(e.messages(chat).iter().map(message).collect())
}

fn name_of(e: &Engine, handle: &str) -> String {
    e.contact(handle).map(|c| c.name.clone()).filter(|n| !n.is_empty()).unwrap_or_else(|| handle.to_string())
}

pub fn recent(e: &Engine, n: usize) -> Value {
    let mut chats: Vec<_> = e.chats().into_iter().filter(|c| !c.archived).collect();
    chats.sort_by(|a, b| b.last_ms.cmp(&a.last_ms));
    Value::Array(chats.into_iter().take(n).map(|c| json!({ "handle": c.handle, "name": name_of(e, &c.handle) })).collect())
}

pub fn snapshot(e: &Engine, link: Option<&LinkCode>) -> Value {
    let (state, account, reason) = match e.role() {
        Role::Unlinked { reason } => (if link.is_some() { "linking" } else { "unlinked" }, Value::Null, reason.clone()),
        Role::Primary { handle, .. } => ("linked", json!({ "handle": handle, "deviceId": 0 }), None),
        Role::Companion { handle, device_id, .. } => ("linked", json!({ "handle": handle, "deviceId": device_id }), None),
    };
    // "linking" while a code is on show means "unlinked, showing a code".
    let state = if state == "linking" && link.is_some_and(|l| !l.uri.is_empty() || l.exhausted) { "unlinked" } else { state };
    let link = link.filter(|l| !l.uri.is_empty() || l.exhausted).map(|l| {
        json!({
            "uri": l.uri, "qrSvg": l.qr_svg, "expiresMs": l.expires_ms, "index": l.index, "total": l.total,
            "pairingCode": l.pairing_code, "exhausted": l.exhausted,
        })
    });
    let chats: Vec<Value> = e
        .chats()
        .into_iter()
        .map(|c| {
            json!({
                "handle": c.handle, "name": name_of(e, &c.handle), "unread": c.unread, "lastMs": c.last_ms,
                "lastPreview": c.last_preview, "muted": c.muted, "archived": c.archived, "pinned": c.pinned,
            })
        })
        .collect();
    let contacts: Vec<Value> =
        e.contacts().map(|c| json!({ "handle": c.handle, "name": if c.name.is_empty() { &c.handle } else { &c.name }, "warning": c.warning })).collect();
    let fingerprint = e.server_fingerprint().map(|f| f.to_string());
    json!({
        "version": tether_client::VERSION,
        "protocolVersion": tether_proto::PROTOCOL_VERSION,
        "linked": state == "linked",
        "state": state,
        "unlinkedReason": reason,
        "account": account,
        "link": link,
        "chats": chats,
        "contacts": contacts,
        "unread": e.unread_unmuted(),
        "serverFingerprint": fingerprint,
        "outbox": e.outbox_len(),
    })
}

pub fn event(e: &Event) -> Value {
    match e {
        Event::Connected { fingerprint } => json!({ "kind": "connected", "fingerprint": fingerprint }),
        Event::Disconnected { reason } => json!({ "kind": "disconnected", "reason": reason }),
        Event::LinkCode { expires_ms, index, total, .. } => json!({ "kind": "linkCode", "expiresMs": expires_ms, "index": index, "total": total }),
        Event::PairingCode { code } => json!({ "kind": "pairingCode", "code": code }),
        Event::LinkCodesExhausted => json!({ "kind": "linkCodesExhausted" }),
        Event::Linked { handle, device_id } => json!({ "kind": "linked", "handle": handle, "deviceId": device_id }),
        Event::Unlinked { reason } => json!({ "kind": "unlinked", "reason": reason }),
        Event::Message { message: m } => json!({ "kind": "message", "message": message(m) }),
        Event::MessageStatus { chat, id, status: s } => json!({ "kind": "messageStatus", "chat": chat, "id": id, "status": status(*s) }),
        Event::Sent { id } => json!({ "kind": "sent", "id": id }),
        Event::ChatChanged { chat } => json!({ "kind": "chatChanged", "chat": chat.handle }),
        Event::ContactChanged { contact } => json!({ "kind": "contactChanged", "handle": contact.handle }),
        Event::SafetyWarning { handle, warning } => json!({ "kind": "safetyWarning", "handle": handle, "warning": warning }),
        Event::HistoryImported { chunk, total, messages } => json!({ "kind": "historyImported", "chunk": chunk, "total": total, "messages": messages }),
        Event::Error { code, message } => json!({ "kind": "error", "code": code.map(|c| c.as_str()), "message": message }),
        _ => json!({ "kind": "other" }),
    }
}
