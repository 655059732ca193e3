//! The connection: Noise handshake, encrypted frames, requests and the
//! server's answers, events and timeouts.

use super::{Conn, Engine, KEEPALIVE_MS};
use crate::error::Error;
use crate::event::Event;
use crate::linking::Rotation;
use crate::model::{DeviceSummary, Role, Status};
use crate::requests::Pending;
use prost::Message;
use tether_proto::ErrorCode;
use tether_proto::frames::{self as f, ClientHello, Request, ResponseBody, ServerBody};
use tether_proto::noise::{ClientHandshake, StaticKey};

impl Engine {
    // ------------------------------------------------------------- inputs

    /// The socket is open: start the Noise handshake.
    pub fn handle_connected(&mut self, now: u64) {
        let key = match StaticKey::from_private(&self.me.noise_private) {
            Ok(k) => k,
            Err(e) => return self.fatal(format!("this device's key is unreadable: {e}")),
        };
        match ClientHandshake::start(&key, self.server_fingerprint()) {
            Ok((state, m1)) => {
                self.link.transmit.push_back(m1);
                self.link.state = Conn::Handshake(state);
                self.link.last_io_ms = now;
            }
            Err(e) => self.fatal(e.to_string()),
        }
    }

    /// The socket closed.
    pub fn handle_disconnected(&mut self, now: u64, reason: &str) {
        let _ = now;
        self.link.state = Conn::Closed;
        self.link.requests.clear();
        self.outbox.disconnected();
        self.uploads.disconnected();
        self.inbox.disconnected();
        self.directory.disconnected();
        self.fx.emit(Event::Disconnected { reason: reason.to_string() });
    }

    /// One WebSocket binary message from the server.
    pub fn handle_message(&mut self, bytes: &[u8], now: u64) {
        self.link.last_io_ms = self.link.last_io_ms.max(now);
        match std::mem::replace(&mut self.link.state, Conn::Closed) {
            Conn::Closed => {}
            Conn::Handshake(state) => match state.handle(bytes) {
                Ok(verified) => {
                    if self.me.pin.is_none() {
                        self.me.pin = Some(verified.server.to_hex());
                        self.save_me();
                    }
                    let hello = ClientHello { client_version: self.info.client_version.clone() };
                    match verified.finish(&hello) {
                        Ok((transport, m3)) => {
                            self.link.transmit.push_back(m3);
                            self.link.state = Conn::Open(transport);
                            self.fx.emit(Event::Connected { fingerprint: self.me.pin.clone().unwrap_or_default() });
                            self.on_open(now);
                        }
                        Err(e) => self.fatal(e.to_string()),
                    }
                }
                Err(e) => self.fatal(e.to_string()),
            },
            Conn::Open(mut transport) => {
                let plain = transport.decrypt(bytes);
                self.link.state = Conn::Open(transport);
                match plain.map_err(Error::from).and_then(|p| decode_server_frame(&p)) {
                    Ok(ServerBody::Response(r)) => self.on_response(r, now),
                    Ok(ServerBody::Event(e)) => {
                        if let Some(body) = e.body {
                            self.on_event(body, now);
                        }
                    }
                    Err(e) => self.fatal(format!("the server sent an unreadable frame: {e}")),
                }
            }
        }
        self.finish();
    }

    /// Time passed: keepalive, link code rotation, retries.
    pub fn handle_timeout(&mut self, now: u64) {
        self.expire(now);
        if self.is_open() && now >= self.link.last_io_ms + KEEPALIVE_MS {
            self.request(Request::Ping(f::Ping {}), Pending::Ping, now);
        }
        if self.link.retry_at.is_some_and(|r| now >= r) {
            self.link.retry_at = None;
            self.pump(now);
        }
        match self.linking.flow.rotate(now) {
            Rotation::Unchanged => {}
            Rotation::Moved => self.show_current(now),
            Rotation::Exhausted => {
                self.fx.emit(Event::LinkCodesExhausted);
                self.link.close = Some("link codes expired".into());
            }
        }
        self.finish();
    }

