//! Server settings: defaults, a TOML file (`--config FILE`), environment
//! variables and flags (see main.rs), in that order of precedence from last
//! to first.

use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Who may register an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Registration {
    /// Anyone who can reach the server (the default on loopback only).
    Open,
    /// Only with a token from `tether-server token create`.
    Token,
}

/// A database URL (`--database-url`, `database_url`). It may hold a
/// password, so it is never printed whole: `Debug` and errors show it
/// without credentials or query ([`DatabaseUrl::redacted`]).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(pub String);

impl DatabaseUrl {
    /// `scheme://host:port/database`: the URL without its user, password
    /// and query (where a password may also be given).
    pub fn redacted(&self) -> String {
        let (scheme, rest) = self.0.split_once("://").unwrap_or(("", self.0.as_str()));
        let rest = rest.split(['?', '#']).next().unwrap_or_default();
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let host = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
        format!("{scheme}://{host}{path}")
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({:?})", self.redacted())
    }
}

/// Settings of the blob object store (`blob_options`): object_store's
/// S3 keys (`aws_endpoint`, `aws_region`, `aws_access_key_id`,
/// `aws_secret_access_key`, `aws_allow_http`, …), beside and over the
/// `AWS_*` environment variables. They may hold a secret, so `Debug`
/// shows the keys only.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct BlobOptions(pub std::collections::BTreeMap<String, String>);

