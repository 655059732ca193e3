//! The server's Noise static key: made on first start, kept in
//! `<data>/server.key` (mode 0600). Clients pin its fingerprint.
//!
//! Several nodes answer with one key: they share the data directory (it
//! holds the uploaded files too), or the operator copies the file to each.
//! Nodes that start at once on an empty shared directory agree: the key is
//! written to a file of the node's own, then linked into place, which only
//! one node can do; the others read the winner's.

use crate::Error;
use std::path::Path;
use tether_proto::noise::StaticKey;

const FILE: &str = "server.key";

pub fn load_or_create(dir: &Path) -> Result<StaticKey, Error> {
    let path = dir.join(FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            StaticKey::from_private(&bytes).map_err(|_| Error::ServerKey { path, reason: "not a 32-byte key".into() })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(|source| Error::DataDir { path: dir.into(), source })?;
            let key = StaticKey::generate();
            let mut suffix = [0u8; 8];
            getrandom::fill(&mut suffix).expect("OS randomness");
            let mine = dir.join(format!("{FILE}.{}", u64::from_le_bytes(suffix)));
            let placed = write_private(&mine, key.private_bytes()).and_then(|()| std::fs::hard_link(&mine, &path));
            let _ = std::fs::remove_file(&mine);
            match placed {
                Ok(()) => {
                    tracing::info!("made a new server key in {}", path.display());
                    Ok(key)
                }
                // Another node made it first: use that one.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_or_create(dir),
                Err(e) => Err(Error::ServerKey { path, reason: e.to_string() }),
            }
        }
        Err(e) => Err(Error::ServerKey { path, reason: e.to_string() }),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_starting_at_once_on_one_directory_agree_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<_> = std::thread::scope(|s| {
            let starts: Vec<_> = (0..8).map(|_| s.spawn(|| load_or_create(dir.path()).unwrap())).collect();
            starts.into_iter().map(|t| t.join().unwrap().public()).collect()
        });
        assert!(keys.iter().all(|k| *k == keys[0]), "one key for all");
        assert_eq!(load_or_create(dir.path()).unwrap().public(), keys[0], "and the file holds it");
        let files: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.file_name()).collect();
        assert_eq!(files, vec![std::ffi::OsString::from(FILE)], "no temporary file left");
    }
}
