//! The Noise_XX_25519_AESGCM_SHA256 handshake as typed states, and the
//! transport that follows. No I/O: each step takes the peer's bytes and
//! returns the bytes to send.
//!
//! ```text
//! client                                  server
//! ClientHandshake::start      -- e -->    ServerHandshake::new().handle
//! ExpectServerHello::handle  <-- e, ee, s, es + ServerHello --
//!   (checks the server key against the pin)
//! ServerVerified::finish      -- s, se + ClientHello -->  ExpectClientHello::handle
//! Transport                                Transport
//! ```
//!
//! Each state consumes itself, so an out-of-order step cannot be written.

mod resolver;

use crate::frames::{ClientHello, ServerHello};
use crate::{Error, Fingerprint, prologue};
use prost::Message;

/// The Noise pattern and primitives.
pub const NOISE_PARAMS: &str = "Noise_XX_25519_AESGCM_SHA256";
/// The largest Noise message (and so WebSocket frame) of the protocol.
pub const MAX_NOISE_MESSAGE: usize = 65535;
/// AES-GCM tag per transport message.
const TAG_LEN: usize = 16;
/// What a handshake message adds to its payload, at most: an ephemeral key
/// (32), a static key and its tag (48), the payload's tag (16). Handshake
/// buffers are sized by it, not by the largest Noise message: a server
/// answering thousands of handshakes at once would otherwise touch 64 KiB
/// of fresh memory for each.
const HANDSHAKE_OVERHEAD: usize = 32 + 48 + TAG_LEN;

/// The largest plaintext frame that fits one Noise message.
pub const MAX_FRAME: usize = MAX_NOISE_MESSAGE - TAG_LEN;

/// A handshake builder for [`NOISE_PARAMS`] over the crypto crates the rest
/// of Tether links (see `resolver`). Public for the known-answer vectors,
/// which build handshakes with fixed ephemeral keys.
pub fn builder() -> snow::Builder<'static> {
    snow::Builder::with_resolver(NOISE_PARAMS.parse().expect("valid noise params"), Box::new(resolver::Resolver))
}

/// A Curve25519 static key pair for Noise: a device's or the server's.
#[derive(Clone)]
pub struct StaticKey {
    private: [u8; 32],
    public: [u8; 32],
}

impl StaticKey {
    /// A new random key pair (snow's resolver draws from the OS).
    pub fn generate() -> Self {
        let kp = builder().generate_keypair().expect("keypair generation");
        Self::from_parts(&kp.private, &kp.public).expect("32-byte keys")
    }

    /// Restores a key pair from its private half.
    pub fn from_private(private: &[u8]) -> Result<Self, Error> {
        let private: [u8; 32] = private
            .try_into()
            .map_err(|_| Error::InvalidKey("noise private"))?;
        let public = x25519_public(&private);
        Ok(Self { private, public })
    }

    fn from_parts(private: &[u8], public: &[u8]) -> Result<Self, Error> {
        Ok(Self {
            private: private
                .try_into()
                .map_err(|_| Error::InvalidKey("noise private"))?,
            public: public
                .try_into()
                .map_err(|_| Error::InvalidKey("noise public"))?,
        })
    }

    /// The private half, for the owner's store only.
    pub fn private_bytes(&self) -> &[u8; 32] {
        &self.private
    }

    /// The public half: how the server knows a device, or the server itself.
    pub fn public(&self) -> [u8; 32] {
        self.public
    }
}

impl std::fmt::Debug for StaticKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the private half.
        f.debug_struct("StaticKey")
            .field("fingerprint", &Fingerprint::of(&self.public).to_string())
            .finish()
    }
}

/// X25519 public key of a private scalar.
fn x25519_public(private: &[u8; 32]) -> [u8; 32] {
    use x25519_dalek::{PublicKey, StaticSecret};
    PublicKey::from(&StaticSecret::from(*private)).to_bytes()
}

/// Reads a handshake message that carries the peer's static key; returns
/// the payload and that key.
fn read_with_remote(hs: &mut snow::HandshakeState, msg: &[u8], what: &'static str) -> Result<(Vec<u8>, [u8; 32]), Error> {
    let mut payload = vec![0u8; msg.len()];
    let n = hs.read_message(msg, &mut payload)?;
    payload.truncate(n);
    let key = hs.get_remote_static().and_then(|k| k.try_into().ok()).ok_or(Error::InvalidKey(what))?;
    Ok((payload, key))
}

