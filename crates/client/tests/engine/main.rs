//! The engine against a real in-process tether-server on 127.0.0.1:0, over
//! real WebSockets: no mock of the server; and against a scripted relay
//! (`relay`) that speaks the real Noise and frames in virtual time, for the
//! paths an honest server never takes.

mod adversary;
mod harness;

mod attacks_engine;
mod attacks_link;
mod attacks_lists;
mod chat;
mod durability;
mod files;
mod groups;
mod linking;
mod relay;
mod requests;
mod restore;
mod safety;
mod verify;
mod names;
mod messaging;
