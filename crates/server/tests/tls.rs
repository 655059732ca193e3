//! The real `tether-server` binary serving TLS from certificate files:
//! HTTPS and WSS on the listen port, `--http-redirect`, the certificate
//! reloaded on SIGHUP (new connections get the new one), a broken file on
//! reload keeping the old one. (ACME against pebble is in crates/cli/tests/acme.rs, with the
//! CLI.)

use rcgen::{BasicConstraints, Certificate, CertificateParams, IsCa, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A CA that signs leaf certificates for `localhost`.
struct Ca {
    cert: Certificate,
    key: KeyPair,
    der: CertificateDer<'static>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        let der = cert.der().clone();
        Ca { cert, key, der }
    }

    /// A leaf for localhost and 127.0.0.1: (certificate PEM, key PEM, DER).
    fn leaf(&self) -> (String, String, Vec<u8>) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        params.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        (cert.pem(), key.serialize_pem(), cert.der().to_vec())
    }
}

/// A `tether-server` process whose log is collected; killed when dropped.
struct Server {
    child: Child,
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(dir: &Path, args: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_tether-server"))
            .args(["--listen", "127.0.0.1:0", "--data"])
            .arg(dir.join("data"))
            .args(args)
            .env("TETHER_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let mut server = Server { child, addr: String::new(), log };
        let line = server.wait_for_log("tether-server listening");
        server.addr = line.split("addr=").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
        server
    }

    /// Waits (10 s at most) for a log line containing `text`, returns it.
    fn wait_for_log(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(line) = self.log.lock().unwrap().iter().find(|l| l.contains(text)) {
                return line.clone();
            }
            assert!(Instant::now() < deadline, "no log line with {text:?}; the log:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    fn port(&self) -> &str {
        self.addr.rsplit(':').next().unwrap()
    }

    fn sighup(&self) {
        let pid = rustix::process::Pid::from_raw(self.child.id() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::HUP).unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A rustls client trusting only `ca`.
fn client_config(ca: &CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// Completes a TLS handshake with the server as `localhost` and returns
/// the leaf certificate it presented.
fn presented_leaf(server: &Server, ca: &CertificateDer<'static>) -> Vec<u8> {
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(client_config(ca), name).unwrap();
    let mut sock = std::net::TcpStream::connect(&server.addr).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).expect("TLS handshake");
    }
    conn.peer_certificates().expect("a certificate")[0].to_vec()
}

/// An HTTPS agent trusting only `ca`.
fn https(ca: &CertificateDer<'static>) -> ureq::Agent {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let roots = RootCerts::new_with_certs(&[Certificate::from_der(ca.as_ref()).to_owned()]);
    ureq::Agent::config_builder()
        .tls_config(TlsConfig::builder().root_certs(roots).build())
        .http_status_as_error(false)
        .build()
        .new_agent()
}

#[test]
fn https_and_wss_from_certificate_files_reloaded_on_sighup() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("tether test CA");
    let (cert_a, key_a, der_a) = ca.leaf();
    let (cert_b, key_b, der_b) = ca.leaf();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, &cert_a).unwrap();
    std::fs::write(&key, &key_a).unwrap();
    let server = Server::start(
        dir.path(),
        &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap(), "--http-redirect", "127.0.0.1:0"],
    );
    assert!(server.wait_for_log("tether-server listening").contains("scheme=https"));

    // HTTPS: /healthz answers over TLS, trusting only the test CA.
    let url = format!("https://localhost:{}/healthz", server.port());
    let mut resp = https(&ca.der).get(&url).call().expect("HTTPS GET /healthz");
    assert_eq!(resp.status(), 200);
    let body = resp.body_mut().read_to_string().unwrap();
    assert!(body.contains("\"status\":\"ok\"") && body.contains("fingerprint"), "{body}");
    assert_eq!(presented_leaf(&server, &ca.der), der_a);