impl std::fmt::Debug for BlobOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// Where the relay's state is kept ([`Config::backend`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend<'a> {
    /// SQLite, `tether.db` in this directory (the default).
    Sqlite(&'a std::path::Path),
    /// PostgreSQL at this URL.
    Postgres(&'a str),
}

/// Everything an operator can tune.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: String,
    /// Data directory: `tether.db` (unless `database_url` is set),
    /// `server.key` and, by default, the blob directory.
    pub data: PathBuf,
    /// Keep the relay's state in PostgreSQL (`postgres://…` or
    /// `postgresql://…`) instead of SQLite in `data`. Unset: SQLite.
    pub database_url: Option<DatabaseUrl>,
    /// Registration policy; `None` means open on loopback, token elsewhere.
    pub registration: Option<Registration>,
    /// Most companions (linked devices besides the primary) per account.
    pub max_companions: u32,
    /// Most accounts one send's fan-out may address: the largest group
    /// (docs/protocol.md §15). A fan-out also has at most 4 096 devices.
    pub max_group_size: u32,
    /// Companions are logged out when the primary is inactive this long.
    pub primary_inactive_days: u64,
    /// A companion inactive this long is removed.
    pub companion_inactive_days: u64,
    /// Undelivered copies are deleted after this long.
    pub envelope_ttl_days: u64,
    /// Largest WebSocket message accepted (a Noise message is at most 65535).
    pub max_frame_bytes: usize,
    /// Frames per second a connection may send on average …
    pub rate_per_sec: u32,
    /// … and in a burst.
    pub rate_burst: u32,
    /// Time allowed to finish the Noise handshake.
    #[serde(with = "secs")]
    pub handshake_timeout: Duration,
    /// A connection that sends nothing this long is closed (clients ping every 20 s).
    #[serde(with = "secs")]
    pub idle_timeout: Duration,
    /// Most simultaneous connections.
    pub max_connections: usize,
    /// How often the inactivity and expiry rules run.
    #[serde(with = "secs")]
    pub sweep_interval: Duration,
    /// Link refs handed out per request; the first lives 60 s, each later one 20 s.
    pub link_refs: u32,
    /// How long a pairing-code offer waits for the primary.
    #[serde(with = "secs")]
    pub pairing_ttl: Duration,
    /// Tell a device to upload one-time keys when it has fewer than this.
    pub prekeys_low: u32,
    /// Behind a reverse proxy: the request header in which the proxy puts
    /// the client's address (`x-forwarded-for`: its last entry, the one the
    /// proxy appended; or `x-real-ip`). Unset: the TCP peer's address. Set
    /// it only when every connection comes through a proxy that sets it.
    pub client_ip_header: Option<String>,
    /// Most entries one source (an IPv4 address or an IPv6 /64) may hold in
    /// each rendezvous table: ref batches, pairing slots, held approvals.
    pub rendezvous_per_source: u32,
    /// Most guest keys holding link refs at once (one batch each).
    pub max_ref_batches: usize,
    /// Most pairing slots at once (of 32 768 slot numbers).
    pub max_pairing_slots: usize,
    /// Most link approvals held for offline companions at once.
    pub max_held_approvals: usize,
    /// Most undelivered envelopes stored per device …
    pub queue_max_envelopes: u64,
    /// … and most bytes of their ciphertext.
    pub queue_max_bytes: u64,
    /// One-time keys one account may claim of one device per hour.
    pub claims_per_hour: u32,
    /// Device-list lookups of other accounts per account and minute …
    pub lookups_per_minute: u32,
    /// … and in a burst.
    pub lookup_burst: u32,
    /// TLS from files: the certificate chain (PEM, leaf first); with
    /// `tls_key`. Reloaded on SIGHUP.
    pub tls_cert: Option<PathBuf>,
    /// TLS from files: the certificate's private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// TLS over ACME: the names to get a certificate for (each must reach
    /// this server's listen port on 443). Empty: no ACME.
    pub acme_domains: Vec<String>,
    /// ACME account contact (the CA's expiry notices).
    pub acme_email: Option<String>,
    /// ACME directory URL; unset: Let's Encrypt production.
    pub acme_directory: Option<String>,
    /// Where the ACME account and certificate are kept; unset: `<data>/acme`.
    pub acme_cache: Option<PathBuf>,
    /// Extra CA (PEM) trusted for the ACME directory's own HTTPS, e.g. a
    /// test CA's.
    pub acme_ca: Option<PathBuf>,
    /// With TLS: a plain-HTTP address whose every request is redirected
    /// to HTTPS (e.g. `0.0.0.0:80`). Unset: none.
    pub http_redirect: Option<String>,
    /// Largest file (plaintext bytes) a blob may hold: a blob longer than
    /// `media::ciphertext_len` of it is refused with `blob_too_large`.
    pub max_file_size: u64,
    /// Most bytes of blobs, unfinished and whole, one account may hold.
    pub blob_quota: u64,
    /// Where blob files are kept; unset: `<data>/blobs`.
    pub blob_dir: Option<PathBuf>,
    /// Keeps blobs in an S3-compatible object store instead of
    /// `blob_dir`: `s3://bucket[/prefix]`, with the endpoint, region and
    /// credentials from the `AWS_*` environment variables.
    pub blob_url: Option<String>,
    /// Settings of that object store (TOML table `[blob_options]`).
    pub blob_options: BlobOptions,
    /// NATS server (`nats://host:4222`) through which several nodes wake
    /// each other's devices; unset: this node is alone.
    pub nats_url: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:7780".into(),
            data: "./data".into(),
            database_url: None,
            registration: None,
            max_companions: 4,
            max_group_size: 1024,
            primary_inactive_days: 14,
            companion_inactive_days: 30,
            envelope_ttl_days: 30,
            max_frame_bytes: tether_proto::noise::MAX_NOISE_MESSAGE,
            rate_per_sec: 200,
            rate_burst: 400,
            handshake_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(90),
            max_connections: 200_000,
            sweep_interval: Duration::from_secs(3600),
            link_refs: 6,
            pairing_ttl: Duration::from_secs(180),
            prekeys_low: 10,
            client_ip_header: None,
            rendezvous_per_source: 32,
            max_ref_batches: 10_000,
            max_pairing_slots: 4_096,
            max_held_approvals: 10_000,
            queue_max_envelopes: 10_000,
            queue_max_bytes: 100 * 1024 * 1024,
            claims_per_hour: 20,
            lookups_per_minute: 30,
            lookup_burst: 60,
            tls_cert: None,
            tls_key: None,
            acme_domains: Vec::new(),
            acme_email: None,
            acme_directory: None,
            acme_cache: None,
            acme_ca: None,
            http_redirect: None,
            max_file_size: tether_proto::media::DEFAULT_MAX_SIZE,
            blob_quota: 1024 * 1024 * 1024,
            blob_dir: None,
            blob_url: None,
            blob_options: BlobOptions::default(),
            nats_url: None,
        }
    }
}