// ------------------------------------------------------------------ client

/// Start of the client side.
pub struct ClientHandshake;

impl ClientHandshake {
    /// Begins a handshake with the device's static key. `pin` is the server
    /// fingerprint learned at registration (or from the link QR); `None`
    /// only on first contact, when the caller pins what it gets.
    /// Returns the next state and the first message to send.
    pub fn start(
        key: &StaticKey,
        pin: Option<Fingerprint>,
    ) -> Result<(ExpectServerHello, Vec<u8>), Error> {
        let prologue = prologue();
        let mut hs = builder()
            .local_private_key(key.private_bytes())?
            .prologue(&prologue)?
            .build_initiator()?;
        let mut buf = vec![0u8; HANDSHAKE_OVERHEAD];
        let n = hs.write_message(&[], &mut buf)?;
        buf.truncate(n);
        Ok((ExpectServerHello { hs, pin }, buf))
    }
}

/// The client has sent `e` and waits for the server's answer.
pub struct ExpectServerHello {
    hs: snow::HandshakeState,
    pin: Option<Fingerprint>,
}

impl ExpectServerHello {
    /// Reads the server's message, checks its static key against the pin and
    /// decodes its hello.
    pub fn handle(mut self, msg: &[u8]) -> Result<ServerVerified, Error> {
        let (payload, server_key) = read_with_remote(&mut self.hs, msg, "server static")?;
        let got = Fingerprint::of(&server_key);
        if let Some(expected) = self.pin {
            if expected != got {
                return Err(Error::ServerKeyMismatch {
                    expected: expected.to_string(),
                    got: got.to_string(),
                });
            }
        }
        let hello = ServerHello::decode(payload.as_slice())?;
        Ok(ServerVerified {
            hs: self.hs,
            server: got,
            hello,
        })
    }
}

/// The server proved it holds the pinned key.
pub struct ServerVerified {
    hs: snow::HandshakeState,
    /// The server's fingerprint (pin it on first contact).
    pub server: Fingerprint,
    /// What the server said about itself.
    pub hello: ServerHello,
}

impl ServerVerified {
    /// Sends the client's static key and hello; the handshake is done.
    pub fn finish(mut self, hello: &ClientHello) -> Result<(Transport, Vec<u8>), Error> {
        let hello = hello.encode_to_vec();
        let mut buf = vec![0u8; hello.len() + HANDSHAKE_OVERHEAD];
        let n = self.hs.write_message(&hello, &mut buf)?;
        buf.truncate(n);
        Ok((
            Transport {
                state: self.hs.into_transport_mode()?,
            },
            buf,
        ))
    }
}

// ------------------------------------------------------------------ server

/// Start of the server side.
pub struct ServerHandshake;

impl ServerHandshake {
    /// Reads the client's first message and answers with the server's key
    /// and hello.
    pub fn handle(
        key: &StaticKey,
        msg: &[u8],
        hello: &ServerHello,
    ) -> Result<(ExpectClientHello, Vec<u8>), Error> {
        let prologue = prologue();
        let mut hs = builder()
            .local_private_key(key.private_bytes())?
            .prologue(&prologue)?
            .build_responder()?;
        // Message 1 is only the client's ephemeral key: nothing is encrypted
        // yet, so random bytes of the right length pass here and fail at
        // message 3. Anything else (a payload, a wrong length) fails now.
        if msg.len() != 32 {
            return Err(Error::Noise(snow::Error::Input));
        }
        let mut scratch = [0u8; 32];
        hs.read_message(msg, &mut scratch)?;
        let hello = hello.encode_to_vec();
        let mut buf = vec![0u8; hello.len() + HANDSHAKE_OVERHEAD];
        let n = hs.write_message(&hello, &mut buf)?;
        buf.truncate(n);
        Ok((ExpectClientHello { hs }, buf))
    }
}

/// The server waits for the client's static key.
pub struct ExpectClientHello {
    hs: snow::HandshakeState,
}

