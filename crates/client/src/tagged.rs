//! Reading internally tagged enums (`#[serde(tag = "kind")]`) without
//! serde's buffering. The derived `Deserialize` of such an enum first reads
//! the whole record into serde's private `Content` and then reads it again
//! through a `ContentDeserializer`: a second copy, in the wasm core, of the
//! deserializer of every type inside it (a `Standing` holds whole
//! `ChatMessage`s). The enums read here derive only `Serialize` (the format
//! stays serde's) and read the same JSON through one flat struct of every
//! variant's fields, each optional; [`need`] then requires the variant's
//! own, as the derived code does. A field of another variant is ignored
//! when absent and checked when present (serde's would ignore it either
//! way; nothing writes one).

/// A field the record's variant requires: an error naming it if absent.
pub(crate) fn need<T, E: serde::de::Error>(value: Option<T>, field: &'static str) -> Result<T, E> {
    value.ok_or_else(|| E::missing_field(field))
}

#[cfg(test)]
pub(crate) mod tests {
    use crate::message_requests::Standing;
    use crate::model::{ChatMessage, FileRef, LinkPreview, MessageBody};
    use serde::{Deserialize, Serialize};
    use serde_json::{Value, json};

    /// `MessageBody` as it was derived before: the reference.
    #[derive(Serialize, Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum DerivedBody {
        Text {
            body: String,
        },
        Link {
            url: String,
            title: String,
            selection: String,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            preview: Option<LinkPreview>,
        },
        File {
            file: FileRef,
            caption: String,
        },
        Undecryptable {
            reason: String,
        },
        GroupEvent {
            text: String,
        },
        Deleted,
    }

    /// `Standing` as it was derived before.
    #[derive(Serialize, Deserialize)]
    #[serde(tag = "state", rename_all = "camelCase", rename_all_fields = "camelCase")]
    enum DerivedStanding {
        Requesting(DerivedRequest),
        Accepted { at_ms: u64 },
        Blocked { at_ms: u64, reported: bool },
    }

    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct DerivedRequest {
        handle: String,
        first_ms: u64,
        last_ms: u64,
        count: u32,
        messages: Vec<ChatMessage>,
    }

    /// Both read `record` alike: the same value (compared as the JSON each
    /// writes) or both an error.
    pub(crate) fn same<New: Serialize + for<'de> Deserialize<'de>, Old: Serialize + for<'de> Deserialize<'de>>(
        record: &Value,
    ) {
        let bytes = serde_json::to_vec(record).unwrap();
        let new = serde_json::from_slice::<New>(&bytes).map(|v| serde_json::to_value(v).unwrap());
        let old = serde_json::from_slice::<Old>(&bytes).map(|v| serde_json::to_value(v).unwrap());
        match (new, old) {
            (Ok(new), Ok(old)) => assert_eq!(new, old, "{record}"),
            (Err(_), Err(_)) => {}
            (new, old) => panic!("{record}: read as {new:?}, the derived form as {old:?}"),
        }
    }

    fn file() -> Value {
        serde_json::to_value(FileRef { blob_id: "ab".into(), size: 5, waveform: vec![1, 2], ..FileRef::default() })
            .unwrap()
    }

    #[test]
    fn message_bodies_read_as_the_derived_form_read_them() {
        let records = [
            json!({"kind": "text", "body": "hi"}),
            json!({"body": "kind last", "kind": "text"}),
            json!({"kind": "text", "body": "hi", "unknown": [1, {"x": 2}]}),
            json!({"kind": "text"}),
            json!({"kind": "text", "body": null}),
            json!({"kind": "text", "body": 5}),
            json!({"kind": "link", "url": "https://a.example", "title": "A", "selection": ""}),
            json!({"kind": "link", "url": "u", "title": "t", "selection": "s", "preview": null}),
            json!({"kind": "link", "url": "u", "title": "t", "selection": "s", "preview": {"siteName": "S", "image": "aW1n"}}),
            json!({"kind": "link", "url": "u", "title": "t"}),
            json!({"kind": "file", "file": file(), "caption": "c"}),
            json!({"kind": "file", "file": file()}),
            json!({"kind": "file", "caption": "c"}),
            json!({"kind": "undecryptable", "reason": "no session"}),
            json!({"kind": "group_event", "text": "alice added bob"}),
            json!({"kind": "groupEvent", "text": "x"}),
            json!({"kind": "deleted"}),
            json!({"kind": "deleted", "body": "gone"}),
            json!({"kind": "other", "body": "x"}),
            json!({"body": "no kind"}),
            json!("text"),
            json!(null),
        ];
        for record in &records {
            same::<MessageBody, DerivedBody>(record);
        }
        // What this version writes, read back.
        for body in [
            MessageBody::Text { body: "a".into() },
            MessageBody::Link {
                url: "u".into(),
                title: "t".into(),
                selection: "s".into(),
                preview: Some(LinkPreview::default()),
            },
            MessageBody::File {
                file: FileRef { mime_type: "image/png".into(), ..FileRef::default() },
                caption: "c".into(),
            },
            MessageBody::Undecryptable { reason: "r".into() },
            MessageBody::GroupEvent { text: "g".into() },
            MessageBody::Deleted,
        ] {
            assert_eq!(serde_json::from_slice::<MessageBody>(&serde_json::to_vec(&body).unwrap()).unwrap(), body);
        }
    }

    #[test]
    fn standings_read_as_the_derived_form_read_them() {
        let message = serde_json::to_value(ChatMessage {
            id: "00".repeat(16),
            chat: "bob".into(),
            sender_handle: "bob".into(),
            body: MessageBody::Text { body: "hello".into() },
            ..ChatMessage::default()
        })
        .unwrap();
        let records = [
            json!({"state": "requesting", "handle": "bob", "firstMs": 1, "lastMs": 2, "count": 3, "messages": [message]}),
            json!({"state": "requesting", "handle": "bob", "firstMs": 1, "lastMs": 2, "count": 3, "messages": []}),
            json!({"state": "requesting", "handle": "bob", "firstMs": 1, "lastMs": 2, "messages": []}),
            json!({"state": "requesting", "handle": "bob", "firstMs": 1, "lastMs": 2, "count": 3, "messages": [{"id": 1}]}),
            json!({"state": "accepted", "atMs": 7}),
            json!({"state": "accepted", "atMs": 7, "extra": true}),
            json!({"state": "accepted"}),
            json!({"state": "blocked", "atMs": 7, "reported": true}),
            json!({"state": "blocked", "atMs": 7}),
            json!({"state": "Blocked", "atMs": 7, "reported": false}),
            json!({"atMs": 7}),
        ];
        for record in &records {
            same::<Standing, DerivedStanding>(record);
        }
    }

    /// `Role` as it was derived before.
    #[derive(Serialize, Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum DerivedRole {
        Unlinked { reason: Option<String> },
        Primary { handle: String, account_seed: Vec<u8> },
        Companion { handle: String, device_id: u32, account_key: Vec<u8> },
    }

    #[test]
    fn roles_read_as_the_derived_form_read_them() {
        let records = [
            json!({"kind": "unlinked"}),
            json!({"kind": "unlinked", "reason": null}),
            json!({"kind": "unlinked", "reason": "logged out"}),
            json!({"kind": "primary", "handle": "alice", "account_seed": [1, 2, 3]}),
            json!({"kind": "primary", "handle": "alice"}),
            json!({"kind": "primary", "handle": "alice", "account_seed": "AQID"}),
            json!({"kind": "companion", "handle": "alice", "device_id": 2, "account_key": [9]}),
            json!({"kind": "companion", "handle": "alice", "account_key": [9]}),
            json!({"kind": "companion", "handle": "alice", "device_id": -1, "account_key": [9]}),
            json!({"kind": "server"}),
        ];
        for record in &records {
            same::<crate::model::Role, DerivedRole>(record);
        }
    }

    /// `GroupOp` as it was derived before.
    #[derive(Serialize, Deserialize)]
    #[serde(tag = "op", rename_all = "snake_case")]
    enum DerivedGroupOp {
        Add { handles: Vec<String> },
        Remove { handles: Vec<String> },
        Leave,
        Rename { name: String },
        SetAdmin { handle: String, admin: bool },
    }

    #[test]
    fn group_ops_read_as_the_derived_form_read_them() {
        let records = [
            json!({"op": "add", "handles": ["bob", "carol"]}),
            json!({"op": "add"}),
            json!({"op": "remove", "handles": []}),
            json!({"op": "leave"}),
            json!({"op": "rename", "name": "Team"}),
            json!({"op": "rename", "name": 3}),
            json!({"op": "set_admin", "handle": "bob", "admin": true}),
            json!({"op": "set_admin", "handle": "bob"}),
            json!({"op": "setAdmin", "handle": "bob", "admin": true}),
            json!({"handles": ["bob"]}),
        ];
        for record in &records {
            same::<crate::groups::GroupOp, DerivedGroupOp>(record);
        }
    }
}