impl Config {
    /// Reads a TOML file over the defaults.
    pub fn from_file(path: &std::path::Path) -> Result<Self, crate::Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| crate::Error::Config(format!("{}: {source}", path.display())))?;
        toml::from_str(&text).map_err(|e| crate::Error::Config(format!("{}: {e}", path.display())))
    }

    /// Where the TLS certificate comes from; `None`: plain HTTP. Refuses
    /// contradictory settings (files and ACME, a certificate without its
    /// key, ACME options without a domain).
    pub fn tls(&self) -> Result<Option<crate::tls::TlsSource>, crate::Error> {
        use crate::tls::{AcmeSettings, LETS_ENCRYPT, TlsSource};
        let bad = |m: &str| Err(crate::Error::Config(m.into()));
        let acme_extras = self.acme_email.is_some()
            || self.acme_directory.is_some()
            || self.acme_cache.is_some()
            || self.acme_ca.is_some();
        let files = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsSource::Files { cert: cert.clone(), key: key.clone() }),
            (Some(_), None) => {
                return bad("a TLS certificate (--tls-cert, tls_cert) needs its key (--tls-key, tls_key)");
            }
            (None, Some(_)) => {
                return bad("a TLS key (--tls-key, tls_key) needs its certificate (--tls-cert, tls_cert)");
            }
            (None, None) => None,
        };
        if self.acme_domains.is_empty() {
            if acme_extras {
                return bad(
                    "--acme-email, --acme-directory, --acme-cache and --acme-ca need --acme-domain (acme_domains)",
                );
            }
            if files.is_none() && self.http_redirect.is_some() {
                return bad("--http-redirect (http_redirect) needs TLS: --tls-cert/--tls-key or --acme-domain");
            }
            return Ok(files);
        }
        if files.is_some() {
            return bad(
                "certificate files (--tls-cert/--tls-key) and ACME (--acme-domain) exclude each other: choose one",
            );
        }
        if let Some(d) = self.acme_domains.iter().find(|d| d.is_empty() || d.contains(['/', ':', ' '])) {
            return Err(crate::Error::Config(format!("--acme-domain {d:?} is not a host name")));
        }
        Ok(Some(TlsSource::Acme(AcmeSettings {
            domains: self.acme_domains.clone(),
            email: self.acme_email.clone(),
            directory: self.acme_directory.clone().unwrap_or_else(|| LETS_ENCRYPT.into()),
            cache: self.acme_cache.clone().unwrap_or_else(|| self.data.join("acme")),
            ca: self.acme_ca.clone(),
        })))
    }

    /// The store in force: PostgreSQL if `database_url` is set (and is a
    /// `postgres://` or `postgresql://` URL; anything else is refused),
    /// else SQLite in the data directory.
    pub fn backend(&self) -> Result<Backend<'_>, crate::Error> {
        let Some(url) = &self.database_url else {
            return Ok(Backend::Sqlite(&self.data));
        };
        let scheme = url.0.split_once("://").map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("postgres" | "postgresql") => Ok(Backend::Postgres(&url.0)),
            // Only the scheme: the rest may hold a password.
            other => Err(crate::Error::Config(format!(
                "--database-url (database_url) must be a postgres:// or postgresql:// URL, not {}; \
                 without it the server keeps SQLite in its data directory",
                other.map_or("one without a scheme".into(), |s| format!("{s}://…"))
            ))),
        }
    }

    /// The blob directory in force.
    pub fn blob_dir(&self) -> PathBuf {
        self.blob_dir.clone().unwrap_or_else(|| self.data.join("blobs"))
    }

    /// The registration policy in force: open by default only on loopback.
    pub fn registration_policy(&self) -> Registration {
        self.registration.unwrap_or_else(|| {
            let host = self.listen.rsplit_once(':').map(|(h, _)| h).unwrap_or(&self.listen);
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let loopback =
                host == "localhost" || host.parse::<std::net::IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false);
            if loopback { Registration::Open } else { Registration::Token }
        })
    }
}

mod secs {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_is_open_by_default_only_on_loopback() {
        let mut c = Config::default();
        assert_eq!(c.registration_policy(), Registration::Open);
        c.listen = "[::1]:7780".into();
        assert_eq!(c.registration_policy(), Registration::Open);
        c.listen = "0.0.0.0:7780".into();
        assert_eq!(c.registration_policy(), Registration::Token);
        c.registration = Some(Registration::Open);
        assert_eq!(c.registration_policy(), Registration::Open);
    }

