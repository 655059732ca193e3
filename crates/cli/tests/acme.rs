//! A real ACME exchange: pebble (Let's Encrypt's test CA, installed by
//! `cargo xtask setup`) validates `localhost` over TLS-ALPN-01 on the port
//! tether-server listens on, tether-server gets its certificate, and then
//! HTTPS and the real `tether` CLI over wss:// trust only pebble's root.
//! pebble validates for real (no PEBBLE_VA_ALWAYS_VALID).

mod common;

use common::*;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, SanType};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// pebble's binary, or a failure that says how to install it.
fn pebble_bin() -> PathBuf {
    let found = std::env::var_os("PATH")
        .and_then(|paths| std::env::split_paths(&paths).map(|p| p.join("pebble")).find(|p| p.is_file()));
    found.unwrap_or_else(|| {
        panic!("pebble (Let's Encrypt's test ACME server) is not installed: run `cargo xtask setup` (it installs the Debian package `pebble`)")
    })
}

/// A free TCP port on 127.0.0.1 (free when asked; used right away).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A process whose stderr (and stdout) lines are collected; killed on drop.
struct Logged {
    child: KillOnDrop,
    log: Arc<Mutex<Vec<String>>>,
}

impl Logged {
    fn spawn(mut cmd: Command) -> Logged {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).stdin(Stdio::null()).spawn().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let sink = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    sink.lock().unwrap().push(line);
                }
            });
        }
        Logged { child: KillOnDrop(child), log }
    }

    /// Waits for a line containing `text`; fails with the log on timeout
    /// or if the process exits.
    fn wait_for(&mut self, text: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(line) = self.log.lock().unwrap().iter().find(|l| l.contains(text)) {
                return line.clone();
            }
            if let Ok(Some(status)) = self.child.0.try_wait() {
                panic!("exited ({status}) before logging {text:?}:\n{}", self.text());
            }
            assert!(Instant::now() < deadline, "no line with {text:?} within {limit:?}:\n{}", self.text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

/// An HTTPS agent trusting only the certificates in `ca_pem`.
fn https(ca_pem: &[u8]) -> ureq::Agent {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let cert = Certificate::from_pem(ca_pem).expect("a PEM certificate").to_owned();
    ureq::Agent::config_builder()
        .tls_config(TlsConfig::builder().root_certs(RootCerts::new_with_certs(&[cert])).build())
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent()
}

/// pebble's own HTTPS certificate (for its API and management ports),
/// from a CA made here: (CA PEM, certificate PEM, key PEM).
fn pebble_https_cert() -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name.push(rcgen::DnType::CommonName, "pebble API test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf.subject_alt_names.push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

/// Starts pebble with its config in `dir`; validation connects to
/// `tls_port`. Returns the process and its (API, management) ports.
fn start_pebble(dir: &Path, tls_port: u16) -> (Logged, u16, u16, Vec<u8>) {
    let bin = pebble_bin();
    let (ca, cert, key) = pebble_https_cert();
    std::fs::write(dir.join("pebble-api-ca.pem"), &ca).unwrap();
    std::fs::write(dir.join("pebble-cert.pem"), &cert).unwrap();
    std::fs::write(dir.join("pebble-key.pem"), &key).unwrap();
    let (api, management, http) = (free_port(), free_port(), free_port());
    let config = serde_json::json!({
        "pebble": {
            "listenAddress": format!("127.0.0.1:{api}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": dir.join("pebble-cert.pem"),
            "privateKey": dir.join("pebble-key.pem"),
            "httpPort": http,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }
    });
    std::fs::write(dir.join("pebble-config.json"), config.to_string()).unwrap();
    let mut cmd = Command::new(bin);
    cmd.arg("-config")
        .arg(dir.join("pebble-config.json"))
        .current_dir(dir)
        // No random sleeps before validating; validation itself is real.
        .env("PEBBLE_VA_NOSLEEP", "1")
        // pebble rejects 5 % of valid nonces by default to test clients'
        // retries; the ACME client retries, but the test should not wait.
        .env("PEBBLE_WFE_NONCEREJECT", "0");
    let mut pebble = Logged::spawn(cmd);
    pebble.wait_for("Listening on", Duration::from_secs(20));
    // The directory answers over HTTPS with the certificate made above.
    let agent = https(ca.as_bytes());
    let deadline = Instant::now() + Duration::from_secs(20);
    while agent.get(&format!("https://127.0.0.1:{api}/dir")).call().is_err() {
        assert!(Instant::now() < deadline, "pebble's directory did not answer:\n{}", pebble.text());
        std::thread::sleep(Duration::from_millis(100));
    }
    (pebble, api, management, ca.into_bytes())
}

/// tether-server on `tls_port` (the port pebble validates), asking pebble's
/// directory on `api` for `localhost`, its data and cache under `dir`.
fn acme_server(dir: &Path, tls_port: u16, api: u16) -> Command {
    let mut cmd = Command::new(server_bin());
    cmd.args(["--listen", &format!("127.0.0.1:{tls_port}"), "--data"])
        .arg(dir.join("server"))
        .args(["--acme-domain", "localhost", "--acme-email", "ops@tether.test"])
        .args(["--acme-directory", &format!("https://127.0.0.1:{api}/dir"), "--acme-ca"])
        .arg(dir.join("pebble-api-ca.pem"))
        .env("TETHER_LOG", "info");
    cmd
}

#[test]
fn a_certificate_from_pebble_over_tls_alpn_then_https_and_the_cli_over_wss() {
    let dir = tempfile::tempdir().unwrap();
    let tls_port = free_port();
    let (pebble, api, management, _api_ca) = start_pebble(dir.path(), tls_port);

    // tether-server on the port pebble validates, asking for `localhost`.
    let mut server = Logged::spawn(acme_server(dir.path(), tls_port, api));
    let listening = server.wait_for("tether-server listening", Duration::from_secs(30));
    assert!(listening.contains("scheme=https"), "{listening}");
    let obtained = server.wait_for("ACME: certificate obtained", Duration::from_secs(90));
    assert!(obtained.contains("localhost"), "{obtained}");
    let log = server.text();
    eprintln!("tether-server's log until the certificate:\n{log}");
    assert!(log.contains("ACME: answered a TLS-ALPN-01 validation"), "pebble validated over TLS-ALPN-01:\n{log}");
    assert!(!log.contains("PRIVATE KEY") && !log.contains("ERROR"), "{log}");

    // pebble's issuing root, from its management interface.
    let root = https(&std::fs::read(dir.path().join("pebble-api-ca.pem")).unwrap())
        .get(&format!("https://127.0.0.1:{management}/roots/0"))
        .call()
        .expect("pebble's root")
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(root.contains("BEGIN CERTIFICATE"), "{root}");
    let root_file = dir.path().join("pebble-root.pem");
    std::fs::write(&root_file, &root).unwrap();

    // HTTPS to the server, trusting only pebble's root.
    let base = format!("https://localhost:{tls_port}");
    let mut resp = https(root.as_bytes()).get(&format!("{base}/healthz")).call().expect("HTTPS GET /healthz");
    assert_eq!(resp.status(), 200);
    let body = resp.body_mut().read_to_string().unwrap();
    assert!(body.contains("\"status\":\"ok\""), "{body}");
    // The phone web app, from the same binary over the same certificate
    // (`cargo xtask test` builds dist/app before the server embeds it).
    let mut resp = https(root.as_bytes()).get(&format!("{base}/")).call().expect("HTTPS GET /");
    assert_eq!(resp.status(), 200);
    let page = resp.body_mut().read_to_string().unwrap();
    assert!(
        page.contains("manifest.webmanifest"),
        "the server serves the web app at / (if it says it was not built: `cargo xtask build --app` first): {page}"
    );
    let mut resp = https(root.as_bytes()).get(&format!("{base}/manifest.webmanifest")).call().expect("HTTPS GET the manifest");
    assert_eq!(resp.status(), 200);
    assert!(resp.body_mut().read_to_string().unwrap().contains("\"start_url\""));
    // … and not trusting pebble's API CA alone (it did not sign this one).
    let api_ca = std::fs::read(dir.path().join("pebble-api-ca.pem")).unwrap();
    assert!(https(&api_ca).get(&format!("{base}/healthz")).call().is_err());

    // The real CLI: without --ca it refuses the server and says why …
    let (alice, bob) = (dir.path().join("alice"), dir.path().join("bob"));
    let (success, _, err) = tether(&alice, &["register", "alice", "--server", &base]);
    assert!(!success, "an untrusted certificate must be refused");
    assert!(err.contains("not trusted") && err.contains("--ca FILE"), "{err}");
    // … with --ca it registers, over wss://.
    let ca = root_file.to_str().unwrap();
    let out = ok(&alice, &["--ca", ca, "register", "alice", "--server", &base]);
    assert!(out.contains("Registered alice on https://localhost:"), "{out}");
    ok(&bob, &["--ca", ca, "register", "bob", "--server", &base]);
    ok(&bob, &["--ca", ca, "contacts", "add", "alice"]);
    ok(&alice, &["--ca", ca, "contacts", "add", "bob"]);
    ok(&alice, &["--ca", ca, "send", "bob", "hello over wss 5d2a"]);
    // TETHER_CA works as well as --ca.
    let read =
        Command::new(TETHER).arg("--data").arg(&bob).args(["read", "alice"]).env("TETHER_CA", ca).output().unwrap();
    let out = String::from_utf8_lossy(&read.stdout);
    assert!(read.status.success(), "{out}\n{}", String::from_utf8_lossy(&read.stderr));
    assert!(out.contains("hello over wss 5d2a"), "{out}");

    // A restart serves the cached certificate without a new order.
    drop(server);
    let mut server = Logged::spawn(acme_server(dir.path(), tls_port, api));
    server.wait_for("ACME: serving the cached certificate", Duration::from_secs(30));
    let out = ok(&bob, &["--ca", ca, "read", "alice"]);
    assert!(out.contains("hello over wss 5d2a"), "{out}");
    assert!(!server.text().contains("certificate obtained"), "{}", server.text());

    // Validation is real: a second server asking for `localhost` on another
    // port cannot answer pebble's challenge (pebble connects to port
    // `tls_port`, where the first server has no challenge for it), so its
    // order fails, and it says so.
    let mut cmd = Command::new(server_bin());
    cmd.args(["--listen", "127.0.0.1:0", "--data"])
        .arg(dir.path().join("server2"))
        .args(["--acme-domain", "localhost"])
        .args(["--acme-directory", &format!("https://127.0.0.1:{api}/dir"), "--acme-ca"])
        .arg(dir.path().join("pebble-api-ca.pem"))
        .env("TETHER_LOG", "info");
    let mut second = Logged::spawn(cmd);
    let failed = second.wait_for("ACME: ordering a certificate failed", Duration::from_secs(60));
    eprintln!("the second server's failed order: {failed}");
    assert!(failed.contains("the CA could not validate localhost"), "{failed}");
    assert!(failed.contains("ERROR") && failed.contains("localhost") && !failed.contains("PRIVATE KEY"), "{failed}");
    assert!(!second.text().contains("certificate obtained"), "{}", second.text());
    drop(pebble);
}
