//! The CLI's local store: the engine's key-value trait over one SQLite file
//! (`tether.db` in the data directory), each batch one transaction.

use rusqlite::{Connection, params};
use std::path::Path;
use tether_client::store::{KvStore, Op};

pub struct SqliteKv {
    conn: Connection,
}

impl SqliteKv {
    /// Opens (or creates) `dir/tether.db`. The directory is made 0700 and
    /// the database 0600 (its WAL and shared-memory files too) before any
    /// secret is written, and checked on every open: a failure to set or
    /// verify them is an error, never ignored.
    pub fn open(dir: &Path) -> Result<Self, String> {
        let db = dir.join("tether.db");
        private::directory(dir)?;
        private::file(&db)?;
        let conn = Connection::open(&db).map_err(|e| e.to_string())?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS kv (ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (ns, key));",
        )
        .map_err(|e| e.to_string())?;
        // SQLite gives these the database's mode; check them all the same.
        for side in ["tether.db-wal", "tether.db-shm"] {
            let path = dir.join(side);
            if path.exists() {
                private::file(&path)?;
            }
        }
        Ok(Self { conn })
    }
}

/// Owner-only permissions for the data directory and files.
#[cfg(unix)]
mod private {
    use std::fs::{DirBuilder, OpenOptions, Permissions};
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    use std::path::Path;

    /// Creates `dir` (and parents) as 0700, or makes an existing one 0700.
    pub fn directory(dir: &Path) -> Result<(), String> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        restrict(dir, 0o700)
    }

    /// Creates `file` as 0600 if it is missing, and makes it 0600.
    pub fn file(file: &Path) -> Result<(), String> {
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(file)
            .map_err(|e| format!("cannot create {}: {e}", file.display()))?;
        restrict(file, 0o600)
    }

    fn restrict(path: &Path, mode: u32) -> Result<(), String> {
        std::fs::set_permissions(path, Permissions::from_mode(mode))
            .map_err(|e| format!("cannot make {} private (mode {mode:o}): {e}", path.display()))?;
        let got = std::fs::metadata(path).map_err(|e| format!("cannot check {}: {e}", path.display()))?.permissions().mode();
        if got & 0o077 != 0 {
            return Err(format!("{} is readable by others (mode {:o}) and cannot be made private", path.display(), got & 0o777));
        }
        Ok(())
    }
}

/// Elsewhere the directory is created; access is the platform's (the
/// user profile on Windows).
#[cfg(not(unix))]
mod private {
    use std::path::Path;

    pub fn directory(dir: &Path) -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
    }

    pub fn file(_: &Path) -> Result<(), String> {
        Ok(())
    }
}

impl KvStore for SqliteKv {
    fn scan(&self, ns: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT key, value FROM kv WHERE ns = ? ORDER BY key")
            .map_err(|e| e.to_string())?;
        let rows = stmt.query_map(params![ns], |r| Ok((r.get(0)?, r.get(1)?))).map_err(|e| e.to_string())?;
        rows.collect::<Result<_, _>>().map_err(|e| e.to_string())
    }

    fn apply(&mut self, ops: &[Op]) -> Result<(), String> {
        let tx = self.conn.transaction().map_err(|e| e.to_string())?;
        for op in ops {
            match op {
                Op::Put { ns, key, value } => {
                    tx.execute("INSERT OR REPLACE INTO kv (ns, key, value) VALUES (?, ?, ?)", params![ns, key, value])
                }
                Op::Delete { ns, key } => tx.execute("DELETE FROM kv WHERE ns = ? AND key = ?", params![ns, key]),
                Op::Clear => tx.execute("DELETE FROM kv", []),
            }
            .map_err(|e| e.to_string())?;
        }
        tx.commit().map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    #[cfg(unix)]
    #[test]
    fn the_database_is_created_0600_in_a_0700_directory_and_loose_modes_are_tightened_on_open() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("home").join(".tether");
        let s = super::SqliteKv::open(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("tether.db")), 0o600);
        for side in ["tether.db-wal", "tether.db-shm"] {
            if dir.join(side).exists() {
                assert_eq!(mode(&dir.join(side)), 0o600, "{side}");
            }
        }
        drop(s);
        // Someone loosened them: the next open tightens them again.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(dir.join("tether.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(super::SqliteKv::open(&dir).unwrap());
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("tether.db")), 0o600);
    }

    #[test]
    fn a_data_directory_that_cannot_be_created_fails_loudly() {
        let root = tempfile::tempdir().unwrap();
        let file = root.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let err = super::SqliteKv::open(&file.join("data")).err().expect("an error");
        assert!(err.contains("cannot create"), "{err}");
    }

    #[test]
    fn sqlite_store_passes_the_conformance_suite_and_keeps_data_across_opens() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = super::SqliteKv::open(dir.path()).unwrap();
        tether_client::store::conformance::run(&mut s);
        drop(s);
        let s = super::SqliteKv::open(dir.path()).unwrap();
        use tether_client::store::KvStore;
        assert_eq!(s.scan("c").unwrap().len(), 1, "what the suite left is still there");
    }
}
