//! Link codes and pairing codes as a scanned QR code or typed text brings
//! them in: `LinkPayload::from_uri` and `pairing::normalize_code` on any
//! string. Neither may panic; what they accept must round-trip.
use tether_proto::link::LinkPayload;
use tether_proto::pairing;

/// Runs one input (the fuzz target's body).
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(payload) = LinkPayload::from_uri(&text) {
        let uri = payload.to_uri();
        let again = LinkPayload::from_uri(&uri).expect("a payload's own URI parses");
        assert_eq!(again, payload, "from_uri(to_uri(p)) == p");
    }
    // The base64 part alone, behind the right prefix, reaches the decoder
    // more often than a prefix found by mutation.
    if !text.starts_with(tether_proto::link::LINK_URI_PREFIX) {
        let _ = LinkPayload::from_uri(&format!("{}{text}", tether_proto::link::LINK_URI_PREFIX));
    }
    if let Ok(code) = pairing::normalize_code(&text) {
        assert_eq!(code.len(), 9, "XXXX-XXXX");
        assert_eq!(pairing::normalize_code(&code).ok().as_deref(), Some(code.as_str()), "normalizing is idempotent");
    }
}
