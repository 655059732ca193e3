//! Blobs in an S3-compatible object store (`--blob-url`), against a real
//! S3 server over HTTP (moto's; tether-services starts a throwaway one).
//! The object store passes the blob files suite the directory passes, and
//! two nodes on one PostgreSQL keep their blobs in it: an upload begun
//! through one node goes on through the other, a download through either
//! reads the part objects its range covers, two PATCHes at one offset
//! through both nodes at once keep one, the last fetch deletes the
//! objects, and a start deletes objects without a record.

use crate::blobs::*;
use crate::cluster::TwoNodes;
use crate::common::*;
use tether_proto::frames::*;
use tether_server::BlobOptions;
use tether_server::blobs::files::{BlobFiles, ObjectFiles, conformance};
use tether_server::store::BlobId;
use tether_services::S3;

fn options(s3: &S3) -> BlobOptions {
    BlobOptions(s3.options().into_iter().collect())
}

fn open(s3: &S3, prefix: &str) -> ObjectFiles {
    ObjectFiles::open(&s3.url(prefix), &options(s3).0).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_server_passes_the_blob_files_suite() {
    let s3 = S3::start().unwrap();
    let files = open(&s3, "suite/blobs");
    conformance::run(&files).await;
    conformance::one_write_per_offset(&files).await;
    // Another prefix in the same bucket is another store.
    let other = open(&s3, "elsewhere");
    let mut a = other.append(&BlobId([5; 16]), 0).await.unwrap();
    a.write(bytes::Bytes::from_static(b"x")).await.unwrap();
    a.commit().await.unwrap();
    assert_eq!(files.ids().await.unwrap(), vec![]);
    assert!(ObjectFiles::open("http://bucket/x", &Default::default()).is_err(), "only s3:// URLs");
    assert!(
        ObjectFiles::open(&s3.url("x"), &[("no_such_setting".to_string(), String::new())].into()).is_err(),
        "an unknown setting is an error, not ignored"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_keep_their_blobs_in_an_s3_object_store() {
    let s3 = S3::start().unwrap();
    let nodes = TwoNodes::start_with(|c| {
        c.blob_url = Some(s3.url("blobs"));
        c.blob_options = options(&s3);
    })
    .await;
    let files = open(&s3, "blobs");
    let (_alice, mut alice) = register(&nodes.a, "alice").await;
    let (_bob, mut bob) = register(&nodes.b, "bob").await;

    // About 5 MiB: more than one part object.
    let (_, _, blob) = file(5 * 1024 * 1024, b"MARKER");
    let length = blob.len() as u64;
    let t = upload_ticket(&mut alice, length).await;
    // Begun through node A, the connection lost after 1 MB.
    patch_and_drop(&nodes.a, &t, 0, blob.len(), &blob[..1_000_000]).await;
    offset_becomes(&nodes.a, &t, 1_000_000).await;
    // Node B reads the same offset; a stale PATCH at 0 is refused.
    assert_eq!(head(&nodes.b, &t).await.offset(), 1_000_000);
    let r = patch(&nodes.a, &t, 0, &blob[..10]).await;
    assert_eq!((r.status, r.offset()), (409, 1_000_000));
    // The rest through node B, in one PATCH.
    let r = patch(&nodes.b, &t, 1_000_000, &blob[1_000_000..]).await;
    assert_eq!((r.status, r.offset()), (204, length));
    assert_eq!(files.ids().await.unwrap(), vec![BlobId::from_slice(&t.blob_id).unwrap()]);

    alice.ok(send_with(1, vec![("bob", 0)], vec![t.blob_id.clone()])).await;
    bob.envelope().await;
    let d = download_ticket(&mut bob, &t.blob_id).await;
    for node in [&nodes.a, &nodes.b] {
        let r = get(node, &d, None).await;
        assert_eq!((r.status, r.body.len()), (200, blob.len()));
        assert!(r.body == blob, "the same bytes through either node");
    }
    // Ranges across the boundaries between parts (1,000,000 and 4 MiB on).
    let boundary = 1_000_000 + 4 * 1024 * 1024;
    for (first, last) in [(999_990, 1_000_009), (boundary - 3, boundary + 3), (0, length - 1), (length - 5, length - 1)]
    {
        let r = get(&nodes.b, &d, Some(&format!("bytes={first}-{last}"))).await;
        assert_eq!(r.status, 206);
        assert!(r.body == blob[first as usize..=last as usize], "bytes {first}-{last}");
    }
    // The only reader fetched it: its objects are gone.
    bob.ok(Request::BlobFetched(BlobFetched { blob_ids: vec![t.blob_id.clone()] })).await;
    assert_eq!(files.ids().await.unwrap(), vec![], "the last fetch deletes the objects");

    // One upload PATCHed at offset 0 through both nodes at once (no lock
    // between them): one PATCH is kept, the other refused.
    let (_, _, small) = file(50_000, b"SMALL");
    let t2 = upload_ticket(&mut alice, small.len() as u64).await;
    let (ra, rb) = tokio::join!(patch(&nodes.a, &t2, 0, &small), patch(&nodes.b, &t2, 0, &small));
    let mut statuses = [ra.status, rb.status];
    statuses.sort();
    assert_eq!(statuses, [204, 409], "{ra:?} {rb:?}");
    assert_eq!(head(&nodes.a, &t2).await.offset(), small.len() as u64);
    let t2_id = BlobId::from_slice(&t2.blob_id).unwrap();

    // Objects without a record (a crash between deleting a record and its
    // objects) are deleted when a node starts; a record's objects stay.
    let stray = BlobId([0xee; 16]);
    let mut a = files.append(&stray, 0).await.unwrap();
    a.write(bytes::Bytes::from_static(b"stray")).await.unwrap();
    a.commit().await.unwrap();
    assert_eq!(files.ids().await.unwrap().len(), 2);
    let c = TestServer::node(nodes.a.config.clone(), nodes.a.clock.clone()).await;
    assert_eq!(files.ids().await.unwrap(), vec![t2_id], "the stray objects are gone");
    c.stop().await;
    nodes.stop().await;
}
