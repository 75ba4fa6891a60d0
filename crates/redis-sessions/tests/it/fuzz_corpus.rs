//! Replays the committed fuzz corpus (`fuzz/corpus/<target>/`) through the fuzz targets' entry
//! functions, and throws a bounded number of random and mutated inputs at them: a crash found
//! once fails `cargo test` forever, without nightly or cargo-fuzz.

use std::path::PathBuf;

use redis_sessions::fuzzing;

type Target = fn(&[u8]);

const TARGETS: [(&str, Target); 2] = [
    ("decode", fuzzing::decode),
    ("parse_key", fuzzing::parse_key),
];

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let bytes = std::fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect()
}

#[test]
fn committed_corpus_replays_without_panics() {
    for (target, run) in TARGETS {
        let seeds = corpus(target);
        assert!(seeds.len() >= 20, "{target}: only {} seeds", seeds.len());
        for (path, bytes) in seeds {
            let outcome = std::panic::catch_unwind(|| run(&bytes));
            assert!(outcome.is_ok(), "{target} panicked on {}", path.display());
        }
    }
}

/// xorshift64*: deterministic, no dependencies.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One input: random bytes, or a corpus seed with a few mutations (bit flips, byte sets,
/// truncation, duplication of a slice, splicing with another seed).
fn input(rng: &mut Rng, seeds: &[(PathBuf, Vec<u8>)]) -> Vec<u8> {
    if rng.below(4) == 0 {
        let len = rng.below(160);
        return (0..len).map(|_| rng.next() as u8).collect();
    }
    let mut bytes = seeds[rng.below(seeds.len())].1.clone();
    for _ in 0..=rng.below(4) {
        let len = bytes.len();
        match rng.below(6) {
            0 if len > 0 => {
                let i = rng.below(len);
                bytes[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                bytes[i] = [0, 0xff, 0x7f, 0x80, b'{', b'"'][rng.below(6)];
            }
            2 => bytes.truncate(rng.below(len + 1)),
            3 if len > 0 => {
                let start = rng.below(len);
                let end = start + rng.below(len - start + 1);
                let slice = bytes[start..end].to_vec();
                let at = rng.below(len + 1);
                bytes.splice(at..at, slice);
            }
            4 => {
                let other = &seeds[rng.below(seeds.len())].1;
                let cut = rng.below(bytes.len() + 1);
                bytes.truncate(cut);
                bytes.extend_from_slice(&other[rng.below(other.len() + 1)..]);
            }
            _ => bytes.push(rng.next() as u8),
        }
    }
    bytes
}

#[test]
fn random_and_mutated_inputs_never_panic() {
    const INPUTS: usize = 100_000;
    for (n, (target, run)) in TARGETS.into_iter().enumerate() {
        let seeds = corpus(target);
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ n as u64);
        for i in 0..INPUTS / TARGETS.len() {
            let bytes = input(&mut rng, &seeds);
            let outcome = std::panic::catch_unwind(|| run(&bytes));
            assert!(
                outcome.is_ok(),
                "{target} panicked on input {i}: {bytes:02x?} (add it to fuzz/corpus/{target}/)"
            );
        }
    }
}
