//! TLS termination (rustls), when the operator asks for it.
//!
//! ```text
//! TlsSource::Files ─ FileCert (ResolvesServerCert: Arc<CertifiedKey>, swapped by reload() on SIGHUP)
//! TlsSource::Acme  ─ rustls-acme AcmeState (driven by acme_loop: orders, renews, logs)
//!                      └ its resolver; TLS-ALPN-01 challenges are answered on the TLS port itself
//! Tls ─ TlsListener (an axum Listener: accepts TCP, handshakes in tasks, hands axum TLS streams)
//! ```
//!
//! ACME uses the TLS-ALPN-01 challenge: the CA connects to port 443 of the
//! name with the ALPN protocol `acme-tls/1`, so the one port that serves
//! the clients also proves control of the name; no port 80 listener is
//! needed (HTTP-01 would need one, DNS-01 would need DNS API credentials).
//!
//! The rustls `ring` provider is used everywhere, passed explicitly.
//! Nothing here logs key material: only file paths, domain names and the
//! errors' descriptions.

use crate::Error;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{Acceptor, ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::LazyConfigAcceptor;
use tokio_rustls::server::TlsStream;

/// Let's Encrypt's production ACME directory, the default `acme_directory`.
pub const LETS_ENCRYPT: &str = rustls_acme::acme::LETS_ENCRYPT_PRODUCTION_DIRECTORY;

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// TLS handshakes running at once; further connections wait in the
/// kernel's accept queue.
const MAX_HANDSHAKES: usize = 1024;

/// Where the certificate comes from (from the `tls_*` and `acme_*` settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsSource {
    /// PEM files; reloaded on SIGHUP.
    Files {
        /// The certificate chain, leaf first.
        cert: PathBuf,
        /// The private key (PKCS#8, PKCS#1 or SEC1).
        key: PathBuf,
    },
    /// Obtained and renewed over ACME.
    Acme(AcmeSettings),
}

/// What the ACME client needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeSettings {
    /// The names the certificate is for; each must resolve to this server.
    pub domains: Vec<String>,
    /// The account's contact address, if any (the CA's expiry notices).
    pub email: Option<String>,
    /// The ACME directory URL.
    pub directory: String,
    /// Where the account key and the certificate are kept between runs.
    pub cache: PathBuf,
    /// A PEM file of extra roots to trust for the directory's own HTTPS (a
    /// private CA such as pebble's); the webpki roots are trusted anyway.
    pub ca: Option<PathBuf>,
}

/// The ring provider, which every rustls config here uses.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A ready TLS setup: the server config and, for ACME, the one that answers
/// TLS-ALPN-01 challenges.
#[derive(Clone)]
pub struct Tls {
    /// For clients: HTTP/1.1 (hence WebSocket) only.
    config: Arc<ServerConfig>,
    /// For the ACME CA's validation connections (`acme-tls/1`).
    challenge: Option<Arc<ServerConfig>>,
    /// The file-based certificate, for `reload`.
    files: Option<Arc<FileCert>>,
}

impl Tls {
    /// Loads the certificate files, or starts the ACME client (a task
    /// that orders a certificate when none is cached and renews it in
    /// time, logging what it does). Must run inside a tokio runtime.
    pub fn start(source: &TlsSource) -> Result<Self, Error> {
        match source {
            TlsSource::Files { cert, key } => {
                let files = Arc::new(FileCert::load(cert, key)?);
                let config = server_config(files.clone())?;
                tracing::info!(cert = %cert.display(), "TLS with a certificate from files (SIGHUP reloads them)");
                Ok(Self { config, challenge: None, files: Some(files) })
            }
            TlsSource::Acme(acme) => {
                let client = acme_client_config(acme.ca.as_deref())?;
                let cache = prepare_cache(&acme.cache)?;
                let state = rustls_acme::AcmeConfig::new_with_client_config(&acme.domains, client)
                    .directory(&acme.directory)
                    .contact(acme.email.iter().map(|e| format!("mailto:{e}")))
                    .cache(rustls_acme::caches::DirCache::new(cache))
                    .challenge_type(rustls_acme::UseChallenge::TlsAlpn01)
                    .state();
                let challenge = state.challenge_rustls_config_with_provider(provider());
                let server = server_config(state.resolver())?;
                tracing::info!(
                    domains = ?acme.domains,
                    directory = %acme.directory,
                    cache = %acme.cache.display(),
                    "TLS with certificates over ACME (TLS-ALPN-01 on this port)"
                );
                tokio::spawn(acme_loop(state, acme.domains.clone()));
                Ok(Self { config: server, challenge: Some(challenge), files: None })
            }
        }
    }

    /// Reads the certificate files again (on SIGHUP). A file that does not
    /// load leaves the current certificate in place; the error says why.
    /// `Ok(false)` when there is nothing to reload (ACME).
    pub fn reload(&self) -> Result<bool, Error> {
        match &self.files {
            Some(files) => files.reload().map(|()| true),
            None => Ok(false),
        }
    }

