//! The server's Noise static key: made on first start, kept in
//! `<data>/server.key` (mode 0600). Clients pin its fingerprint.

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
            write_private(&path, key.private_bytes())
                .map_err(|e| Error::ServerKey { path: path.clone(), reason: e.to_string() })?;
            tracing::info!("made a new server key in {}", path.display());
            Ok(key)
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
