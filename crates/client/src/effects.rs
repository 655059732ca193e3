//! What one input produces besides frames: writes to persist (at the end of
//! the input, before any frame leaves) and events for the UI. Every part of
//! the engine records into the same `Effects`, so a part owns its data and
//! rules without knowing the engine.

use crate::event::Event;
use crate::store::Op;
use serde::Serialize;
use std::collections::VecDeque;

#[derive(Default)]
pub(crate) struct Effects {
    /// Writes of the current input, applied in one batch by `Engine::finish`.
    pub ops: Vec<Op>,
    /// Events not yet polled by the adapter.
    pub events: VecDeque<Event>,
}

impl Effects {
    /// Records a JSON record to store.
    pub fn put<T: Serialize>(&mut self, ns: &'static str, key: &str, value: &T) {
        self.ops.push(Op::Put { ns, key: key.to_string(), value: serde_json::to_vec(value).expect("records encode") });
    }

    pub fn delete(&mut self, ns: &'static str, key: &str) {
        self.ops.push(Op::Delete { ns, key: key.to_string() });
    }

    pub fn emit(&mut self, event: Event) {
        self.events.push_back(event);
    }

    /// A local failure (no server error code) for the UI.
    pub fn error(&mut self, message: impl Into<String>) {
        self.events.push_back(Event::Error { code: None, message: message.into() });
    }
}
