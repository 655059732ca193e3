//! The engine against a real in-process tether-server on 127.0.0.1:0, over
//! real WebSockets: no mock of the server.

mod harness;

mod chat;
mod linking;
mod safety;
