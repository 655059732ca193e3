//! Linking a companion by QR code: the payload the companion shows and the
//! approval the primary sends back.
//!
//! 1. The companion (a browser, say) connects to the server as a guest, gets
//!    a link ref and shows a [`LinkPayload`] as a QR code
//!    (`tether://link#…`). The payload carries its keys and a fresh one-time
//!    `link_secret`.
//! 2. The primary scans it, checks the server fingerprint, asks the person
//!    "Link `<name>`?", adds the companion to the signed device list and
//!    answers the ref with [`make_approval`]: the companion's
//!    [`DeviceIdentity`] signed by the account key and MACed with the link
//!    secret. The server relays it but cannot read or forge it.
//! 3. The companion checks it with [`open_approval`]: the MAC proves that the
//!    primary saw *this* QR code, the signature that the account approved
//!    these keys.
//!
//! Encodings are protobuf (prost), field numbers fixed: unknown fields are
//! ignored so later versions can add fields.

use crate::Error;
use crate::Fingerprint;
use crate::device_list::{self, AccountKey};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use prost::Message;
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};

/// What every link code starts with.
pub const LINK_URI_PREFIX: &str = "tether://link#";

/// Domain separation for the account signature in a link approval.
pub const LINK_APPROVAL_CONTEXT: &[u8] = b"tether link approval v1\0";

/// Version of the [`LinkPayload`] encoding.
const LINK_PAYLOAD_VERSION: u32 = 1;
/// Longest link code [`LinkPayload::from_uri`] looks at (a real one is
/// about 400 characters).
const MAX_URI_LEN: usize = 2048;
/// Longest `platform`, in bytes.
const MAX_PLATFORM_LEN: usize = 64;
/// Longest `name`, in bytes.
const MAX_NAME_LEN: usize = 128;

/// What the companion's QR code carries.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct LinkPayload {
    /// Fingerprint of the server the companion is connected to; the primary
    /// refuses a code for a server other than its own.
    pub server: Fingerprint,
    /// The link ref the server gave the companion (16 bytes).
    pub link_ref: [u8; 16],
    /// The companion's Noise static public key.
    pub noise_key: [u8; 32],
    /// The companion's Olm Curve25519 identity key.
    pub identity_key: [u8; 32],
    /// The companion's Olm Ed25519 signing key.
    pub signing_key: [u8; 32],
    /// The companion's X25519 public key for sealed history
    /// ([`crate::seal::seal`] to it).
    pub link_key: [u8; 32],
    /// One-time secret: the approval's MAC key, proving the primary saw this
    /// QR code. Never sent to the server.
    pub link_secret: [u8; 32],
    /// Platform, e.g. `chrome/linux`.
    pub platform: String,
    /// A name the person recognises, e.g. `Chrome on Linux`.
    pub name: String,
}

/// Wire form of [`LinkPayload`]. Field numbers are part of the protocol.
#[derive(Clone, PartialEq, Message)]
struct LinkPayloadWire {
    #[prost(uint32, tag = "1")]
    version: u32,
    #[prost(bytes = "vec", tag = "2")]
    server: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    link_ref: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    noise_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "5")]
    identity_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "6")]
    signing_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "7")]
    link_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "8")]
    link_secret: Vec<u8>,
    #[prost(string, tag = "9")]
    platform: String,
    #[prost(string, tag = "10")]
    name: String,
}

impl LinkPayload {
    /// The link code: [`LINK_URI_PREFIX`] followed by base64url (no padding)
    /// of the protobuf encoding, which carries a version field (= 1).
    pub fn to_uri(&self) -> String {
        let wire = LinkPayloadWire {
            version: LINK_PAYLOAD_VERSION,
            server: self.server.0.to_vec(),
            link_ref: self.link_ref.to_vec(),
            noise_key: self.noise_key.to_vec(),
            identity_key: self.identity_key.to_vec(),
            signing_key: self.signing_key.to_vec(),
            link_key: self.link_key.to_vec(),
            link_secret: self.link_secret.to_vec(),
            platform: self.platform.clone(),
            name: self.name.clone(),
        };
        format!("{LINK_URI_PREFIX}{}", URL_SAFE_NO_PAD.encode(wire.encode_to_vec()))
    }

