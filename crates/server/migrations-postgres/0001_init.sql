-- The relay's schema on PostgreSQL: the same tables, columns and meaning as
-- SQLite's migrations 0001 to 0007 (crates/server/migrations/), in one step.
-- Keys are public keys only; envelopes are ciphertext. Every u64 of the
-- `Store` trait is stored as a BIGINT (at most i64::MAX).

-- Which server instance owns the data (its key lives in the data directory).
CREATE TABLE server_meta (
    key   TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

CREATE TABLE accounts (
    handle       TEXT NOT NULL,
    account_key  BYTEA NOT NULL,           -- Ed25519 public key that signs the device list
    list_version BIGINT NOT NULL,
    list_body    BYTEA NOT NULL,           -- encoded DeviceList, exactly as signed
    list_sig     BYTEA NOT NULL,
    next_device  BIGINT NOT NULL,          -- device ids are never reused
    created_ms   BIGINT NOT NULL,
    -- Named: a violation of it is `HandleTaken` (postgres.rs).
    CONSTRAINT accounts_pkey PRIMARY KEY (handle)
);

CREATE TABLE devices (
    handle          TEXT NOT NULL REFERENCES accounts(handle),
    device_id       BIGINT NOT NULL,
    noise_key       BYTEA NOT NULL,        -- stays after removal: a removed key can never come back
    platform        TEXT NOT NULL,
    name            TEXT NOT NULL,
    linked_ms       BIGINT NOT NULL,
    active_ms       BIGINT NOT NULL,
    removed_ms      BIGINT,                -- NULL while the device is active
    entry_signature BYTEA NOT NULL DEFAULT '\x',  -- the device's own signature over its list entry
    -- Named: a violation of either is `KeyTaken` (postgres.rs).
    CONSTRAINT devices_pkey PRIMARY KEY (handle, device_id),
    CONSTRAINT devices_noise_key_key UNIQUE (noise_key)
);

CREATE TABLE prekeys (
    handle    TEXT NOT NULL,
    device_id BIGINT NOT NULL,
    key_id    BIGINT NOT NULL,
    key       BYTEA NOT NULL,
    fallback  BOOLEAN NOT NULL,            -- the fallback key (at most one per device)
    signature BYTEA NOT NULL DEFAULT '\x', -- the device's signature on the key, as uploaded
    PRIMARY KEY (handle, device_id, fallback, key_id)
);
-- At most one fallback key per device, even when two uploads race: a new
-- one replaces the old in one upsert on this index.
CREATE UNIQUE INDEX prekeys_one_fallback ON prekeys (handle, device_id) WHERE fallback;

-- Envelope ids: increasing in commit order (the delivery order and the
-- clients' cursor). Only `commit_batch` draws from this sequence, under a
-- transaction-scoped advisory lock, so ids are drawn and committed in one
-- order (see postgres.rs). CACHE 1 (the default, written out): with a
-- per-connection cache two connections would hand out interleaved ranges.
CREATE SEQUENCE envelope_ids AS BIGINT CACHE 1;

CREATE TABLE envelopes (
    id            BIGINT PRIMARY KEY,      -- from envelope_ids
    handle        TEXT NOT NULL,
    device_id     BIGINT NOT NULL,
    message_id    BYTEA NOT NULL,
    sender_handle TEXT NOT NULL,
    sender_device BIGINT NOT NULL,
    ciphertext    BYTEA NOT NULL,
    created_ms    BIGINT NOT NULL
);
ALTER SEQUENCE envelope_ids OWNED BY envelopes.id;
CREATE INDEX envelopes_by_device ON envelopes (handle, device_id, id);
CREATE INDEX envelopes_by_age ON envelopes (created_ms);

CREATE TABLE tokens (
    token      TEXT PRIMARY KEY,
    created_ms BIGINT NOT NULL,
    used_ms    BIGINT,
    used_by    TEXT
);

-- The Noise keys of devices an account restore logged out: such a key is
-- told `account_restored` when it connects again, never taken for a guest.
CREATE TABLE restored_keys (
    noise_key   BYTEA PRIMARY KEY,
    handle      TEXT NOT NULL,
    restored_ms BIGINT NOT NULL
);

-- Blobs: uploaded encrypted files (docs/protocol.md §14.3). The bytes are
-- files in the blob directory; a row says who uploaded it, how long it is,
-- whether it is whole and sent, and when it expires.
CREATE TABLE blobs (
    id         BYTEA PRIMARY KEY,          -- 16 random bytes
    handle     TEXT NOT NULL,              -- the uploading account (its quota)
    length     BIGINT NOT NULL,            -- whole length in bytes
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,            -- created + 24 h; once sent, last send + 30 days
    complete   BOOLEAN NOT NULL,           -- the upload is whole
    sent       BOOLEAN NOT NULL            -- a send named it; deleted when no reader is left
);
CREATE INDEX blobs_by_account ON blobs (handle, complete);
CREATE INDEX blobs_by_expiry ON blobs (expires_ms);

-- The devices a send's copies went to, until each says it fetched the blob.
CREATE TABLE blob_readers (
    blob_id   BYTEA NOT NULL REFERENCES blobs(id) ON DELETE CASCADE,
    handle    TEXT NOT NULL,
    device_id BIGINT NOT NULL,
    PRIMARY KEY (blob_id, handle, device_id)
);
CREATE INDEX blob_readers_by_device ON blob_readers (handle, device_id);

-- Groups (docs/protocol.md §15.3): the last epoch stored per group id. A
-- row is never deleted (an old epoch must never be accepted again).
CREATE TABLE group_epochs (
    group_id   BYTEA PRIMARY KEY,          -- 16 random bytes chosen by the group's creator
    epoch      BIGINT NOT NULL,            -- the last epoch accepted (1 at creation)
    updated_ms BIGINT NOT NULL
);
