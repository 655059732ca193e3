//! `tether-floor`: the floor `cargo xtask bench server` measures
//! tether-server against. A bare WebSocket forwarder on the same runtime
//! and WebSocket library (tungstenite, which axum's WebSocket wraps), with
//! tether-server's buffer sizes, speaking the same frames (protobuf `ClientFrame`
//! in, `ServerFrame` out) with no Noise, no store, no checks: a send is
//! pushed to its recipients' connections and answered at once. Whatever
//! tether-server spends beyond this (encryption, durability, delivery
//! rules) is what the bench's ratios show. Loopback only; not a product.
//!
//! A connection's first message is a text: the name it is reached by.

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use prost::Message as _;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tether_proto::frames::{
    ClientFrame, Done, Envelope, Event, EventBody, Pong, Request, Response, ResponseBody, SendAccepted, ServerBody,
    ServerFrame,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// A bare WebSocket forwarder: the bench's floor (loopback only).
#[derive(Debug, Parser)]
#[command(name = "tether-floor", version, about)]
struct Args {
    /// Where to listen, HOST:PORT on a loopback interface (port 0: any).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

/// Who is connected, by name: a queue to each connection's writer.
type Peers = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Message>>>>;

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if !args.listen.ip().is_loopback() {
        eprintln!("tether-floor: --listen must be a loopback address");
        return std::process::ExitCode::FAILURE;
    }
    // The same runtime as tether-server's (multi-threaded, one worker per CPU allowed).
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(async move {
        let listener = match TcpListener::bind(args.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("tether-floor: listen on {}: {e}", args.listen);
                return std::process::ExitCode::FAILURE;
            }
        };
        let addr = listener.local_addr().expect("bound address");
        // The line xtask reads, as it reads tether-server's.
        eprintln!("tether-floor listening addr={addr}");
        let peers: Peers = Arc::default();
        let ids = Arc::new(AtomicU64::new(1));
        loop {
            let Ok((tcp, _)) = listener.accept().await else { continue };
            let _ = tcp.set_nodelay(true);
            tokio::spawn(serve(tcp, peers.clone(), ids.clone()));
        }
    })
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn frame(body: ServerBody) -> Message {
    Message::Binary(ServerFrame { body: Some(body) }.encode_to_vec().into())
}

fn answer(id: u64, body: ResponseBody) -> Message {
    frame(ServerBody::Response(Response { id, error: None, body: Some(body) }))
}

async fn serve(tcp: TcpStream, peers: Peers, ids: Arc<AtomicU64>) {
    // tether-server's buffer sizes (crates/server/src/lib.rs), so idle
    // connections compare like for like.
    let config = WebSocketConfig::default().read_buffer_size(2 * 1024).write_buffer_size(8 * 1024);
    let Ok(ws) = tokio_tungstenite::accept_async_with_config(tcp, Some(config)).await else { return };
    let (mut sink, mut stream) = ws.split();
    let name = match stream.next().await {
        Some(Ok(Message::Text(name))) => name.to_string(),
        _ => return,
    };
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    peers.lock().expect("peers lock").insert(name.clone(), tx.clone());
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            // Whatever else is queued goes out in the same write.
            let mut more = vec![m];
            while let Ok(m) = rx.try_recv() {
                more.push(m);
            }
            for m in more {
                if sink.feed(m).await.is_err() {
                    return;
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    });
    while let Some(Ok(m)) = stream.next().await {
        let Message::Binary(bytes) = m else { continue };
        let Ok(ClientFrame { id, request: Some(request) }) = ClientFrame::decode(bytes.as_ref()) else { continue };
        let reply = match request {
            Request::Send(send) => {
                let now = unix_ms();
                for copy in send.copies {
                    let to = peers.lock().expect("peers lock").get(&copy.handle).cloned();
                    if let Some(to) = to {
                        let envelope = Envelope {
                            envelope_id: ids.fetch_add(1, Ordering::Relaxed),
                            message_id: send.message_id.clone(),
                            sender_handle: name.clone(),
                            sender_device: 0,
                            ciphertext: copy.ciphertext,
                            server_time_ms: now,
                        };
                        let _ = to.send(frame(ServerBody::Event(Event { body: Some(EventBody::Envelope(envelope)) })));
                    }
                }
                answer(id, ResponseBody::Sent(SendAccepted { server_time_ms: now }))
            }
            Request::Ack(_) => answer(id, ResponseBody::Done(Done {})),
            Request::Ping(_) => answer(id, ResponseBody::Pong(Pong { time_ms: unix_ms() })),
            _ => answer(id, ResponseBody::Done(Done {})),
        };
        if tx.send(reply).is_err() {
            break;
        }
    }
    peers.lock().expect("peers lock").remove(&name);
    writer.abort();
}
