//! Fuzz: Neo4j dump detection and decoding, and the tar walker, on arbitrary bytes.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use rbk::codec::neo4j_dump::{Sniffed, sniff};
use rbk::codec::tar::walk;

fuzz_target!(|data: &[u8]| {
    let mut sink = Vec::new();
    match sniff(data) {
        Ok(Sniffed::Dump { mut inner, .. }) => drop(inner.read_to_end(&mut sink)),
        Ok(Sniffed::Plain { mut replay, .. }) => {
            // Plain input must come back byte for byte.
            if replay.read_to_end(&mut sink).is_ok() {
                assert_eq!(sink, data);
            }
        }
        Err(_) => {}
    }
    for entry in walk(data).take(10_000) {
        if entry.is_err() {
            break;
        }
    }
});