    // ---------------------------------------------------------- requests

    /// Sends a request (if the connection is open) and remembers why.
    pub(super) fn request(&mut self, req: Request, why: Pending, now: u64) -> bool {
        let Conn::Open(transport) = &mut self.link.state else { return false };
        let name = why.name();
        let id = self.link.requests.start(why);
        let frame = f::ClientFrame { id, request: Some(req) }.encode_to_vec();
        match transport.encrypt(&frame) {
            Ok(msg) => {
                self.link.transmit.push_back(msg);
                self.link.last_io_ms = now;
                true
            }
            Err(e) => {
                self.link.requests.finish(id);
                self.fx.error(format!("a {name} request was too large to send: {e}"));
                false
            }
        }
    }

    fn on_open(&mut self, now: u64) {
        if let Some(r) = self.linking.registering.clone() {
            return self.send_register(&r, now);
        }
        if let Some(r) = self.linking.restoring.clone() {
            return self.send_restore_lookup(&r, now);
        }
        if self.linking.flow.wants_refs() {
            self.request(Request::RequestLinkRefs(f::RequestLinkRefs {}), Pending::LinkRefs, now);
            return;
        }
        if let Some(h) = self.handle().map(str::to_string) {
            self.mend_own_entry(now);
            self.publish_entry_signature(now);
            // Refresh the own list (devices may have come or gone), and
            // fetch the lists of contacts added while offline.
            self.need_list(&h, now);
            for h in self.directory.missing_lists() {
                self.need_list(&h, now);
            }
            // Contacts with messages waiting (written offline): check their
            // keys before those go, so a key change in between is a
            // warning, not a message to the old keys.
            let waiting: crate::sorted::Set<String> =
                self.outbox.entries().flat_map(|e| e.to.iter().cloned()).filter(|t| Some(t.as_str()) != self.handle()).collect();
            for h in waiting {
                if self.directory.contact(&h).is_some_and(|c| !c.list.is_empty()) {
                    self.directory.recheck(&h);
                    self.need_list(&h, now);
                }
            }
            self.pump(now);
        }
    }

    fn on_response(&mut self, r: f::Response, now: u64) {
        let Some(why) = self.link.requests.finish(r.id) else {
            let err = Error::UnexpectedResponse { id: r.id };
            return self.fx.error(err.to_string());
        };
        match (r.error, r.body) {
            (Some(err), _) => self.on_failure(why, ErrorCode::parse(&err.code), err, now),
            (None, Some(body)) => self.on_success(why, body, now),
            (None, None) => {
                let message = Error::MismatchedResponse { request: why.name() }.to_string();
                self.on_failure(why, None, f::ErrorInfo { code: String::new(), message, ..Default::default() }, now)
            }
        }
    }