    // --http-redirect: plain HTTP there is sent to the same path over HTTPS.
    let line = server.wait_for_log("HTTP redirect to HTTPS listening");
    let redirect_port =
        line.split("addr=").nth(1).unwrap().split_whitespace().next().unwrap().rsplit(':').next().unwrap();
    let no_follow = ureq::Agent::config_builder().max_redirects(0).http_status_as_error(false).build().new_agent();
    let resp = no_follow.get(&format!("http://localhost:{redirect_port}/healthz?probe=1")).call().unwrap();
    assert_eq!(resp.status(), 308);
    let location = resp.headers().get("location").unwrap().to_str().unwrap();
    assert_eq!(location, format!("https://localhost:{}/healthz?probe=1", server.port()));
    let mut followed = https(&ca.der).get(&format!("http://localhost:{redirect_port}/healthz")).call().unwrap();
    assert_eq!(followed.status(), 200);
    assert!(followed.body_mut().read_to_string().unwrap().contains("\"status\":\"ok\""));

    // Plain HTTP on the TLS port gets no answer.
    let plain = ureq::get(&format!("http://{}/healthz", server.addr)).call();
    assert!(plain.is_err(), "plain HTTP must not be served on the TLS port: {plain:?}");

    // WSS: the WebSocket upgrade of /v1/ws works over TLS.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let connector = tokio_tungstenite::Connector::Rustls(client_config(&ca.der));
        let ws_url = format!("wss://localhost:{}/v1/ws", server.port());
        let (_ws, resp) = tokio_tungstenite::connect_async_tls_with_config(ws_url, None, false, Some(connector))
            .await
            .expect("wss:// upgrade");
        assert_eq!(resp.status(), 101);
    });

    // Certificate B written (key first, then certificate), then SIGHUP:
    // new connections see B.
    std::fs::write(&key, &key_b).unwrap();
    std::fs::write(&cert, &cert_b).unwrap();
    server.sighup();
    server.wait_for_log("SIGHUP: TLS certificate reloaded");
    assert_eq!(presented_leaf(&server, &ca.der), der_b);

    // A broken file on reload: an error in the log, B stays.
    std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n").unwrap();
    server.sighup();
    let line = server.wait_for_log("not reloaded");
    assert!(line.contains("ERROR") && line.contains("cert.pem"), "{line}");
    assert_eq!(presented_leaf(&server, &ca.der), der_b);
    let mut resp = https(&ca.der).get(&url).call().expect("still serving");
    assert_eq!(resp.status(), 200);
    let _ = resp.body_mut().read_to_string();

    // A certificate with the other's key: refused on reload too.
    std::fs::write(&cert, &cert_a).unwrap();
    server.sighup();
    server.wait_for_log("does not belong to the certificate");
    assert_eq!(presented_leaf(&server, &ca.der), der_b);

    let log = server.log_text();
    assert!(!log.contains("PRIVATE KEY"), "no key material in the log:\n{log}");
}

#[test]
fn bad_tls_settings_stop_the_server_at_start_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tether-server"))
            .args(["--listen", "127.0.0.1:0", "--data"])
            .arg(dir.path().join("data"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} must not start");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    let err = run(&["--tls-cert", missing, "--tls-key", missing]);
    assert!(err.contains("tether-server: TLS certificate") && err.contains("missing.pem"), "{err}");
    let err = run(&["--tls-cert", missing]);
    assert!(err.contains("needs its key (--tls-key"), "{err}");
    let err = run(&["--tls-cert", missing, "--tls-key", missing, "--acme-domain", "chat.example.org"]);
    assert!(err.contains("exclude each other"), "{err}");
    let err = run(&["--acme-email", "me@example.org"]);
    assert!(err.contains("need --acme-domain"), "{err}");
    let err = run(&["--http-redirect", "127.0.0.1:0"]);
    assert!(err.contains("needs TLS"), "{err}");
}
