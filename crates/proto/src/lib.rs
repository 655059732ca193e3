//! Tether's wire protocol: names, versions and (as it grows) the frame types,
//! Noise framing and link payloads. No I/O happens here.
//!
//! The protocol is specified in `docs/protocol.md`; this crate is the single
//! place in code where its constants live.
#![forbid(unsafe_code)]

/// Name of the protocol, carried in the Noise prologue so that a client and a
/// server speaking different protocols fail the handshake instead of
/// misreading each other.
pub const PROTOCOL_NAME: &str = "tether";

/// Wire protocol version. Bumped only for changes an older peer cannot
/// ignore; additive changes (new optional fields) keep the version.
pub const PROTOCOL_VERSION: u16 = 1;

/// The Noise prologue: `tether/<version>`. Both sides mix it into the
/// handshake hash, so a version mismatch is detected by the handshake itself.
pub fn prologue() -> Vec<u8> {
    format!("{PROTOCOL_NAME}/{PROTOCOL_VERSION}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prologue_names_protocol_and_version() {
        assert_eq!(prologue(), b"tether/1".to_vec());
    }
}
