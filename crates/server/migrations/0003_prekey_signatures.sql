-- Each one-time and fallback key carries its device's Ed25519 signature
-- (issue 9, finding 10). Stored and returned as uploaded; the server never
-- checks it (the claimer does, against the device's signed list entry).
-- Keys stored before this migration have none and are refused by claimers.
ALTER TABLE prekeys ADD COLUMN signature BLOB NOT NULL DEFAULT x'';
