//! The CLI's local store: the engine's key-value trait over one SQLite file
//! (`tether.db` in the data directory), each batch one transaction.

use rusqlite::{Connection, params};
use std::path::Path;
use tether_client::store::{KvStore, Op};

pub struct SqliteKv {
    conn: Connection,
}

impl SqliteKv {
    pub fn open(dir: &Path) -> Result<Self, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
        let conn = Connection::open(dir.join("tether.db")).map_err(|e| e.to_string())?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS kv (ns TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL, PRIMARY KEY (ns, key));",
        )
        .map_err(|e| e.to_string())?;
        Ok(Self { conn })
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
