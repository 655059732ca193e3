-- Groups (docs/protocol.md §15.3): the last epoch stored per group id, so
-- that only one change per epoch is accepted. The server knows nothing
-- else of a group (no name, no members). A row is never deleted: a group
-- may be quiet for months, and forgetting it would let an old epoch be
-- accepted again. A row is 16 bytes of id and two integers.
CREATE TABLE group_epochs (
    group_id   BLOB PRIMARY KEY NOT NULL,  -- 16 random bytes chosen by the group's creator
    epoch      INTEGER NOT NULL,           -- the last epoch accepted (1 at creation)
    updated_ms INTEGER NOT NULL            -- when it was accepted
) STRICT, WITHOUT ROWID;
