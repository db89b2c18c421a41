//! Integration tests: one binary (links once). Each module starts real
//! `fieldmesh up` processes on loopback or in network namespaces.
#![allow(clippy::unwrap_used, missing_docs, unreachable_pub)]

/// Daemon processes, control clients, `wait_for`.
mod harness;

/// A–B–C line: relay through B, TTL expiry everywhere, restart keeps history.
mod line;

/// Garbage on the gossip topic and on the control socket is rejected, nothing lost.
mod bad_input;

/// Catch-up sync: partition and heal, late joiner, kill -9 safety.
mod sync;

/// At rest: nothing readable on disk, wrong passphrase, lock and unlock.
mod at_rest;

/// End-to-end encrypted direct messages through a relay.
mod dm;

/// Teams: outsider relay, removal with key rotation, invite codes.
mod teams;

/// Transcribe: FHIR export, deletion everywhere, catch-up of the tombstone.
mod transcribe;

/// CLI exit codes and one-line errors.
mod cli_errors;

/// mDNS discovery between two network namespaces (root only).
mod mdns;

/// The test site: hosts in network namespaces, rooms as bridges, relays between them.
mod testsite;

/// Field conditions on the test site: relays, a 20 s link outage, crash churn (root only).
mod site;

/// Triage priority: a P1 overtakes a P3 backlog behind a slow emulated link.
mod priority;

/// Resource bounds: store size limit and its eviction order.
mod limits;

/// Flood protection: flooding peers are cut off, P1 traffic gets through.
mod flood;

/// `fieldmesh bench` on three nodes: the report line and its hard timeout.
mod bench;

/// `fieldmesh sim`: the drill simulator's delivery under loss and churn.
mod sim;

/// Install and configure: `config check`, the config file under the flags of
/// `up`, shell completions, `--version`.
mod config;

/// `up --metrics`: Prometheus text that parses, counters that move.
mod metrics;

/// The web UI's HTTP API: every endpoint, bad input, token and Host checks, flags.
mod web;

/// The web UI in headless Chromium: live update between two nodes' pages, transcribe.
mod web_e2e;

/// Bluetooth LE: gossip over the in-memory L2CAP link only, P1 first over a slow
/// BLE link, `up` without an adapter or without the one `--bt-adapter` names (one
/// log line naming it, IP works) or with `--no-bluetooth`.
mod ble;

/// Bluetooth LE on BlueZ: two nodes on two `btvirt` virtual controllers exchange
/// messages over L2CAP (skipped, naming what is missing, without `/dev/vhci`).
mod ble_vhci;

/// Structured reports: METHANE and casualty updates, identifiable fields hidden.
mod reports;

/// The audit trail: chain verifies, no text in it, an edited record is named,
/// export; member additions and removals in a team.
mod audit;
