//! The WebSocket to the server, through web-sys. Binary messages only; each
//! callback hands one [`SocketEvent`] to the core, which queues it as an
//! input (nothing is handled inside a callback).

use std::rc::Rc;
use wasm_bindgen::prelude::*;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

/// What the socket reports.
#[derive(Debug)]
pub enum SocketEvent {
    Open,
    Message(Vec<u8>),
    /// Closed (or failed to open); the reason is the server's close reason.
    Closed(String),
}

/// An open (or opening) WebSocket. Dropping it detaches the callbacks and
/// closes the socket.
pub struct Socket {
    ws: WebSocket,
    /// The callbacks live as long as the socket.
    _on_open: Closure<dyn FnMut()>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_close: Closure<dyn FnMut(CloseEvent)>,
}

impl Socket {
    /// Starts connecting to `url` (`ws(s)://…`).
    pub fn open(url: &str, on_event: impl Fn(SocketEvent) + 'static) -> Result<Socket, JsValue> {
        let ws = WebSocket::new(url)?;
        ws.set_binary_type(BinaryType::Arraybuffer);
        let on_event = Rc::new(on_event);
        let f = on_event.clone();
        let on_open = Closure::<dyn FnMut()>::new(move || f(SocketEvent::Open));
        let f = on_event.clone();
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |m: MessageEvent| {
            // Text messages are not part of the protocol; they are dropped.
            if let Some(buf) = m.data().dyn_ref::<js_sys::ArrayBuffer>() {
                f(SocketEvent::Message(js_sys::Uint8Array::new(buf).to_vec()));
            }
        });
        let f = on_event;
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |e: CloseEvent| {
            let reason = e.reason();
            f(SocketEvent::Closed(if reason.is_empty() { "closed".to_string() } else { reason }));
        });
        ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        Ok(Socket { ws, _on_open: on_open, _on_message: on_message, _on_close: on_close })
    }

    /// Sends one binary message; false if the socket is not open.
    pub fn send(&self, bytes: &[u8]) -> bool {
        self.ws.ready_state() == WebSocket::OPEN && self.ws.send_with_u8_array(bytes).is_ok()
    }

    /// Starts a clean close; the close event still arrives.
    pub fn close(&self, reason: &str) {
        // Close reasons are limited to 123 bytes; ours are short and ASCII.
        let reason: String = reason.chars().filter(char::is_ascii).take(120).collect();
        let _ = self.ws.close_with_code_and_reason(1000, &reason);
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.ws.set_onopen(None);
        self.ws.set_onmessage(None);
        self.ws.set_onclose(None);
        let _ = self.ws.close();
    }
}
