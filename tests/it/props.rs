//! Proves, over generated sizes (0 B to 4 MiB, small ones most often, plus one fixed case
//! near 64 MiB) and contents (random, zeros, short and long repeats, text, mixtures), that a
//! snapshot restores to the same bytes. Uses the library directly, so cases stay fast.

use std::path::Path;

use proptest::prelude::*;
use proptest::test_runner::RngSeed;
use rbk::backup::{PartSpec, SnapshotOptions, snapshot};
use rbk::parts::PartInput;
use rbk::restore::restore_to_dir;

use crate::util::*;

#[derive(Debug, Clone, Copy)]
enum Content {
    Random,
    Zeros,
    /// A random unit of this length, repeated: dedups within the stream itself.
    Repeated(usize),
    Text,
    /// Runs of the kinds above, back to back.
    Mixed,
}

fn make(content: Content, size: usize, seed: u64) -> Vec<u8> {
    match content {
        Content::Random => random_bytes(size, seed),
        Content::Zeros => vec![0; size],
        Content::Repeated(period) => repeated(size, period, seed),
        Content::Text => text_bytes(size, seed),
        Content::Mixed => {
            let mut rng = crate::util::Rng::new(seed);
            let mut out = Vec::with_capacity(size);
            while out.len() < size {
                let run = (rng.below(300_000) as usize + 1).min(size - out.len());
                let kind = match rng.below(4) {
                    0 => Content::Random,
                    1 => Content::Zeros,
                    2 => Content::Repeated(rng.below(5000) as usize + 1),
                    _ => Content::Text,
                };
                out.extend_from_slice(&make(kind, run, rng.next_u64()));
            }
            out
        }
    }
}

fn content() -> impl Strategy<Value = Content> {
    prop_oneof![
        Just(Content::Random),
        Just(Content::Zeros),
        (1usize..70_000).prop_map(Content::Repeated),
        Just(Content::Text),
        Just(Content::Mixed),
    ]
}

/// Small sizes most often: that is where boundary mistakes live.
fn size() -> impl Strategy<Value = usize> {
    prop_oneof![
        4 => 0usize..=1024,
        3 => 1025usize..=300_000,
        2 => 300_001usize..=4 * MIB,
    ]
}

/// Snapshots `parts` into a fresh repository through the library and restores them.
fn round_trip(dir: &Path, parts: &[(String, Vec<u8>)]) {
    let repo = init_repo_lib(&dir.join("repo"));
    let mut specs = Vec::new();
    for (name, data) in parts {
        let p = dir.join(format!("in-{name}"));
        std::fs::write(&p, data).unwrap();
        specs.push(PartSpec {
            name: name.clone(),
            input: PartInput::File(p),
        });
    }
    let options = SnapshotOptions {
        parts: specs,
        ..SnapshotOptions::default()
    };
    let saved = snapshot(&repo, &options).expect("snapshot");
    let (id, snap) = (saved.id, saved.snapshot);
    for (part, (name, data)) in snap.parts.iter().zip(parts) {
        assert_eq!((&part.name, part.source_size), (name, data.len() as u64));
    }
    let out = dir.join("out");
    let (_, _, restored) = restore_to_dir(&repo, &id.to_hex(), &out, &[], false).expect("restore");
    assert_eq!(restored.len(), parts.len());
    for (name, data) in parts {
        assert_file_is(&out.join(name), data, name);
    }
}

/// A fixed seed keeps CI reproducible; `PROPTEST_RNG_SEED` explores other cases.
fn config() -> ProptestConfig {
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_2B4B);
    ProptestConfig {
        cases: 24,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// One to three parts of generated sizes and contents in one snapshot.
    #[test]
    fn snapshot_then_restore_gives_back_the_same_bytes(
        parts in prop::collection::vec((size(), content(), any::<u64>()), 1..=3)
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let parts: Vec<(String, Vec<u8>)> = parts
            .iter()
            .enumerate()
            .map(|(i, &(size, content, seed))| (format!("part-{i}"), make(content, size, seed)))
            .collect();
        round_trip(tmp.path(), &parts);
    }
}

/// The one large case: just under 64 MiB of mixed content, many packs' worth of chunks and
/// several list blobs.
#[test]
fn a_part_of_nearly_64_mib_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let size = 64 * MIB - 7;
    round_trip(
        tmp.path(),
        &[("big.bin".to_string(), make(Content::Mixed, size, 64))],
    );
}