/// A finished server-side handshake.
pub struct ClientAuthenticated {
    pub transport: Transport,
    /// The client's Noise static key: its identity towards the server.
    pub client_key: [u8; 32],
    pub hello: ClientHello,
}

impl ExpectClientHello {
    pub fn handle(mut self, msg: &[u8]) -> Result<ClientAuthenticated, Error> {
        let (payload, client_key) = read_with_remote(&mut self.hs, msg, "client static")?;
        let hello = ClientHello::decode(payload.as_slice())?;
        Ok(ClientAuthenticated {
            transport: Transport {
                state: self.hs.into_transport_mode()?,
            },
            client_key,
            hello,
        })
    }
}

// --------------------------------------------------------------- transport

/// Encrypts and decrypts frames after the handshake. Nonces are implicit
/// counters, so frames must be read in the order they were written.
pub struct Transport {
    state: snow::TransportState,
}

impl Transport {
    /// Encrypts one frame into one Noise message.
    pub fn encrypt(&mut self, frame: &[u8]) -> Result<Vec<u8>, Error> {
        if frame.len() > MAX_FRAME {
            return Err(Error::FrameTooLarge(frame.len()));
        }
        let mut buf = vec![0u8; frame.len() + TAG_LEN];
        let n = self.state.write_message(frame, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }

    /// Decrypts one Noise message into one frame.
    pub fn decrypt(&mut self, msg: &[u8]) -> Result<Vec<u8>, Error> {
        if msg.len() > MAX_NOISE_MESSAGE {
            return Err(Error::FrameTooLarge(msg.len()));
        }
        let mut buf = vec![0u8; msg.len()];
        let n = self.state.read_message(msg, &mut buf)?;
        buf.truncate(n);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_hello() -> ServerHello {
        ServerHello {
            server_version: "test".into(),
            protocol: 1,
            time_ms: 7,
        }
    }

    fn run(pin: Option<Fingerprint>) -> Result<(Transport, ClientAuthenticated), Error> {
        let server = StaticKey::generate();
        let client = StaticKey::generate();
        let (expect, m1) =
            ClientHandshake::start(&client, pin.or(Some(Fingerprint::of(&server.public()))))?;
        let (expect_client, m2) = ServerHandshake::handle(&server, &m1, &server_hello())?;
        let verified = expect.handle(&m2)?;
        assert_eq!(verified.hello.time_ms, 7);
        let (transport, m3) = verified.finish(&ClientHello {
            client_version: "c".into(),
        })?;
        let done = expect_client.handle(&m3)?;
        assert_eq!(done.client_key, client.public());
        Ok((transport, done))
    }

    #[test]
    fn handshake_authenticates_both_and_frames_round_trip() {
        let (mut c, mut s) = run(None).unwrap();
        let msg = c.encrypt(b"hello").unwrap();
        assert_ne!(&msg[..5], b"hello");
        assert_eq!(s.transport.decrypt(&msg).unwrap(), b"hello");
        let back = s.transport.encrypt(b"world").unwrap();
        assert_eq!(c.decrypt(&back).unwrap(), b"world");
    }

    #[test]
    fn a_wrong_server_key_is_refused() {
        let wrong = Fingerprint::of(&StaticKey::generate().public());
        match run(Some(wrong)) {
            Err(Error::ServerKeyMismatch { .. }) => {}
            other => panic!("expected a key mismatch, got {:?}", other.err()),
        }
    }

    #[test]
    fn garbage_and_replays_fail_cleanly() {
        let server = StaticKey::generate();
        assert!(
            ServerHandshake::handle(
                &server,
                b"not a noise message at all, too long",
                &server_hello()
            )
            .is_err()
        );
        let (mut c, mut s) = run(None).unwrap();
        let msg = c.encrypt(b"once").unwrap();
        s.transport.decrypt(&msg).unwrap();
        assert!(
            s.transport.decrypt(&msg).is_err(),
            "a replayed frame must not decrypt"
        );
    }

    #[test]
    fn static_key_restores_from_private() {
        let k = StaticKey::generate();
        let r = StaticKey::from_private(k.private_bytes()).unwrap();
        assert_eq!(k.public(), r.public());
        assert!(!format!("{r:?}").contains(&format!("{:?}", k.private_bytes())));
    }
}
