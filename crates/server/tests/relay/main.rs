//! Integration tests of tether-server: an in-process server on 127.0.0.1:0
//! and native test clients speaking the real protocol (Noise over
//! WebSocket, protobuf frames).

mod common;

mod bad_input;
mod blobs;
mod cluster;
mod crash;
mod delivery;
mod devices;
mod groups;
mod handshake;
mod http;
mod objects;
mod pairing;
mod postgres;
mod quotas;
mod rendezvous;
mod restore;
mod store;
