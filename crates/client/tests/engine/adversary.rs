//! The malicious-server harness: a real tether-server (feature `adversary`)
//! whose operator records every request and rewrites or drops frames in
//! both directions, and injects events. Attack tests use it with real
//! engines over real WebSockets; an attack passes only if the clients stop it.

use crate::harness::TestServer;
use std::sync::{Arc, Mutex};
use tether_proto::frames::{ClientFrame, EventBody, Request, ServerFrame};
pub use tether_server::adversary::Peer;

type SendRule = Box<dyn FnMut(&Peer, ServerFrame) -> Option<ServerFrame> + Send>;
type RequestRule = Box<dyn FnMut(&Peer, ClientFrame) -> Option<ClientFrame> + Send>;

/// The operator: everything it saw, and its current rules.
#[derive(Default)]
pub struct Operator {
    /// Every request, in order, with who sent it.
    pub requests: Mutex<Vec<(Peer, Request)>>,
    /// Every frame sent, in order, with who got it (after rewriting).
    pub sent: Mutex<Vec<(Peer, ServerFrame)>>,
    on_send: Mutex<Option<SendRule>>,
    on_request: Mutex<Option<RequestRule>>,
    /// While set, every group commit waits for it (a slow disk).
    hold: Mutex<Option<Arc<tokio::sync::Notify>>>,
}

impl Operator {
    /// Installs a new operator on `server`.
    pub fn install(server: &TestServer) -> Arc<Self> {
        let op = Arc::new(Self::default());
        server.server.set_adversary(Some(Arc::new(Hooks(op.clone()))));
        op
    }

    /// Rewrites (or with `None` drops) frames the server sends.
    pub fn on_send(&self, rule: impl FnMut(&Peer, ServerFrame) -> Option<ServerFrame> + Send + 'static) {
        *self.on_send.lock().unwrap() = Some(Box::new(rule));
    }

    /// Rewrites (or with `None` drops) requests before the server handles them.
    pub fn on_request(&self, rule: impl FnMut(&Peer, ClientFrame) -> Option<ClientFrame> + Send + 'static) {
        *self.on_request.lock().unwrap() = Some(Box::new(rule));
    }

    /// Holds every group commit from now on, after its copies may have
    /// been pushed, until [`Operator::release_commits`].
    pub fn hold_commits(&self) {
        *self.hold.lock().unwrap() = Some(Arc::new(tokio::sync::Notify::new()));
    }

    /// Lets the held commits (and every later one) go.
    pub fn release_commits(&self) {
        if let Some(hold) = self.hold.lock().unwrap().take() {
            hold.notify_waiters();
        }
    }

    /// Back to honest.
    pub fn honest(&self) {
        *self.on_send.lock().unwrap() = None;
        *self.on_request.lock().unwrap() = None;
    }

    /// The requests of one kind, say `|r| matches!(r, Request::Send(_))`.
    pub fn requests_where(&self, pick: impl Fn(&Peer, &Request) -> bool) -> Vec<(Peer, Request)> {
        self.requests.lock().unwrap().iter().filter(|(p, r)| pick(p, r)).cloned().collect()
    }

    /// Events sent to a peer, in order.
    pub fn events_to(&self, peer: &Peer) -> Vec<EventBody> {
        use tether_proto::frames::ServerBody;
        self.sent
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p == peer)
            .filter_map(|(_, f)| match &f.body {
                Some(ServerBody::Event(e)) => e.body.clone(),
                _ => None,
            })
            .collect()
    }
}

struct Hooks(Arc<Operator>);

impl tether_server::adversary::Adversary for Hooks {
    fn hold_commit(&self) -> Option<Arc<tokio::sync::Notify>> {
        self.0.hold.lock().unwrap().clone()
    }

    fn request(&self, from: &Peer, frame: ClientFrame) -> Option<ClientFrame> {
        if let Some(r) = &frame.request {
            self.0.requests.lock().unwrap().push((from.clone(), r.clone()));
        }
        match self.0.on_request.lock().unwrap().as_mut() {
            Some(rule) => rule(from, frame),
            None => Some(frame),
        }
    }

    fn send(&self, to: &Peer, frame: ServerFrame) -> Option<ServerFrame> {
        let out = match self.0.on_send.lock().unwrap().as_mut() {
            Some(rule) => rule(to, frame),
            None => Some(frame),
        };
        if let Some(f) = &out {
            self.0.sent.lock().unwrap().push((to.clone(), f.clone()));
        }
        out
    }
}

/// A device peer.
pub fn device(handle: &str, device_id: u32) -> Peer {
    Peer::Device { handle: handle.into(), device_id }
}
