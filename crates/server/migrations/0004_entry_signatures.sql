-- A device's own signature over its entry in the account's list, handed in
-- after it was signed in (companions); served beside the list.
ALTER TABLE devices ADD COLUMN entry_signature BLOB NOT NULL DEFAULT x'';
