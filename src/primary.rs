//! What a primary device shows beside the chats (the phone web app, feature
//! `app`): the companion asking to be linked, how far linking it got, the
//! account's devices, and why a link failed. Filled from the engine's
//! events by the core (`core.rs`, `react`); in the extension (a companion)
//! it stays empty and the snapshot carries `null`.

use serde::Serialize;
use tether_client::DeviceSummary;
use tether_proto::ErrorCode;
use tsify::Tsify;

/// A companion waiting for "Link Chrome on Linux?".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null)]
pub struct LinkAsk {
    /// The companion's platform id (`chrome/linux`).
    pub platform: String,
    /// What it calls itself (`Chrome on Linux`).
    pub name: String,
    /// Linking by pairing code: the 6 digits the companion shows too.
    pub confirmation: Option<String>,
}

/// How far the link the person confirmed got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Tsify)]
#[serde(tag = "stage", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum LinkProgress {
    /// Waiting for a typed pairing code's exchange (the companion's half).
    Pairing,
    /// Confirmed: the server is adding the companion.
    Approving,
    /// Added as `device_id`; the history is being sealed and sent.
    SendingHistory { device_id: u32 },
    /// Linked, and `messages` messages of history sent.
    Done { device_id: u32, messages: usize },
}

/// Why linking failed, as the web app explains it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub enum LinkFailure {
    /// The code expired or was already used: the companion shows a new one
    /// by itself.
    Expired,
    /// The QR was made for another server.
    WrongServer,
    /// Not a Tether link code.
    NotTether,
    /// The pairing code was mistyped (or the other side refused it).
    WrongCode,
    /// Anything else (the message says what).
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
pub struct LinkError {
    pub kind: LinkFailure,
    /// What failed, in words (never a key).
    pub message: String,
}

/// The primary's part of the snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null)]
pub struct PrimaryView {
    pub request: Option<LinkAsk>,
    pub progress: Option<LinkProgress>,
    pub error: Option<LinkError>,
    /// The account's devices as the server last listed them (null until
    /// asked: `Core.requestDevices`).
    pub devices: Option<Vec<DeviceSummary>>,
}

impl PrimaryView {
    /// An error the engine reported (`Event::Error`): a link failure if it
    /// is one of the link in flight — only errors of that stage count, so
    /// an unrelated one (a contact unreachable) never cancels a link.
    pub fn failed(&mut self, code: Option<ErrorCode>, message: &str) {
        use ErrorCode as C;
        let pairing_words = message.contains("pairing") || message.contains("another server");
        let kind = match (self.progress, code) {
            (Some(LinkProgress::Pairing), Some(C::UnknownPairing | C::PairingSlotTaken)) => LinkFailure::WrongCode,
            (Some(LinkProgress::Pairing), Some(C::ExpiredRef | C::UnknownRef)) => LinkFailure::Expired,
            (Some(LinkProgress::Pairing), Some(C::RateLimited)) => LinkFailure::Other,
            (Some(LinkProgress::Pairing), None) if message.contains("another server") => LinkFailure::WrongServer,
            (Some(LinkProgress::Pairing), None) if pairing_words => LinkFailure::WrongCode,
            (Some(LinkProgress::Approving), Some(C::ExpiredRef | C::UnknownRef)) => LinkFailure::Expired,
            (
                Some(LinkProgress::Approving),
                Some(
                    C::TooManyDevices
                    | C::DeviceListChanged
                    | C::InvalidDeviceList
                    | C::BadSignature
                    | C::NotPrimary
                    | C::RateLimited,
                ),
            ) => LinkFailure::Other,
            (
                Some(LinkProgress::SendingHistory { .. }),
                Some(C::RecipientQueueFull | C::FrameTooLarge | C::UnknownDevice | C::DeviceRemoved),
            ) => LinkFailure::Other,
            _ => return,
        };
        self.request = None;
        self.progress = None;
        self.error = Some(LinkError { kind, message: message.to_string() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expired_ref_while_linking_is_an_expired_code() {
        let mut p = PrimaryView { progress: Some(LinkProgress::Approving), ..Default::default() };
        p.failed(Some(ErrorCode::ExpiredRef), "that link code expired");
        assert_eq!(p.error.as_ref().map(|e| e.kind), Some(LinkFailure::Expired));
        assert_eq!((p.request, p.progress), (None, None));
        // Errors outside a link are not link errors.
        let mut idle = PrimaryView::default();
        idle.failed(Some(ErrorCode::ExpiredRef), "x");
        assert_eq!(idle.error, None);
    }

    #[test]
    fn unrelated_errors_never_cancel_a_link() {
        let ask = LinkAsk { platform: "chrome/linux".into(), name: "Chrome on Linux".into(), confirmation: None };
        let mut waiting = PrimaryView { request: Some(ask), ..Default::default() };
        waiting.failed(Some(ErrorCode::ExpiredRef), "bob (device 2) cannot be reached yet");
        assert!(waiting.request.is_some() && waiting.error.is_none());
        let mut approving = PrimaryView { progress: Some(LinkProgress::Approving), ..Default::default() };
        approving.failed(Some(ErrorCode::NoPrekeys), "bob (device 2) cannot be reached yet");
        approving.failed(None, "a history chunk arrived twice");
        assert_eq!(approving.progress, Some(LinkProgress::Approving));
        // A mistyped (or expired) pairing code: its slot is unknown.
        let mut pairing = PrimaryView { progress: Some(LinkProgress::Pairing), ..Default::default() };
        pairing.failed(Some(ErrorCode::UnknownPairing), "no such pairing code");
        assert_eq!(pairing.error.map(|e| e.kind), Some(LinkFailure::WrongCode));
    }
}
