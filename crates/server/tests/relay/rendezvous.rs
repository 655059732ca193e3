//! Finding 6: unauthenticated guests cannot grow the server's rendezvous
//! tables (link refs, pairing slots) without bound, in total or from one
//! source, and nothing is parked after a guest leaves.

use crate::common::*;
use std::net::{IpAddr, Ipv4Addr};
use tether_proto::ErrorCode;
use tether_proto::frames::*;
use tether_proto::noise::StaticKey;

/// This process's resident memory in KiB (Linux).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Raises this process's soft limit of open files to its hard limit: the
/// test holds 2 000 sockets (both ends of 1 000 connections), more than a
/// common default soft limit of 1 024.
fn raise_open_file_limit() {
    #[cfg(target_os = "linux")]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        if limit.current.is_some() && limit.current < limit.maximum {
            let _ = setrlimit(Resource::Nofile, Rlimit { current: limit.maximum, maximum: limit.maximum });
        }
    }
}

/// What one guest got for its two requests.
#[derive(Debug, Default)]
struct Tally {
    ok: usize,
    rate_limited: usize,
    server_busy: usize,
}

impl Tally {
    fn count(&mut self, r: &Response) {
        match r.error.as_ref().map(|e| e.code.as_str()) {
            None => self.ok += 1,
            Some("rate_limited") => self.rate_limited += 1,
            Some("server_busy") => self.server_busy += 1,
            Some(other) => panic!("unexpected error {other}"),
        }
    }
}

