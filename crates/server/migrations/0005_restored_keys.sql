-- The Noise keys of devices an account restore logged out (the old primary
-- and its companions): such a key is told `account_restored` when it
-- connects again, never taken for a guest (issue 10, recovery phrase).
CREATE TABLE restored_keys (
    noise_key   BLOB PRIMARY KEY NOT NULL,
    handle      TEXT NOT NULL,
    restored_ms INTEGER NOT NULL
) STRICT;
