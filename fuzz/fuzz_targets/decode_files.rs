//! Fuzz: every decoder of repository plaintext (config, key files, pack headers, index, snapshots, locks, deletion and verification records, list blobs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rbk::store::config::Config;
use rbk::store::format::decode_plain;
use rbk::store::index::IndexFile;
use rbk::store::keys::KeyFile;
use rbk::store::lock::LockInfo;
use rbk::store::manifest::{Snapshot, decode_list};
use rbk::store::pack::PackEntry;
use rbk::store::prune::DeletionRecord;
use rbk::store::verification::Verification;

fuzz_target!(|data: &[u8]| {
    // The first byte picks the decoder; none may panic or over-allocate.
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 9 {
        0 => drop(decode_plain::<Config>("f", 1, rest)),
        1 => drop(KeyFile::decode("f", rest)),
        2 => drop(decode_plain::<Vec<PackEntry>>("f", 1, rest)),
        3 => drop(decode_plain::<IndexFile>("f", 1, rest)),
        4 => drop(decode_plain::<Snapshot>("f", 1, rest)),
        5 => drop(decode_plain::<LockInfo>("f", 2, rest)),
        6 => drop(decode_plain::<DeletionRecord>("f", 1, rest)),
        7 => drop(decode_list(rest)),
        _ => drop(decode_plain::<Verification>("f", 1, rest)),
    }
});