    /// Parses a link code. Surrounding whitespace is ignored; anything else
    /// that is not exactly what [`to_uri`](Self::to_uri) produces is refused:
    ///
    /// - [`Error::InvalidLink`]: longer than 2048 characters, wrong prefix,
    ///   bad base64 (including `=` padding), not a valid encoding, a key,
    ///   secret, ref or fingerprint of the wrong length, an X25519 key
    ///   (`noise_key`, `identity_key`, `link_key`) of low order, a `platform`
    ///   over 64 or a `name` over 128 bytes, or either containing control or
    ///   bidirectional-override characters (they would let a code disguise
    ///   its name in the primary's "Link …?" prompt), or no version field;
    /// - [`Error::UnsupportedVersion`]: a version other than 1.
    ///
    /// Fields this version does not know are ignored.
    pub fn from_uri(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        if s.len() > MAX_URI_LEN {
            return Err(Error::InvalidLink("too long"));
        }
        let encoded =
            s.strip_prefix(LINK_URI_PREFIX).ok_or(Error::InvalidLink("does not start with tether://link#"))?;
        let bytes = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| Error::InvalidLink("bad base64"))?;
        let wire = LinkPayloadWire::decode(bytes.as_slice()).map_err(|_| Error::InvalidLink("not a valid encoding"))?;
        if wire.version == 0 {
            // Absent: not a link payload at all (e.g. empty).
            return Err(Error::InvalidLink("no version"));
        }
        if wire.version != LINK_PAYLOAD_VERSION {
            return Err(Error::UnsupportedVersion { what: "link code", version: wire.version });
        }
        let noise_key = x25519_key(&wire.noise_key, "noise key must be a 32-byte X25519 key")?;
        let identity_key = x25519_key(&wire.identity_key, "identity key must be a 32-byte X25519 key")?;
        let link_key = x25519_key(&wire.link_key, "link key must be a 32-byte X25519 key")?;
        check_label(&wire.platform, MAX_PLATFORM_LEN, "bad platform")?;
        check_label(&wire.name, MAX_NAME_LEN, "bad device name")?;
        Ok(Self {
            server: Fingerprint(fixed(&wire.server, "server fingerprint must be 32 bytes")?),
            link_ref: fixed(&wire.link_ref, "link ref must be 16 bytes")?,
            noise_key,
            identity_key,
            signing_key: fixed(&wire.signing_key, "signing key must be 32 bytes")?,
            link_key,
            link_secret: fixed(&wire.link_secret, "link secret must be 32 bytes")?,
            platform: wire.platform,
            name: wire.name,
        })
    }
}

/// The identity the primary gives a companion: who it is in the account and
/// which keys the account approved for it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DeviceIdentity {
    /// The account's handle.
    pub handle: String,
    /// The id the companion has in the signed device list.
    pub device_id: u32,
    /// The companion's Noise static public key.
    pub noise_key: [u8; 32],
    /// The companion's Olm Curve25519 identity key.
    pub identity_key: [u8; 32],
    /// The companion's Olm Ed25519 signing key.
    pub signing_key: [u8; 32],
    /// When the primary approved the link (ms since the Unix epoch).
    pub linked_at_ms: u64,
}

/// Wire form of [`DeviceIdentity`] (the approval's `details`).
#[derive(Clone, PartialEq, Message)]
struct DeviceIdentityWire {
    #[prost(string, tag = "1")]
    handle: String,
    #[prost(uint32, tag = "2")]
    device_id: u32,
    #[prost(bytes = "vec", tag = "3")]
    noise_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "4")]
    identity_key: Vec<u8>,
    #[prost(bytes = "vec", tag = "5")]
    signing_key: Vec<u8>,
    #[prost(uint64, tag = "6")]
    linked_at_ms: u64,
}

/// Wire form of a link approval.
#[derive(Clone, PartialEq, Message)]
struct ApprovalWire {
    /// An encoded [`DeviceIdentityWire`], kept as bytes so that signature
    /// and MAC cover exactly what was sent.
    #[prost(bytes = "vec", tag = "1")]
    details: Vec<u8>,
    /// Ed25519 over `LINK_APPROVAL_CONTEXT || details || identity_key`.
    #[prost(bytes = "vec", tag = "2")]
    account_signature: Vec<u8>,
    /// HMAC-SHA256(link secret, `details || account_signature`).
    #[prost(bytes = "vec", tag = "3")]
    hmac: Vec<u8>,
}

