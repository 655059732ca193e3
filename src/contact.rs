//! The contact info screen: who a contact is, whether their safety number
//! was compared, the number itself (digits and QR), and any key change
//! that waits for the user. Computed here; the popup only paints it.

use serde::Serialize;
use tether_client::Engine;
use tsify::Tsify;

/// What the contact info screen shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Tsify)]
#[serde(rename_all = "camelCase")]
#[tsify(missing_as_null)]
pub struct ContactInfo {
    pub handle: String,
    /// The name shown (a name they chose carries their handle).
    pub name: String,
    /// The name they chose for themselves, if any (cleaned).
    pub profile_name: Option<String>,
    /// The safety number was compared with them.
    pub verified: bool,
    /// Their account key changed (or their keys cannot be trusted): sends
    /// wait until the user accepts the new key.
    pub warning: Option<String>,
    /// 60 digits in 12 groups of 5, while their key is known and settled.
    pub number: Option<String>,
    /// The number's QR (`tether://verify#…`) as SVG, for them to scan.
    pub qr_svg: Option<String>,
}

/// The info for `handle`, or None if it is not a contact.
pub fn contact_info(engine: &Engine, handle: &str) -> Option<ContactInfo> {
    let c = engine.contact(handle)?;
    let number = engine.safety_number(handle).ok();
    Some(ContactInfo {
        handle: c.handle.clone(),
        name: engine.display_name(handle),
        profile_name: Some(c.profile_name.clone()).filter(|p| !p.is_empty()),
        verified: c.verified,
        warning: c.warning.clone(),
        qr_svg: number.as_ref().map(|n| crate::qr_svg(&n.qr)),
        number: number.map(|n| n.number),
    })
}