    #[test]
    fn a_toml_file_overrides_defaults_and_rejects_unknown_keys() {
        let c: Config = toml::from_str("max_companions = 2\nidle_timeout = 5\nregistration = \"token\"").unwrap();
        assert_eq!(c.max_companions, 2);
        assert_eq!(c.idle_timeout, Duration::from_secs(5));
        assert_eq!(c.registration, Some(Registration::Token));
        assert_eq!(c.primary_inactive_days, 14);
        assert_eq!(c.max_group_size, 1024);
        let c: Config = toml::from_str("max_group_size = 3").unwrap();
        assert_eq!(c.max_group_size, 3);
        assert!(toml::from_str::<Config>("no_such_key = 1").is_err());
        let c: Config = toml::from_str("data = \"/d\"\nmax_file_size = 1000\nblob_quota = 5000").unwrap();
        assert_eq!((c.max_file_size, c.blob_quota, c.blob_dir()), (1000, 5000, PathBuf::from("/d/blobs")));
        let c: Config = toml::from_str("blob_dir = \"/srv/blobs\"").unwrap();
        assert_eq!(c.blob_dir(), PathBuf::from("/srv/blobs"));
        let d = Config::default();
        assert_eq!((d.max_file_size, d.blob_quota), (64 * 1024 * 1024, 1 << 30));
    }

    #[test]
    fn the_store_is_sqlite_unless_a_postgres_url_is_given() {
        let d = Config { data: "/d".into(), ..Config::default() };
        assert_eq!(d.backend().unwrap(), Backend::Sqlite(std::path::Path::new("/d")));
        let c: Config = toml::from_str("database_url = \"postgresql://u:secret@db.example:5433/tether\"").unwrap();
        assert_eq!(c.backend().unwrap(), Backend::Postgres("postgresql://u:secret@db.example:5433/tether"));
        assert_eq!(c.blob_dir(), PathBuf::from("./data/blobs"), "blobs stay in the data directory");
        let url = DatabaseUrl("postgres://u:secret@db.example:5433/tether?password=also".into());
        assert_eq!(url.redacted(), "postgres://db.example:5433/tether");
        assert!(!format!("{c:?}").contains("secret"), "Debug never shows the password");
        for bad in ["sqlite://tether.db", "mysql://u:secret@h/db", "db.example/tether", ""] {
            let c = Config { database_url: Some(DatabaseUrl(bad.into())), ..Config::default() };
            let e = c.backend().unwrap_err().to_string();
            assert!(e.contains("must be a postgres:// or postgresql:// URL"), "{bad}: {e}");
            assert!(!e.contains("secret") && !e.contains("tether.db"), "{bad}: the URL is not echoed: {e}");
        }
    }

    #[test]
    fn tls_settings_are_files_or_acme_never_both() {
        use crate::tls::{LETS_ENCRYPT, TlsSource};
        assert_eq!(Config::default().tls().unwrap(), None);
        let files: Config = toml::from_str("tls_cert = \"c.pem\"\ntls_key = \"k.pem\"").unwrap();
        assert_eq!(files.tls().unwrap(), Some(TlsSource::Files { cert: "c.pem".into(), key: "k.pem".into() }));
        let acme: Config = toml::from_str("data = \"/d\"\nacme_domains = [\"chat.example.org\"]").unwrap();
        let Some(TlsSource::Acme(a)) = acme.tls().unwrap() else { panic!("ACME expected") };
        assert_eq!(a.domains, ["chat.example.org"]);
        assert_eq!(a.directory, LETS_ENCRYPT);
        assert_eq!(a.cache, PathBuf::from("/d/acme"));

        let both = Config { acme_domains: vec!["a.example".into()], ..files.clone() };
        assert!(both.tls().unwrap_err().to_string().contains("exclude each other"));
        let half = Config { tls_key: None, ..files };
        assert!(half.tls().unwrap_err().to_string().contains("needs its key"));
        let stray = Config { acme_email: Some("me@example.org".into()), ..Config::default() };
        assert!(stray.tls().unwrap_err().to_string().contains("need --acme-domain"));
        let url = Config { acme_domains: vec!["https://a.example".into()], ..Config::default() };
        assert!(url.tls().unwrap_err().to_string().contains("not a host name"));
        let redirect = Config { http_redirect: Some("0.0.0.0:80".into()), ..Config::default() };
        assert!(redirect.tls().unwrap_err().to_string().contains("needs TLS"));
    }
}