    fn on_failure(&mut self, why: Pending, code: Option<ErrorCode>, err: f::ErrorInfo, now: u64) {
        match why {
            Pending::Send { entry } => self.send_failed(&entry, code, err, now),
            Pending::BlobUpload { id } => self.upload_refused(id, code, err, now),
            Pending::BlobDownload { id } => self.download_refused(id, code, err),
            Pending::BlobFetched => {}
            Pending::GroupKeys { .. } => {
                // Shared again with the next pump: new lists if the devices
                // changed, else after a pause.
                if code == Some(ErrorCode::DeviceListChanged) {
                    for reply in err.device_lists {
                        let handle = reply.handle.clone();
                        let now_gen = self.directory.serve_generation();
                        if !self.directory.served_again(&reply, now_gen) {
                            self.apply_list_reply(&handle, reply, now);
                        }
                    }
                    self.pump(now);
                } else {
                    self.link.retry_at = Some(now + super::RETRY_MS);
                }
            }
            Pending::Claim { handle, device_id } => {
                self.link.retry_at = Some(now + super::RETRY_MS);
                self.fx.emit(Event::Error { code, message: format!("{handle} (device {device_id}) cannot be reached yet: {}", err.message) });
            }
            Pending::List { handle } => {
                self.directory.rechecked(&handle);
                if code == Some(ErrorCode::UnknownAccount) {
                    self.directory.warn(&handle, "no account has this handle on the server", &mut self.fx);
                    for id in self.outbox.addressed_to(&handle) {
                        self.give_up(&id);
                    }
                }
                self.fx.emit(Event::Error { code, message: format!("{handle}: {}", err.message) });
            }
            Pending::Register { .. } => {
                self.linking.registering = None;
                self.fx.emit(Event::Error { code, message: err.message });
                self.link.close = Some("registration failed".into());
            }
            Pending::RestoreLookup | Pending::Restore { .. } => self.restore_failed(code, err.message),
            Pending::PairingPublish if code == Some(ErrorCode::PairingSlotTaken) => self.new_pairing_code(now),
            Pending::LinkRefs | Pending::PairingPublish => {
                self.fx.emit(Event::Error { code, message: err.message });
                self.link.close = Some("linking failed".into());
            }
            Pending::PairingFetch | Pending::PairingReply => {
                self.linking.code = None;
                self.fx.emit(Event::Error { code, message: err.message });
            }
            Pending::Approve { .. }
            | Pending::RemoveDevice { .. }
            | Pending::PublishList { .. }
            | Pending::EntrySignature
            | Pending::Ack
            | Pending::Ping
            | Pending::Prekeys
            | Pending::Devices
            | Pending::SendHistory
            | Pending::BlobDelete => self.fx.emit(Event::Error { code, message: err.message }),
        }
    }

    fn on_success(&mut self, why: Pending, body: ResponseBody, now: u64) {
        match (why, body) {
            (Pending::Register { handle, seed, list }, ResponseBody::Registered(_)) => self.registered(handle, seed, &list, now),
            (Pending::RestoreLookup, ResponseBody::DeviceList(reply)) => self.restore_looked_up(reply, now),
            (Pending::Restore { handle, seed, list, next_device }, ResponseBody::Registered(_)) => {
                self.restored(handle, seed, &list, next_device, now)
            }
            (Pending::List { handle }, ResponseBody::DeviceList(reply)) => {
                self.apply_list_reply(&handle, reply, now);
                self.unpark(now);
                self.pump(now);
            }
            (Pending::Claim { handle, device_id }, ResponseBody::Prekey(bundle)) => {
                self.prekey_claimed(&handle, device_id, bundle, now);
            }
            (Pending::Send { entry }, ResponseBody::Sent(_)) => {
                self.directory.settled();
                if let Some(o) = self.outbox.remove(&entry, &mut self.fx) {
                    self.own_status(&o.chat, &o.id, Status::Sent);
                    if !o.group.is_empty() {
                        self.sent_group_entry(&o);
                        self.pump(now);
                    }
                    self.fx.emit(Event::Sent { id: o.id });
                }
            }
            (Pending::GroupKeys { group, session_id, peers }, ResponseBody::Sent(_)) => {
                self.directory.settled();
                self.group_keys_sent(&group, &session_id, peers, now);
            }
            (Pending::Devices, ResponseBody::Devices(list)) => {
                let devices = list
                    .devices
                    .into_iter()
                    .map(|d| DeviceSummary {
                        device_id: d.device_id,
                        platform: d.platform,
                        // Names live on this device; a list from before they did may carry one.
                        name: self.me.device_names.get(&d.device_id).cloned().unwrap_or(d.name),
                        linked_at_ms: d.linked_at_ms,
                        last_active_ms: d.last_active_ms,
                        current: d.current,
                    })
                    .collect();
                self.fx.emit(Event::Devices { devices });
            }
            (Pending::LinkRefs, ResponseBody::LinkRefs(refs)) => self.refs_arrived(refs, now),
            (Pending::BlobUpload { id }, ResponseBody::BlobTicket(t)) => self.upload_ticket(id, t),
            (Pending::BlobDownload { id }, ResponseBody::BlobTicket(t)) => self.download_ticket(id, t),
            (Pending::BlobFetched | Pending::BlobDelete, ResponseBody::Done(_)) => {}
            (Pending::Approve { device_id, list, link_key, binding }, ResponseBody::Done(_)) => self.link_approved(device_id, &list, link_key, binding, now),
            (Pending::PairingFetch, ResponseBody::Pairing(offer)) => self.pairing_fetched(offer, now),
            (Pending::RemoveDevice { device_id, list }, ResponseBody::Done(_)) => match list {
                Some(list) => {
                    self.directory.set_own(&list, &mut self.fx);
                    self.fx.emit(Event::DeviceRemoved { device_id });
                }
                None => self.wipe("Logged out on this device.".into()),
            },
            (Pending::PublishList { list }, ResponseBody::Done(_)) => self.directory.set_own(&list, &mut self.fx),
            (Pending::EntrySignature, ResponseBody::Done(_)) => {
                self.me.entry_signed = true;
                self.save_me();
            }
            (Pending::Prekeys, ResponseBody::PrekeyCount(_) | ResponseBody::Done(_))
            | (Pending::Ack, ResponseBody::Done(_))
            | (Pending::Ping, ResponseBody::Pong(_))
            | (Pending::SendHistory, ResponseBody::Sent(_))
            | (Pending::PairingPublish | Pending::PairingReply, ResponseBody::Done(_)) => {}
            (why, _) => {
                // An answer of the wrong kind: a broken or hostile server.
                // Settle the request as failed so nothing waits on it.
                let message = Error::MismatchedResponse { request: why.name() }.to_string();
                self.on_failure(why, None, f::ErrorInfo { code: String::new(), message, ..Default::default() }, now);
            }
        }
    }

