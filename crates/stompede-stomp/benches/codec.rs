//! Codec throughput: `cargo bench -p stompede-stomp --bench codec`.
//!
//! Three frames: a small SEND as a browser sends it (no content-length, body
//! ends at the NUL), a 4 KiB MESSAGE with content-length, and a frame whose
//! headers need escaping. Throughput counts wire bytes.

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use stompede_stomp::{encode, Command, Decoder, Frame, Limits, Version};

struct Case {
    name: &'static str,
    frame: Frame,
    wire: Vec<u8>,
}

fn cases() -> Vec<Case> {
    let small_body = "x".repeat(100);
    let small = Frame::new(Command::Send)
        .with_header("destination", "/app/chat.send")
        .with_header("content-type", "application/json")
        .with_header("receipt", "r-42")
        .with_header("x-trace", "5b8aa5a2d2c872e8")
        .with_body(small_body.clone());
    let small_wire = format!(
        "SEND\ndestination:/app/chat.send\ncontent-type:application/json\n\
         receipt:r-42\nx-trace:5b8aa5a2d2c872e8\n\n{small_body}\0"
    )
    .into_bytes();

    let large = Frame::new(Command::Message)
        .with_header("destination", "/topic/chat.lobby")
        .with_header("subscription", "sub-0")
        .with_header("message-id", "7f3e-000042")
        .with_header("content-type", "application/octet-stream")
        .with_body(vec![0xA5u8; 4096]);

    let escaped = Frame::new(Command::Message)
        .with_header("destination", "/topic/a:b:c")
        .with_header("subscription", "sub\\0")
        .with_header("x-json", "{\"a\":1,\n\"b\":\"c:d\\\\e\"}\r\n")
        .with_header("x-path", "C:\\Users\\me\\file.txt")
        .with_body("escaped");

    [
        ("send_100B", small, Some(small_wire)),
        ("message_4KiB", large, None),
        ("escaped_headers", escaped, None),
    ]
    .into_iter()
    .map(|(name, frame, wire)| {
        let wire = wire.unwrap_or_else(|| {
            let mut dst = BytesMut::new();
            encode(&frame, Version::V1_2, &mut dst);
            dst.to_vec()
        });
        Case { name, frame, wire }
    })
    .collect()
}

fn decode_bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for case in cases() {
        group.throughput(Throughput::Bytes(case.wire.len() as u64));
        let mut decoder = Decoder::new(Limits::default());
        group.bench_function(case.name, |b| {
            b.iter_batched_ref(
                || BytesMut::from(&case.wire[..]),
                |buf| black_box(decoder.decode(buf)),
                BatchSize::SmallInput,
            );
        });
    }
    group.finish();
}

fn encode_bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for case in cases() {
        group.throughput(Throughput::Bytes(case.wire.len() as u64));
        let mut dst = BytesMut::with_capacity(case.wire.len() * 2);
        group.bench_function(case.name, |b| {
            b.iter(|| {
                dst.clear();
                encode(black_box(&case.frame), Version::V1_2, &mut dst);
                black_box(dst.len())
            });
        });
    }
    group.finish();
}

criterion_group!(benches, decode_bench, encode_bench);
criterion_main!(benches);
