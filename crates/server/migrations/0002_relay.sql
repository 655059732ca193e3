-- Accounts, devices, signed device lists, prekeys, envelope queues and
-- registration tokens. Keys are public keys only; envelopes are ciphertext.

CREATE TABLE accounts (
    handle       TEXT PRIMARY KEY NOT NULL,
    account_key  BLOB NOT NULL,            -- Ed25519 public key that signs the device list
    list_version INTEGER NOT NULL,
    list_body    BLOB NOT NULL,            -- encoded DeviceList, exactly as signed
    list_sig     BLOB NOT NULL,
    next_device  INTEGER NOT NULL,         -- device ids are never reused
    created_ms   INTEGER NOT NULL
) STRICT;

CREATE TABLE devices (
    handle      TEXT NOT NULL REFERENCES accounts(handle),
    device_id   INTEGER NOT NULL,
    noise_key   BLOB NOT NULL UNIQUE,      -- stays after removal: a removed key can never come back
    platform    TEXT NOT NULL,
    name        TEXT NOT NULL,
    linked_ms   INTEGER NOT NULL,
    active_ms   INTEGER NOT NULL,
    removed_ms  INTEGER,                   -- NULL while the device is active
    PRIMARY KEY (handle, device_id)
) STRICT;

CREATE TABLE prekeys (
    handle    TEXT NOT NULL,
    device_id INTEGER NOT NULL,
    key_id    INTEGER NOT NULL,
    key       BLOB NOT NULL,
    fallback  INTEGER NOT NULL,            -- 1: the fallback key (at most one per device)
    PRIMARY KEY (handle, device_id, fallback, key_id)
) STRICT;

CREATE TABLE envelopes (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,  -- increasing: the delivery order
    handle        TEXT NOT NULL,
    device_id     INTEGER NOT NULL,
    message_id    BLOB NOT NULL,
    sender_handle TEXT NOT NULL,
    sender_device INTEGER NOT NULL,
    ciphertext    BLOB NOT NULL,
    created_ms    INTEGER NOT NULL
) STRICT;
CREATE INDEX envelopes_by_device ON envelopes (handle, device_id, id);
CREATE INDEX envelopes_by_age ON envelopes (created_ms);

CREATE TABLE tokens (
    token      TEXT PRIMARY KEY NOT NULL,
    created_ms INTEGER NOT NULL,
    used_ms    INTEGER,
    used_by    TEXT
) STRICT;
