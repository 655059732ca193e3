-- Schema bookkeeping for tether-server. Accounts, devices and queues arrive
-- with the relay (see docs/protocol.md); this first migration records which
-- server instance owns the data directory.
CREATE TABLE server_meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
) STRICT;
