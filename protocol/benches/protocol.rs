//! Protocol benchmarks: the server's handshake cost and frame seal + open.
//!
//! Run with `cargo bench -p protocol --bench protocol`; results go in `docs/BENCHMARKS.md`.

#![allow(missing_docs, clippy::unwrap_used)]

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use protocol::crypto::dh::agree_all;
use protocol::frame::{DEFAULT_MAX_FRAME_LEN, FrameOpener, FrameSealer};
use protocol::handshake::{ClientHandshake, DirectionKeys, NONCE_LEN, server_respond};
use protocol::{KeyPair, ServerIdentity};

fn handshake(c: &mut Criterion) {
    let identity = ServerIdentity::generate("bench").unwrap();
    let client = ClientHandshake::new(None).unwrap();
    let hello = *client.hello();
    let mut group = c.benchmark_group("handshake");
    group.sample_size(30);
    group.bench_function("server_respond (2 modexp, ephemeral from the pool)", |b| {
        let ephemeral = KeyPair::generate().unwrap();
        b.iter(|| server_respond(&identity, &ephemeral, [1; NONCE_LEN], black_box(&hello)).unwrap())
    });
    group.bench_function("ephemeral key pair (1 modexp, off the request path)", |b| {
        b.iter(|| KeyPair::generate().unwrap())
    });
    let a = KeyPair::generate().unwrap();
    let b_key = KeyPair::generate().unwrap();
    let peer = KeyPair::generate().unwrap();
    group.bench_function("two agreements, one after the other", |b| {
        b.iter(|| (a.agree(peer.public()), b_key.agree(peer.public())))
    });
    group.bench_function("two agreements, interleaved (agree_all)", |b| {
        b.iter(|| agree_all([(&a, peer.public()), (&b_key, peer.public())]))
    });
    group.bench_function("client, whole (3 modexp)", |b| {
        let ephemeral = KeyPair::generate().unwrap();
        b.iter(|| {
            let client = ClientHandshake::new(None).unwrap();
            let (flight, _) =
                server_respond(&identity, &ephemeral, [1; NONCE_LEN], client.hello()).unwrap();
            client.finish(&flight).unwrap()
        })
    });
    group.finish();
}

fn frames(c: &mut Criterion) {
    let keys = DirectionKeys {
        enc: [1; 32],
        mac: [2; 32],
    };
    let mut group = c.benchmark_group("frame seal+open");
    for size in [200usize, 64 * 1024] {
        let plain = vec![0x5a; size];
        let mut sealer = FrameSealer::new(&keys, DEFAULT_MAX_FRAME_LEN);
        let mut opener = FrameOpener::new(&keys, DEFAULT_MAX_FRAME_LEN);
        // Sealing appends to a reused send buffer and opening reads from a reused receive
        // buffer, as `SecureWriter` and `SecureReader` do; the copy between them stands in for
        // the socket.
        let mut wire = Vec::with_capacity(size + 128);
        let mut buf = BytesMut::with_capacity(size + 128);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function(format!("{size} B"), |b| {
            b.iter(|| {
                wire.clear();
                sealer.seal_into(black_box(&plain), &mut wire).unwrap();
                buf.extend_from_slice(&wire);
                opener.open(&mut buf).unwrap().unwrap()
            })
        });
    }
    group.finish();
}

/// What a client pays per login since protocol 2: one stretch of the password at the cost a
/// server asks by default, and at the least a client accepts.
fn stretch(c: &mut Criterion) {
    use protocol::password::{DEFAULT_KDF, KdfParams, MIN_KDF, StretchedPassword};
    let mut group = c.benchmark_group("password stretch (client, per login)");
    group.sample_size(10);
    for (name, cost) in [
        ("default 64 MiB t=3", DEFAULT_KDF),
        ("floor 19 MiB t=2", MIN_KDF),
    ] {
        let params = KdfParams {
            salt: [7; 16],
            cost,
        };
        group.bench_function(name, |b| {
            b.iter(|| StretchedPassword::derive(black_box("correct horse"), &params, &MIN_KDF))
        });
    }
    group.finish();
}

criterion_group!(benches, handshake, frames, stretch);
criterion_main!(benches);
