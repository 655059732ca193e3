//! TLS for `https://` (`wss://`) servers: rustls with the ring provider,
//! trusting the system's root certificates (rustls-native-certs: the same
//! store curl and the browser use, so a CA the administrator installed is
//! trusted too, and root updates come with the OS) plus the `--ca FILE`
//! the user names (a private CA, a test CA).
//!
//! The roots are read when a `wss://` connection is first made, so `--ca`
//! costs nothing for `http://` servers.

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use rustls::{ClientConfig, RootCertStore};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// `--ca` / `TETHER_CA`, set once by `main` before any command runs.
static EXTRA_CA: OnceLock<Option<PathBuf>> = OnceLock::new();

/// Remembers `--ca` for the connections this process makes.
pub fn set_extra_ca(path: Option<PathBuf>) {
    let _ = EXTRA_CA.set(path);
}

/// The extra CA file, if the user gave one.
pub fn extra_ca() -> Option<&'static Path> {
    EXTRA_CA.get().and_then(|p| p.as_deref())
}

/// The certificates `wss://` and `https://` trust: the system's roots and `--ca`.
pub fn root_certificates() -> Result<Vec<CertificateDer<'static>>, String> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let mut certs = native.certs;
    let (system, _) = roots.add_parsable_certificates(certs.clone());
    if let Some(path) = extra_ca() {
        let extra = read_ca(path)?;
        let (added, _) = roots.add_parsable_certificates(extra.clone());
        if added == 0 {
            return Err(format!("--ca {}: no usable CA certificate in the file", path.display()));
        }
        certs.extend(extra);
    } else if system == 0 {
        return Err("no trusted root certificates found on this system (install ca-certificates), \
             or name the server's CA with --ca FILE"
            .into());
    }
    Ok(certs)
}

/// The client configuration for `wss://`: the system's roots and `--ca`.
pub fn client_config() -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(root_certificates()?);
    let config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The certificates of a PEM file.
fn read_ca(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let fail = |e: rustls::pki_types::pem::Error| format!("--ca {}: {}", path.display(), pem_error(e));
    let certs = CertificateDer::pem_file_iter(path).map_err(fail)?.collect::<Result<Vec<_>, _>>().map_err(fail)?;
    if certs.is_empty() {
        return Err(format!("--ca {}: no PEM certificate (-----BEGIN CERTIFICATE-----) in the file", path.display()));
    }
    Ok(certs)
}

fn pem_error(e: rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::Io(e) => e.to_string(),
        E::Base64Decode(_) => "malformed PEM (bad base64)".into(),
        _ => "malformed PEM".into(),
    }
}

/// What to tell the user when a connection failed in TLS, if it did:
/// the certificate problem in words, with the way out.
pub fn explain(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let rustls_error = std::iter::successors(Some(e), |e| e.source()).find_map(|e| {
        e.downcast_ref::<rustls::Error>().or_else(|| {
            // tokio-rustls hands rustls' error inside an io::Error.
            e.downcast_ref::<std::io::Error>()?.get_ref()?.downcast_ref::<rustls::Error>()
        })
    })?;
    use rustls::CertificateError as C;
    let hint = match extra_ca() {
        Some(ca) => format!("it is not signed by a CA in {} or the system's store", ca.display()),
        None => "if it is signed by a private CA, name that CA with --ca FILE (or TETHER_CA)".into(),
    };
    Some(match rustls_error {
        rustls::Error::InvalidCertificate(C::UnknownIssuer | C::BadSignature) => {
            format!("the server's TLS certificate is not trusted: {hint}")
        }
        rustls::Error::InvalidCertificate(C::NotValidForName | C::NotValidForNameContext { .. }) => {
            "the server's TLS certificate is for another name: check the server address".into()
        }
        rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. }) => {
            "the server's TLS certificate has expired".into()
        }
        rustls::Error::InvalidCertificate(other) => format!("the server's TLS certificate is refused ({other:?})"),
        other => format!("TLS failed: {other}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_issuer_inside_an_io_error_names_the_ca_option() {
        let inner = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, inner);
        let e = tokio_tungstenite::tungstenite::Error::Io(io);
        let text = explain(&e).expect("a TLS problem");
        assert!(text.contains("not trusted") && text.contains("--ca FILE"), "{text}");
        let other = tokio_tungstenite::tungstenite::Error::Io(std::io::ErrorKind::ConnectionRefused.into());
        assert_eq!(explain(&other), None);
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "hello").unwrap();
        let e = read_ca(&path).unwrap_err();
        assert!(e.contains("ca.pem") && e.contains("no PEM certificate"), "{e}");
        assert!(read_ca(&dir.path().join("none.pem")).unwrap_err().contains("none.pem"));
    }
}
