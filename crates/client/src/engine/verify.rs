//! Safety numbers: the number a user compares with a contact, and the
//! verified state it leads to (docs/protocol.md §13). A key change resets
//! it (see `Directory::apply_list`); nothing here sends anything.

use super::Engine;
use crate::error::Error;
use crate::view::{Comparison, SafetyNumberView};
use tether_proto::safety::SafetyNumber;

impl Engine {
    /// The safety number between this account and a contact, from the
    /// account key pinned for them. Fails while their key is not known yet
    /// or a key change waits for the user (accept it first: the new key
    /// has a new number).
    pub fn safety_number(&self, handle: &str) -> Result<SafetyNumberView, Error> {
        let number = self.pair(handle)?;
        let verified = self.directory.contact(handle).is_some_and(|c| c.verified);
        Ok(SafetyNumberView { handle: handle.to_string(), number: number.display(), qr: number.qr_payload(), verified })
    }

    /// The user compared the number with the contact (read it out, or saw
    /// the same digits): the contact is verified until their key changes.
    pub fn mark_verified(&mut self, handle: &str) -> Result<(), Error> {
        self.pair(handle)?;
        self.directory.set_verified(handle, true, &mut self.fx)?;
        self.finish();
        Ok(())
    }

    /// Takes the verified mark away again.
    pub fn clear_verified(&mut self, handle: &str) -> Result<(), Error> {
        self.directory.set_verified(handle, false, &mut self.fx)?;
        self.finish();
        Ok(())
    }

    /// Compares the contact's QR payload (`tether://verify#…`, as their
    /// screen shows it) with the number here; a match marks them verified.
    pub fn verify_scanned(&mut self, handle: &str, payload: &str) -> Result<Comparison, Error> {
        let result = self.pair(handle)?.compare(payload)?;
        if result == Comparison::Match {
            self.directory.set_verified(handle, true, &mut self.fx)?;
            self.finish();
        }
        Ok(result)
    }

    fn pair(&self, handle: &str) -> Result<SafetyNumber, Error> {
        let me = self.account().ok_or(Error::NotRegistered)?;
        let c = self.directory.contact(handle).ok_or_else(|| Error::UnknownContact(handle.into()))?;
        if c.warning.is_some() {
            return Err(Error::Invalid(format!(
                "{handle}'s keys changed or cannot be trusted: accept their new key first (its safety number is new)"
            )));
        }
        if c.account_key.is_empty() {
            return Err(Error::Invalid(format!("{handle}'s keys are not known yet: connect to fetch them")));
        }
        Ok(SafetyNumber::new(&me.handle, &me.key, &c.handle, &c.account_key))
    }
}
