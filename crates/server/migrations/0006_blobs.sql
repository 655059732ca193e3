-- Blobs: uploaded encrypted files (docs/protocol.md §14.3). The bytes are
-- files in the blob directory (`<id hex>.part` while unfinished, then
-- `<id hex>`); a row says who uploaded it, how long it is, whether it is
-- whole and sent, and when it expires. The server never learns a key, a
-- file name or a type.
CREATE TABLE blobs (
    id         BLOB PRIMARY KEY NOT NULL,  -- 16 random bytes
    handle     TEXT NOT NULL,              -- the uploading account (its quota)
    length     INTEGER NOT NULL,           -- whole length in bytes
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,           -- created + 24 h; once sent, last send + 30 days
    complete   INTEGER NOT NULL,           -- 1: the upload is whole
    sent       INTEGER NOT NULL            -- 1: a send named it; deleted when no reader is left
) STRICT;
CREATE INDEX blobs_by_account ON blobs (handle, complete);
CREATE INDEX blobs_by_expiry ON blobs (expires_ms);

-- The devices a send's copies went to, until each says it fetched the blob.
CREATE TABLE blob_readers (
    blob_id   BLOB NOT NULL REFERENCES blobs(id) ON DELETE CASCADE,
    handle    TEXT NOT NULL,
    device_id INTEGER NOT NULL,
    PRIMARY KEY (blob_id, handle, device_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX blob_readers_by_device ON blob_readers (handle, device_id);