/// The primary's approval of a companion, opaque to the server: protobuf
/// `{ details, account_signature, hmac }` where `details` is the encoded
/// `identity`, `account_signature` is the account key's Ed25519 signature
/// over [`LINK_APPROVAL_CONTEXT`] `|| details ||` the companion's identity
/// key, and `hmac` is HMAC-SHA256(`link_secret`, `details ||
/// account_signature`).
pub fn make_approval(account: &AccountKey, identity: &DeviceIdentity, link_secret: &[u8; 32]) -> Vec<u8> {
    let details = DeviceIdentityWire {
        handle: identity.handle.clone(),
        device_id: identity.device_id,
        noise_key: identity.noise_key.to_vec(),
        identity_key: identity.identity_key.to_vec(),
        signing_key: identity.signing_key.to_vec(),
        linked_at_ms: identity.linked_at_ms,
    }
    .encode_to_vec();
    let account_signature =
        account.sign_bytes(LINK_APPROVAL_CONTEXT, &[&details[..], &identity.identity_key].concat()).to_vec();
    let hmac = approval_mac(link_secret, &details, &account_signature).finalize().into_bytes().to_vec();
    ApprovalWire { details, account_signature, hmac }.encode_to_vec()
}

/// Checks an approval made by [`make_approval`] and returns the identity in
/// it. First the HMAC with the QR code's `link_secret` (proof that the
/// primary saw this QR code; [`Error::LinkSecretMismatch`] otherwise), then
/// the account signature with `account_key` ([`Error::BadSignature`], or
/// [`Error::InvalidKey`] for an unusable key). A malformed approval is
/// [`Error::InvalidLink`].
///
/// The caller must still check that the returned keys are its own (the
/// ones it put in its QR code) before using the identity.
pub fn open_approval(approval: &[u8], account_key: &[u8], link_secret: &[u8; 32]) -> Result<DeviceIdentity, Error> {
    let wire = ApprovalWire::decode(approval).map_err(|_| Error::InvalidLink("malformed approval"))?;
    approval_mac(link_secret, &wire.details, &wire.account_signature)
        .verify_slice(&wire.hmac)
        .map_err(|_| Error::LinkSecretMismatch)?;
    let details = DeviceIdentityWire::decode(wire.details.as_slice())
        .map_err(|_| Error::InvalidLink("malformed approval details"))?;
    let identity = DeviceIdentity {
        handle: details.handle,
        device_id: details.device_id,
        noise_key: fixed(&details.noise_key, "approved noise key must be 32 bytes")?,
        identity_key: fixed(&details.identity_key, "approved identity key must be 32 bytes")?,
        signing_key: fixed(&details.signing_key, "approved signing key must be 32 bytes")?,
        linked_at_ms: details.linked_at_ms,
    };
    device_list::verify_bytes(
        account_key,
        LINK_APPROVAL_CONTEXT,
        &[&wire.details[..], &identity.identity_key].concat(),
        &wire.account_signature,
    )
    .map_err(|e| match e {
        Error::BadSignature(_) => Error::BadSignature("link approval"),
        other => other,
    })?;
    Ok(identity)
}

/// HMAC-SHA256 keyed with the link secret over `details || signature`.
fn approval_mac(link_secret: &[u8; 32], details: &[u8], signature: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(link_secret).expect("HMAC accepts keys of any length");
    mac.update(details);
    mac.update(signature);
    mac
}

/// A fixed-length field, or [`Error::InvalidLink`] with `what`.
fn fixed<const N: usize>(bytes: &[u8], what: &'static str) -> Result<[u8; N], Error> {
    bytes.try_into().map_err(|_| Error::InvalidLink(what))
}

/// A 32-byte X25519 public key that is not of low order (for which every
/// Diffie-Hellman result is all zeros). A clamped scalar is a multiple of 8,
/// so multiplying a low-order point by any secret gives the identity.
fn x25519_key(bytes: &[u8], what: &'static str) -> Result<[u8; 32], Error> {
    let key: [u8; 32] = fixed(bytes, what)?;
    let probe = StaticSecret::from([1u8; 32]).diffie_hellman(&PublicKey::from(key));
    if probe.was_contributory() { Ok(key) } else { Err(Error::InvalidLink(what)) }
}