const GUESTS: usize = 1000;
/// Guests per source address: 127.0.0.1, then .2, …
const PER_IP: usize = 40;
const PER_SOURCE_CAP: u32 = 32;
const GLOBAL_CAP: usize = 600;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_guests_cannot_grow_the_rendezvous_tables_past_their_caps() {
    raise_open_file_limit();
    let server = TestServer::start_with(|c| {
        c.rendezvous_per_source = PER_SOURCE_CAP;
        c.max_ref_batches = GLOBAL_CAP;
        c.max_pairing_slots = GLOBAL_CAP;
        // The guests sit idle while the others connect, and a wave of
        // handshakes on a loaded machine (debug-built crypto) may be slow:
        // neither is what this test is about.
        c.idle_timeout = std::time::Duration::from_secs(3600);
        c.handshake_timeout = std::time::Duration::from_secs(600);
    })
    .await;
    let rss_before = rss_kib();
    let (mut refs, mut slots) = (Tally::default(), Tally::default());
    let mut guests = Vec::with_capacity(GUESTS);
    // In waves of PER_IP: each wave one source, connected concurrently.
    let url = server.url();
    for wave in 0..GUESTS / PER_IP {
        let from = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + wave as u8));
        let connects = (0..PER_IP).map(|_| {
            let (url, pin) = (url.clone(), server.pin());
            tokio::spawn(async move { Client::connect_from(&url, StaticKey::generate(), Some(pin), from).await })
        });
        for (i, g) in futures_util::future::join_all(connects).await.into_iter().enumerate() {
            let mut g = g.unwrap().unwrap();
            refs.count(&g.request(Request::RequestLinkRefs(RequestLinkRefs {})).await);
            let n = (wave * PER_IP + i) as u16;
            let offer =
                Request::PairingPublish(PairingPublish { lookup: n.to_be_bytes().to_vec(), payload: vec![7; 33] });
            slots.count(&g.request(offer).await);
            guests.push(g);
        }
    }
    let f = server.server.rendezvous_footprint();
    let rss_after = rss_kib();
    eprintln!(
        "rendezvous after {GUESTS} guests (caps: {GLOBAL_CAP} total, {PER_SOURCE_CAP} per source): \
         {} entries ({} ref batches, {} refs, {} pairing slots), {} bytes (~{} bytes per guest held); \
         refs {refs:?}, slots {slots:?}; test process RSS {} KiB -> {} KiB (+{} KiB, client and server side \
         of {GUESTS} connections together)",
        f.entries(),
        f.ref_batches,
        f.refs,
        f.pairings,
        f.bytes,
        f.bytes / f.ref_batches.max(1),
        rss_before,
        rss_after,
        rss_after.saturating_sub(rss_before),
    );
    // Each full source (18 of them) got 32 of its 40 in, then the tables
    // were full: the 19th source got 24 in, and everyone after it nothing.
    for t in [&refs, &slots] {
        assert_eq!(t.ok, GLOBAL_CAP, "{t:?}");
        assert_eq!(t.rate_limited, 18 * (PER_IP - PER_SOURCE_CAP as usize), "{t:?}");
        assert_eq!(t.server_busy, GUESTS - GLOBAL_CAP - t.rate_limited, "{t:?}");
    }
    assert_eq!((f.ref_batches, f.pairings), (GLOBAL_CAP, GLOBAL_CAP));
    assert_eq!(f.refs, GLOBAL_CAP * 6);
    assert!(f.bytes < 1024 * 1024, "the full tables take {} bytes", f.bytes);

    // A guest that asks again replaces its own entries (always fits).
    let g = &mut guests[0];
    g.ok(Request::RequestLinkRefs(RequestLinkRefs {})).await;
    g.ok(Request::PairingPublish(PairingPublish { lookup: vec![0x7f, 0xff], payload: vec![1] })).await;

    // Slots go with their guests; refs live until they expire.
    drop(guests);
    for _ in 0..500 {
        if server.server.rendezvous_footprint().pairings == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(server.server.rendezvous_footprint().pairings, 0);
    assert_eq!(server.server.rendezvous_footprint().ref_batches, GLOBAL_CAP);
    server.clock.advance(161_000);
    let f = server.server.rendezvous_footprint();
    assert_eq!(f.entries(), 0, "{f:?}");
    // Room again.
    let mut late = server.guest().await;
    late.ok(Request::RequestLinkRefs(RequestLinkRefs {})).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_approvals_are_capped_per_source_before_anything_is_stored() {
    let server = TestServer::start_with(|c| {
        c.rendezvous_per_source = 1;
        c.max_companions = 8;
    })
    .await;
    let (mut alice, mut primary) = register(&server, "alice").await;
    // Two companions-to-be ask for refs, then go offline before approval.
    let mut refs = Vec::new();
    for from in [1u8, 2] {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 0, from));
        let mut g = Client::connect_from(&server.url(), StaticKey::generate(), Some(server.pin()), ip).await.unwrap();
        match g.ok(Request::RequestLinkRefs(RequestLinkRefs {})).await {
            ResponseBody::LinkRefs(r) => refs.push((g.key.clone(), r.refs[0].link_ref.clone())),
            other => panic!("{other:?}"),
        }
    }
    // Give the server a moment to see them go (they are dropped here).
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let approve = |alice: &mut TestAccount, (key, link_ref): &(tether_proto::noise::StaticKey, Vec<u8>), id| {
        Request::ApproveLink(ApproveLink {
            link_ref: link_ref.clone(),
            device_id: id,
            new_list: Some(alice.with_device(entry(id, key, "chrome/linux"))),
            approval: b"approval".to_vec(),
        })
    };
    // The primary's source may hold one approval: the second is refused
    // before the list is stored, so the account is unchanged.
    let first = approve(&mut alice, &refs[0], 1);
    primary.ok(first).await;
    assert_eq!(server.server.rendezvous_footprint().approvals, 1);
    let second = approve(&mut alice, &refs[1], 2);
    primary.fails(second, ErrorCode::RateLimited).await;
    alice.without_device(2);
    match primary.ok(Request::ListDevices(ListDevices {})).await {
        ResponseBody::Devices(d) => assert_eq!(d.devices.len(), 2, "primary and the first companion only"),
        other => panic!("{other:?}"),
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_proxy_the_source_is_the_address_the_proxy_appended() {
    let server = TestServer::start_with(|c| {
        c.rendezvous_per_source = 2;
        c.client_ip_header = Some("x-forwarded-for".into());
    })
    .await;
    let guest = |xff: &'static str| {
        let url = server.url();
        let pin = server.pin();
        async move { Client::connect_forwarded(&url, StaticKey::generate(), Some(pin), xff).await.unwrap() }
    };
    let refs = || Request::RequestLinkRefs(RequestLinkRefs {});
    let mut kept = Vec::new();
    for _ in 0..2 {
        let mut g = guest("203.0.113.7").await;
        g.ok(refs()).await;
        kept.push(g);
    }
    // The third from that client is over its share, whatever it claims
    // before the proxy's entry; another client is not.
    guest("203.0.113.7").await.fails(refs(), ErrorCode::RateLimited).await;
    guest("198.51.100.1, 203.0.113.7").await.fails(refs(), ErrorCode::RateLimited).await;
    guest("203.0.113.7, 198.51.100.1").await.ok(refs()).await;
    // IPv6 clients count by /64.
    guest("2001:db8::1").await.ok(refs()).await;
    guest("2001:db8::2").await.ok(refs()).await;
    guest("2001:db8::3").await.fails(refs(), ErrorCode::RateLimited).await;
    guest("2001:db8:0:1::1").await.ok(refs()).await;
    server.stop().await;
}
