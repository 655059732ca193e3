//! Display-name spoofing (issue 9, finding 4): a peer's self-chosen name
//! is cleaned, never replaces a name the user gave, and is always shown
//! with the peer's handle (chat list, notifications, contact list).

use crate::harness::*;
use tether_client::Event;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_calling_itself_mom_with_bidi_tricks_is_shown_with_its_handle_and_without_them() {
    let server = TestServer::start().await;
    let mut alice = primary(&server, "alice").await;
    let mut mom = primary(&server, "mom").await;
    let mut mallory = primary(&server, "mallory").await;
    alice.add_contact("mom", "Mom").await;
    // Alice knows mallory only by handle.
    alice.add_contact("mallory", "").await;
    settle(&mut [&mut alice, &mut mom, &mut mallory]).await;

    // Mallory calls herself "Mom" (with a right-to-left override, a
    // zero-width space and a newline), then writes.
    let now = mallory.now();
    mallory.engine.danger_send_raw_profile("alice", "\u{202e}M\u{200b}om\u{2066}\n", now);
    mallory.flush().await;
    settle(&mut [&mut alice, &mut mallory]).await;
    let now = mallory.now();
    mallory.engine.send_text("alice", "it's me, new number", now).unwrap();
    mallory.flush().await;
    // And mom's real profile name does not override what alice calls her.
    let now = mom.now();
    mom.engine.send_profile("alice", "Mother Superior", now).unwrap();
    mom.flush().await;
    settle(&mut [&mut alice, &mut mallory, &mut mom]).await;

    let shown = alice.engine.display_name("mallory");
    assert_eq!(shown, "Mom (mallory)", "cleaned, and with the handle");
    assert_eq!(alice.engine.display_name("mom"), "Mom", "the name alice gave is kept");
    assert_eq!(alice.engine.contact("mom").unwrap().profile_name, "Mother Superior");
    let row = alice.engine.chat_list().into_iter().find(|c| c.handle == "mallory").expect("mallory's chat");
    assert_eq!(row.name, "Mom (mallory)");
    let names: Vec<String> = alice.engine.contact_list().into_iter().map(|c| c.name).collect();
    assert!(names.contains(&"Mom".to_string()) && names.contains(&"Mom (mallory)".to_string()), "{names:?}");
    let notified: Vec<_> = alice
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Notify { notification } if notification.chat == "mallory" => Some(notification.title.clone()),
            _ => None,
        })
        .collect();
    assert!(!notified.is_empty(), "{:?}", alice.events);
    for title in notified {
        assert!(title.contains("mallory"), "the notification names the handle: {title}");
        assert!(!title.chars().any(|c| matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200b}')), "{title:?}");
    }
    // A name far too long is cut.
    let now = mallory.now();
    mallory.engine.danger_send_raw_profile("alice", &"M".repeat(500), now);
    mallory.flush().await;
    settle(&mut [&mut alice, &mut mallory]).await;
    assert_eq!(alice.engine.contact("mallory").unwrap().profile_name.chars().count(), tether_client::MAX_NAME_CHARS);
}