/// A display label: at most `max` bytes, no control characters and no
/// bidirectional overrides or isolates.
fn check_label(label: &str, max: usize, what: &'static str) -> Result<(), Error> {
    let bad_char = |c: char| c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if label.len() > max || label.chars().any(bad_char) {
        return Err(Error::InvalidLink(what));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload() -> LinkPayload {
        LinkPayload {
            server: Fingerprint::of(&[9; 32]),
            link_ref: [1; 16],
            noise_key: crate::seal::public_key(&[2; 32]),
            identity_key: crate::seal::public_key(&[3; 32]),
            signing_key: [4; 32],
            link_key: crate::seal::public_key(&[5; 32]),
            link_secret: [6; 32],
            platform: "chrome/linux".into(),
            name: "Chrome on Linux – Büro".into(),
        }
    }

    fn wire(p: &LinkPayload) -> LinkPayloadWire {
        let uri = p.to_uri();
        let bytes = URL_SAFE_NO_PAD.decode(uri.strip_prefix(LINK_URI_PREFIX).unwrap()).unwrap();
        LinkPayloadWire::decode(bytes.as_slice()).unwrap()
    }

    fn uri_of(bytes: &[u8]) -> String {
        format!("{LINK_URI_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes))
    }

    #[test]
    fn uri_round_trips() {
        let p = payload();
        let uri = p.to_uri();
        assert!(uri.starts_with("tether://link#"));
        assert!(
            uri[LINK_URI_PREFIX.len()..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{uri}"
        );
        assert_eq!(LinkPayload::from_uri(&uri).unwrap(), p);
        assert_eq!(LinkPayload::from_uri(&format!("  \n{uri}\t ")).unwrap(), p);
        assert_eq!(wire(&p).version, 1);
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let mut bytes = wire(&payload()).encode_to_vec();
        // Field 99, length-delimited, 3 bytes.
        bytes.extend_from_slice(&[0x9a, 0x06, 3, b'x', b'y', b'z']);
        assert_eq!(LinkPayload::from_uri(&uri_of(&bytes)).unwrap(), payload());
    }

    #[test]
    fn wrong_prefix_is_refused() {
        let uri = payload().to_uri();
        let body = &uri[LINK_URI_PREFIX.len()..];
        for bad in [
            format!("tether://lnk#{body}"),
            format!("https://example.com/#{body}"),
            body.to_string(),
            format!("x{uri}"),
            String::new(),
        ] {
            assert!(matches!(LinkPayload::from_uri(&bad), Err(Error::InvalidLink(_))), "{bad}");
        }
    }

    #[test]
    fn bad_base64_is_refused() {
        let uri = payload().to_uri();
        for bad in [
            format!("{uri}!"),
            format!("{uri}=="),
            format!("{uri}a"), // impossible length
            uri.replace('A', "+"),
            LINK_URI_PREFIX.to_string(),
            format!("{LINK_URI_PREFIX}{}", "A".repeat(MAX_URI_LEN)),
        ] {
            if bad == uri {
                continue;
            }
            assert!(matches!(LinkPayload::from_uri(&bad), Err(Error::InvalidLink(_))), "{bad}");
        }
        // Valid base64, not a payload.
        assert!(matches!(LinkPayload::from_uri(&uri_of(&[0xff, 0xff, 0xff])), Err(Error::InvalidLink(_))));
    }

    #[test]
    fn wrong_version_is_refused() {
        let mut w = wire(&payload());
        w.version = 0;
        assert!(matches!(LinkPayload::from_uri(&uri_of(&w.encode_to_vec())), Err(Error::InvalidLink(_))));
        for version in [2, 77] {
            let mut w = wire(&payload());
            w.version = version;
            match LinkPayload::from_uri(&uri_of(&w.encode_to_vec())) {
                Err(Error::UnsupportedVersion { version: v, .. }) => assert_eq!(v, version),
                other => panic!("version {version}: {other:?}"),
            }
        }
    }

    #[test]
    fn wrong_lengths_are_refused() {
        type Field = fn(&mut LinkPayloadWire) -> &mut Vec<u8>;
        let fields: [(&str, Field); 7] = [
            ("server", |w| &mut w.server),
            ("link_ref", |w| &mut w.link_ref),
            ("noise_key", |w| &mut w.noise_key),
            ("identity_key", |w| &mut w.identity_key),
            ("signing_key", |w| &mut w.signing_key),
            ("link_key", |w| &mut w.link_key),
            ("link_secret", |w| &mut w.link_secret),
        ];
        for (name, field) in fields {
            for change in [-1i32, 1, i32::MIN] {
                let mut w = wire(&payload());
                let f = field(&mut w);
                match change {
                    -1 => {
                        f.pop();
                    }
                    1 => f.push(0),
                    _ => f.clear(),
                }
                assert!(
                    matches!(LinkPayload::from_uri(&uri_of(&w.encode_to_vec())), Err(Error::InvalidLink(_))),
                    "{name} {change}"
                );
            }
        }
    }

    #[test]
    fn low_order_keys_and_hostile_labels_are_refused() {
        let mut p = payload();
        p.link_key = [0; 32];
        assert!(matches!(LinkPayload::from_uri(&p.to_uri()), Err(Error::InvalidLink(_))));
        let mut p = payload();
        // A point of order 8 (from the usual X25519 low-order blocklist).
        p.noise_key = [
            0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09,
            0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00,
        ];
        assert!(LinkPayload::from_uri(&p.to_uri()).is_err());
        for name in ["Chrome\nApprove".to_string(), "Chrome \u{202E}xunil".to_string(), "x".repeat(MAX_NAME_LEN + 1)] {
            let mut p = payload();
            p.name = name.clone();
            assert!(matches!(LinkPayload::from_uri(&p.to_uri()), Err(Error::InvalidLink(_))), "{name:?}");
        }
        let mut p = payload();
        p.platform = "x".repeat(MAX_PLATFORM_LEN + 1);
        assert!(LinkPayload::from_uri(&p.to_uri()).is_err());
        let mut p = payload();
        p.name = "x".repeat(MAX_NAME_LEN);
        assert!(LinkPayload::from_uri(&p.to_uri()).is_ok());
    }

    fn identity() -> DeviceIdentity {
        DeviceIdentity {
            handle: "alice".into(),
            device_id: 3,
            noise_key: [2; 32],
            identity_key: [3; 32],
            signing_key: [4; 32],
            linked_at_ms: 1_700_000_000_000,
        }
    }

    const SECRET: [u8; 32] = [6; 32];

    #[test]
    fn approval_round_trips() {
        let account = AccountKey::from_seed(&[7; 32]);
        let approval = make_approval(&account, &identity(), &SECRET);
        assert_eq!(open_approval(&approval, &account.public(), &SECRET).unwrap(), identity());
    }

    #[test]
    fn approval_with_the_wrong_link_secret_fails() {
        let account = AccountKey::from_seed(&[7; 32]);
        let approval = make_approval(&account, &identity(), &SECRET);
        let mut other = SECRET;
        other[31] ^= 1;
        assert!(matches!(open_approval(&approval, &account.public(), &other), Err(Error::LinkSecretMismatch)));
    }

    #[test]
    fn approval_with_a_different_account_key_fails() {
        let account = AccountKey::from_seed(&[7; 32]);
        let approval = make_approval(&account, &identity(), &SECRET);
        let other = AccountKey::from_seed(&[8; 32]);
        assert!(matches!(open_approval(&approval, &other.public(), &SECRET), Err(Error::BadSignature(_))));
        assert!(matches!(open_approval(&approval, &[1, 2, 3], &SECRET), Err(Error::InvalidKey(_))));
        // Signed by another account (whoever knows the link secret can
        // compute the MAC, but not the account's signature).
        let forged = make_approval(&other, &identity(), &SECRET);
        assert!(matches!(open_approval(&forged, &account.public(), &SECRET), Err(Error::BadSignature(_))));
    }

    #[test]
    fn approval_with_tampered_details_fails() {
        let account = AccountKey::from_seed(&[7; 32]);
        let approval = make_approval(&account, &identity(), &SECRET);
        let good = ApprovalWire::decode(approval.as_slice()).unwrap();

        // Details changed (another device id): the MAC no longer matches.
        let mut changed = identity();
        changed.device_id = 4;
        let details = DeviceIdentityWire {
            handle: changed.handle.clone(),
            device_id: changed.device_id,
            noise_key: changed.noise_key.to_vec(),
            identity_key: changed.identity_key.to_vec(),
            signing_key: changed.signing_key.to_vec(),
            linked_at_ms: changed.linked_at_ms,
        }
        .encode_to_vec();
        let tampered = ApprovalWire { details: details.clone(), ..good.clone() };
        assert!(matches!(
            open_approval(&tampered.encode_to_vec(), &account.public(), &SECRET),
            Err(Error::LinkSecretMismatch)
        ));

        // Same change with a recomputed MAC (someone who knows the link
        // secret): the account signature still catches it.
        let hmac = approval_mac(&SECRET, &details, &good.account_signature).finalize().into_bytes().to_vec();
        let remaced = ApprovalWire { details, hmac, ..good.clone() };
        assert!(matches!(
            open_approval(&remaced.encode_to_vec(), &account.public(), &SECRET),
            Err(Error::BadSignature(_))
        ));

        // A flipped bit anywhere in the approval is refused.
        for i in 0..approval.len() {
            let mut bad = approval.clone();
            bad[i] ^= 0x04;
            assert!(open_approval(&bad, &account.public(), &SECRET).is_err(), "byte {i}");
        }
        assert!(open_approval(&[], &account.public(), &SECRET).is_err());
        assert!(open_approval(b"garbage", &account.public(), &SECRET).is_err());
    }
}