    fn on_event(&mut self, body: f::EventBody, now: u64) {
        match body {
            f::EventBody::Envelope(e) => self.on_envelope(e, now),
            f::EventBody::PrekeysLow(_) => self.upload_prekeys(now),
            f::EventBody::DeviceListUpdated(u) => {
                if Some(u.handle.as_str()) == self.handle() {
                    self.need_list(&u.handle, now);
                }
            }
            f::EventBody::Closing(info) => match (ErrorCode::parse(&info.code), &self.me.role) {
                (Some(ErrorCode::AccountRestored), _) => self.restored_elsewhere(&info),
                // A primary holds the account key: nothing the server says
                // wipes it. It keeps everything and says what happened.
                (Some(ErrorCode::DeviceRemoved), Role::Primary { .. }) => {
                    let message = "The server says this primary device was removed from its account. It keeps its account key, contacts and chats; if you did not do this, the server is misbehaving.".to_string();
                    self.fx.emit(Event::Error { code: Some(ErrorCode::DeviceRemoved), message });
                    self.link.close = Some("the server closed the connection: device removed".into());
                }
                (Some(ErrorCode::DeviceRemoved), Role::Companion { .. }) => {
                    self.wipe("This device was logged out from your primary device (or logged itself out).".into());
                }
                (Some(ErrorCode::DeviceRemoved), Role::Unlinked { .. }) => self.wipe("This device was removed from its account.".into()),
                _ => self.link.close = Some(info.message),
            },
            f::EventBody::LinkApproved(a) => self.on_link_approved(a, now),
            f::EventBody::PairingAnswer(answer) => self.on_pairing_answer(answer, now),
        }
    }
}

/// The body of a decrypted server frame.
fn decode_server_frame(plain: &[u8]) -> Result<ServerBody, Error> {
    f::ServerFrame::decode(plain).map_err(|e| Error::Proto(e.into()))?.body.ok_or_else(|| Error::Invalid("empty server frame".into()))
}
