//! What a stack snapshot is made of, as backup writes it and restore reads it: part names and manifest labels.

use crate::store::manifest::Snapshot;

/// Part names, as `restore --to DIR` writes them; each store kind owns its own.
pub use crate::source::kind::graph::PART as PART_GRAPH;
pub use crate::source::kind::graph_volume::PART as PART_GRAPH_VOLUME;
pub use crate::source::kind::postgres::PART as PART_POSTGRES;
pub use crate::source::kind::sqlite::{PART as PART_SQLITE, PART_WAL as PART_SQLITE_WAL};
pub use crate::source::kind::volume::{part_of as volume_part, volume_of_part};

/// Manifest labels the stack layer writes (and `restore` reads).
pub mod label {
    pub const KIND: &str = "rbk.kind";
    pub const PROJECT: &str = "compose.project";
    pub const PAUSE_MS: &str = "pause.ms";
    pub const PAUSE_START: &str = "pause.start";
    /// JSON `[{"phase":NAME,"start_ms":N,"ms":N}, ...]`: the pause's phases
    /// (`stack/phases.rs`), each from the first stop.
    pub const PAUSE_PHASES: &str = "pause.phases";
    pub const RUSHDB_IMAGE: &str = "rushdb.image";
    pub const KEY_FINGERPRINT: &str = "rushdb.key_fingerprint";
    // Those that say what a store was belong to its kind (`source/kind`).
    pub use crate::source::kind::external::LABEL_URI as NEO4J_EXTERNAL;
    pub use crate::source::kind::graph::{
        LABEL_EDITION as NEO4J_EDITION, LABEL_IMAGE as NEO4J_IMAGE, LABEL_VERSION as NEO4J_VERSION,
    };
    pub use crate::source::kind::graph_volume::{
        LABEL_MODE as NEO4J_MODE, LABEL_STORE_FORMAT as NEO4J_STORE_FORMAT,
    };
    pub use crate::source::kind::postgres::{
        LABEL_SQL_IMAGE as SQL_IMAGE, LABEL_SQL_KIND as SQL_KIND,
    };
    pub use crate::source::kind::sqlite::LABEL_SQLITE_PATH as SQLITE_PATH;
    /// `--volumes`: the names of the volumes archived, comma-separated (may be empty).
    pub const VOLUMES: &str = "volumes";
    /// JSON `{"nodes":N,"relationships":N}`, counted in the pause (`stack/counts.rs`).
    pub const NEO4J_COUNTS: &str = "neo4j.counts";
    /// JSON `{"<table>":rows,...}`, counted in the pause (`stack/counts.rs`).
    pub const SQL_ROWS: &str = "sql.rows";
    /// How long the counts took, in ms (they are part of the pause).
    pub const COUNTS_MS: &str = "counts.ms";
    /// Volume mode: how long the pre-copy of the Neo4j data volume took, before the pause.
    pub const PRECOPY_MS: &str = "neo4j.precopy_ms";
    /// Volume mode: the scans' figures (JSON; FORMAT.md).
    pub const VOLUME_SCAN: &str = "neo4j.volume_scan";
    /// JSON `["warning", ...]`: what the snapshot warned of, so that `rbk status` can still
    /// say it the next day. Absent when there was nothing to say.
    pub const WARNINGS: &str = "rbk.warnings";
}

/// The most warnings a manifest keeps, and the longest kept (a snapshot of many volumes
/// must not carry a page of prose in each manifest).
const MAX_WARNINGS: usize = 20;
const MAX_WARNING_LEN: usize = 500;

/// Records `warnings` in a manifest about to be committed (label `rbk.warnings`).
pub fn set_warnings(s: &mut Snapshot, warnings: &[String]) {
    if warnings.is_empty() {
        return;
    }
    let kept: Vec<String> = warnings
        .iter()
        .take(MAX_WARNINGS)
        .map(|w| {
            let mut end = w.len().min(MAX_WARNING_LEN);
            while !w.is_char_boundary(end) {
                end -= 1;
            }
            w[..end].to_string()
        })
        .collect();
    let json = serde_json::to_string(&kept).unwrap_or_default();
    s.labels.push((label::WARNINGS.into(), json));
}

/// The warnings a snapshot recorded (none for one taken before they were recorded, or a
/// label that is not a JSON array of strings: it is free-form, so never trusted).
pub fn warnings(s: &Snapshot) -> Vec<String> {
    label_value(s, label::WARNINGS)
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default()
}

/// The context under which the key's fingerprint is computed.
pub const KEY_FINGERPRINT_CONTEXT: &str = "rushdb-aes-256-encryption-key";

/// The value of a snapshot's label `key`, if it has one.
pub fn label_value<'a>(s: &'a Snapshot, key: &str) -> Option<&'a str> {
    s.labels
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// The write-pause window a stack snapshot recorded.
pub fn pause_ms(s: &Snapshot) -> Option<u64> {
    label_value(s, label::PAUSE_MS)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_parts_are_file_names_that_name_their_volume() {
        let name = volume_part("rushdb-uploads");
        assert_eq!(name, "volume.rushdb-uploads.tar");
        assert_eq!(crate::parts::new_part_name_problem(&name), None);
        assert_eq!(volume_of_part(&name), Some("rushdb-uploads"));
        assert_eq!(volume_of_part("volume.a.b.tar"), Some("a.b"));
        for other in [
            PART_GRAPH,
            PART_POSTGRES,
            PART_SQLITE,
            "volume..tar",
            "volume.x",
        ] {
            assert_eq!(volume_of_part(other), None, "{other}");
        }
    }
}