    /// A listener that accepts TCP connections on `tcp` and hands axum
    /// the connections whose TLS handshake completed.
    pub(crate) fn listener(&self, tcp: TcpListener) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        let task = tokio::spawn(accept_loop(tcp, self.config.clone(), self.challenge.clone(), tx));
        Ok(TlsListener { incoming: rx, local, task })
    }
}

/// The server config for clients, around a certificate resolver.
fn server_config(resolver: Arc<dyn ResolvesServerCert>) -> Result<Arc<ServerConfig>, Error> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    // axum serves HTTP/1.1 only (WebSocket upgrades need it).
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The ACME client's TLS: the webpki roots plus `ca`, if given.
fn acme_client_config(ca: Option<&Path>) -> Result<Arc<ClientConfig>, Error> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca {
        let certs = read_certs(path)?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(Error::TlsCert { path: path.into(), reason: "no usable CA certificate in the file".into() });
        }
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Creates the ACME cache directory, private to this user: it holds the
/// ACME account key and the certificate's private key.
fn prepare_cache(dir: &Path) -> Result<PathBuf, Error> {
    let fail = |source| Error::DataDir { path: dir.into(), source };
    std::fs::create_dir_all(dir).map_err(fail)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(fail)?;
    }
    Ok(dir.into())
}

/// Drives the ACME state machine for the life of the process and logs its
/// events (names and error descriptions only; never keys).
async fn acme_loop(mut state: rustls_acme::AcmeState<std::io::Error>, domains: Vec<String>) {
    use futures_util::StreamExt;
    use rustls_acme::EventOk;
    let mut have_cert = false;
    while let Some(event) = state.next().await {
        match event {
            Ok(EventOk::DeployedCachedCert) => {
                have_cert = true;
                tracing::info!(?domains, "ACME: serving the cached certificate");
            }
            Ok(EventOk::DeployedNewCert) => {
                if have_cert {
                    tracing::info!(?domains, "ACME: certificate renewed");
                } else {
                    tracing::info!(?domains, "ACME: certificate obtained");
                }
                have_cert = true;
            }
            Ok(EventOk::CertCacheStore) => tracing::debug!("ACME: certificate stored in the cache"),
            Ok(EventOk::AccountCacheStore) => tracing::debug!("ACME: account stored in the cache"),
            Err(rustls_acme::EventError::Order(e)) => {
                tracing::error!(?domains, "ACME: ordering a certificate failed (will retry): {}", order_error(&e))
            }
            Err(e) => tracing::error!(?domains, "ACME: {e}"),
        }
    }
}

/// A failed order in words: for a failed validation, the name and what the
/// CA said (rather than the whole authorization object).
fn order_error(e: &rustls_acme::OrderError) -> String {
    use rustls_acme::acme::Identifier;
    match e {
        rustls_acme::OrderError::BadAuth(auth) => {
            let Identifier::Dns(name) = &auth.identifier;
            let problems: Vec<String> = auth
                .challenges
                .iter()
                .filter_map(|c| c.error.as_ref())
                .map(|p| {
                    format!("{} ({})", p.detail.as_deref().unwrap_or("no detail"), p.typ.as_deref().unwrap_or("?"))
                })
                .collect();
            format!("the CA could not validate {name} ({:?}): {}", auth.status, problems.join("; "))
        }
        e => e.to_string(),
    }
}

/// A certificate from PEM files, swapped whole on reload: handshakes
/// already running keep the `Arc` they got; new ones see the new one.
#[derive(Debug)]
pub struct FileCert {
    /// The certificate chain file.
    cert: PathBuf,
    /// The private key file.
    key: PathBuf,
    /// What handshakes get now.
    current: RwLock<Arc<CertifiedKey>>,
}

impl FileCert {
    /// Reads both files; they must hold a chain and the leaf's key.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, Error> {
        let current = RwLock::new(Arc::new(read_certified_key(cert, key)?));
        Ok(Self { cert: cert.into(), key: key.into(), current })
    }

    /// Reads the files again; on any error the old certificate stays.
    pub fn reload(&self) -> Result<(), Error> {
        let new = read_certified_key(&self.cert, &self.key)?;
        *self.current.write().expect("certificate lock") = Arc::new(new);
        Ok(())
    }
}

impl ResolvesServerCert for FileCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().expect("certificate lock").clone())
    }
}

/// The certificates in a PEM file (at least one).
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let fail = |reason: String| Error::TlsCert { path: path.into(), reason };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(pem_error(e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(pem_error(e)))?;
    if certs.is_empty() {
        return Err(fail("no PEM certificate (-----BEGIN CERTIFICATE-----) in the file".into()));
    }
    Ok(certs)
}

