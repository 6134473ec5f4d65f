//! Stable-Rust stand-in for the cargo-fuzz target in `fuzz/`: the
//! hand-written seeds (`fuzz/seeds/codec`, valid streams), a few thousand
//! seeded random mutations of them, and the whole checked-in fuzzer corpus
//! (`fuzz/corpus/codec`) and regression files (`tests/data/fuzz/codec`)
//! through `roundtrip_check`, the function the fuzz
//! target calls.

#![allow(clippy::unwrap_used)]

use bytes::BytesMut;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wardmq_broker::codec::{decode, roundtrip_check, Protocol};
use wardmq_broker::fuzz_corpus;

/// The hand-written seeds, by file name.
fn seeds() -> Vec<(String, Vec<u8>)> {
    let seeds: Vec<(String, Vec<u8>)> = fuzz_corpus::inputs(env!("CARGO_MANIFEST_DIR"), "codec")
        .into_iter()
        .filter(|(path, _)| path.parent().is_some_and(|d| d.ends_with("seeds/codec")))
        .map(|(path, data)| {
            (
                path.file_name().unwrap().to_string_lossy().into_owned(),
                data,
            )
        })
        .collect();
    assert!(!seeds.is_empty(), "no seeds in fuzz/seeds/codec");
    seeds
}

/// The seeds must be valid streams, or the mutations explore nothing useful.
#[test]
fn seeds_decode_completely() {
    for (name, data) in seeds() {
        let mut protocol = if name.contains("server") {
            Some(if name.starts_with("v5") {
                Protocol::V5
            } else {
                Protocol::V311
            })
        } else {
            None
        };
        let mut buf = BytesMut::from(&data[..]);
        while !buf.is_empty() {
            match decode(&mut buf, protocol, u32::MAX) {
                Ok(Some(wardmq_broker::codec::Packet::Connect(c))) => protocol = Some(c.protocol),
                Ok(Some(_)) => {}
                other => panic!("seed {name}: {other:?} with {} bytes left", buf.len()),
            }
        }
    }
}

fn mutate(rng: &mut StdRng, data: &mut Vec<u8>) {
    for _ in 0..rng.random_range(1..=4) {
        let len = data.len();
        match rng.random_range(0..6) {
            0 if len > 0 => {
                let i = rng.random_range(0..len);
                data[i] ^= 1 << rng.random_range(0..8);
            }
            1 if len > 0 => {
                let i = rng.random_range(0..len);
                data[i] = [0x00, 0x01, 0x7f, 0x80, 0xff][rng.random_range(0..5)];
            }
            2 => {
                let i = rng.random_range(0..=len);
                data.insert(i, rng.random());
            }
            3 if len > 0 => {
                data.remove(rng.random_range(0..len));
            }
            4 if len > 0 => data.truncate(rng.random_range(0..len)),
            _ if len > 0 => {
                let start = rng.random_range(0..len);
                let end = rng.random_range(start..=len.min(start + 16));
                let chunk = data[start..end].to_vec();
                let at = rng.random_range(0..=data.len());
                data.splice(at..at, chunk);
            }
            _ => {}
        }
    }
}

#[test]
fn seeds_and_mutations_round_trip() {
    let seeds = seeds();
    for (_, data) in &seeds {
        roundtrip_check(data);
    }
    let mut rng = StdRng::seed_from_u64(0x5eed_c0de);
    for _ in 0..4000 {
        let (_, seed) = &seeds[rng.random_range(0..seeds.len())];
        let mut data = seed.clone();
        mutate(&mut rng, &mut data);
        roundtrip_check(&data);
    }
}

/// Seeds, the fuzzer's corpus and the regression files under
/// `tests/data/fuzz/codec`.
#[test]
fn fuzz_inputs_round_trip() {
    let n = fuzz_corpus::replay(env!("CARGO_MANIFEST_DIR"), "codec", roundtrip_check);
    assert!(n > 100, "only {n} inputs");
}