/// A chain and its key, checked to belong together.
fn read_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, Error> {
    let chain = read_certs(cert)?;
    let fail = |reason: String| Error::TlsKey { path: key.into(), reason };
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| fail(pem_error(e)))?;
    CertifiedKey::from_der(chain, der, &provider()).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => fail(format!("does not belong to the certificate in {}", cert.display())),
        e => fail(format!("unusable private key: {e}")),
    })
}

/// A PEM error for the operator (never the file's content).
fn pem_error(e: rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::Io(e) => e.to_string(),
        E::NoItemsFound => "no PEM item of the expected kind in the file".into(),
        E::MissingSectionEnd { .. } | E::IllegalSectionStart { .. } => "malformed PEM".into(),
        E::Base64Decode(_) => "malformed PEM (bad base64)".into(),
        _ => "unreadable PEM".into(),
    }
}

/// Accepts TCP connections and runs each TLS handshake in a task of its
/// own (so a slow client holds up no one), with a time limit; completed
/// connections go to `tx`. ACME validation connections are answered here
/// and closed.
async fn accept_loop(
    tcp: TcpListener,
    config: Arc<ServerConfig>,
    challenge: Option<Arc<ServerConfig>>,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = handshakes.clone().acquire_owned().await else { return };
        let (stream, peer) = match tcp.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait, as axum does.
                tracing::error!("accept: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // No Nagle delay (see Server::serve).
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY: {e}");
        }
        let (config, challenge, tx) = (config.clone(), challenge.clone(), tx.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_LIMIT, handshake(stream, config, challenge)).await {
                Ok(Ok(Some(tls))) => {
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Ok(None)) => tracing::info!("ACME: answered a TLS-ALPN-01 validation"),
                Ok(Err(e)) => tracing::debug!("TLS handshake failed: {e}"),
                Err(_) => tracing::debug!("TLS handshake timed out"),
            }
            drop(permit);
        });
    }
}

/// One handshake: `None` when it was an ACME validation (answered).
async fn handshake(
    stream: TcpStream,
    config: Arc<ServerConfig>,
    challenge: Option<Arc<ServerConfig>>,
) -> std::io::Result<Option<TlsStream<TcpStream>>> {
    let start = LazyConfigAcceptor::new(Acceptor::default(), stream).await?;
    if let Some(challenge) = challenge
        && rustls_acme::is_tls_alpn_challenge(&start.client_hello())
    {
        let mut tls = start.into_stream(challenge).await?;
        tls.shutdown().await?;
        return Ok(None);
    }
    Ok(Some(start.into_stream(config).await?))
}

/// What `axum::serve` accepts from: TLS streams whose handshake is done.
pub(crate) struct TlsListener {
    /// Completed handshakes, from `accept_loop`.
    incoming: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    /// The address listened on.
    local: SocketAddr,
    /// The accept loop, stopped when the listener is dropped.
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.recv().await {
            Some(accepted) => accepted,
            // The accept loop ended (it only does when aborted): accept
            // nothing more; shutdown ends `serve`.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()]).unwrap().self_signed(&key).unwrap();
        let (c, k) = (dir.join(format!("{name}.crt")), dir.join(format!("{name}.key")));
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    fn leaf(f: &FileCert) -> Vec<u8> {
        f.current.read().unwrap().cert[0].to_vec()
    }

    #[test]
    fn a_bad_file_on_reload_keeps_the_old_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (a_cert, a_key) = write_pair(dir.path(), "a");
        let a = std::fs::read(&a_cert).unwrap();
        let files = FileCert::load(&a_cert, &a_key).unwrap();
        let before = leaf(&files);
        assert_eq!(CertificateDer::from_pem_slice(&a).unwrap().to_vec(), before);

        std::fs::write(&a_cert, "not a certificate").unwrap();
        let e = files.reload().unwrap_err();
        assert!(matches!(e, Error::TlsCert { .. }), "{e}");
        assert_eq!(leaf(&files), before);

        // A certificate with another certificate's key: refused, old one kept.
        let (b_cert, _) = write_pair(dir.path(), "b");
        std::fs::copy(&b_cert, &a_cert).unwrap();
        let e = files.reload().unwrap_err();
        assert!(e.to_string().contains("does not belong to the certificate"), "{e}");
        assert_eq!(leaf(&files), before);
    }

    #[test]
    fn load_errors_name_the_file_and_not_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = write_pair(dir.path(), "a");
        let missing = dir.path().join("missing.key");
        let e = FileCert::load(&cert, &missing).unwrap_err().to_string();
        assert!(e.starts_with("TLS key ") && e.contains("missing.key"), "{e}");
        let e = FileCert::load(&key, &key).unwrap_err().to_string();
        assert!(e.contains("a.key") && !e.contains("PRIVATE KEY"), "{e}");
    }
}
