//! What a stack snapshot is made of, as backup writes it and restore reads it: part names and manifest labels.

use crate::store::manifest::Snapshot;

/// Part names, as `restore --to DIR` writes them; each store kind owns its own.
pub use crate::source::kind::graph::PART as PART_GRAPH;
pub use crate::source::kind::postgres::PART as PART_POSTGRES;
pub use crate::source::kind::sqlite::{PART as PART_SQLITE, PART_WAL as PART_SQLITE_WAL};
pub use crate::source::kind::volume::{part_of as volume_part, volume_of_part};

/// Manifest labels the stack layer writes (and `restore` reads).
pub mod label {
    pub const KIND: &str = "rbk.kind";
    pub const PROJECT: &str = "compose.project";
    pub const PAUSE_MS: &str = "pause.ms";
    pub const PAUSE_START: &str = "pause.start";
    pub const RUSHDB_IMAGE: &str = "rushdb.image";
    pub const KEY_FINGERPRINT: &str = "rushdb.key_fingerprint";
    // Those that say what a store was belong to its kind (`source/kind`).
    pub use crate::source::kind::external::LABEL_URI as NEO4J_EXTERNAL;
    pub use crate::source::kind::graph::{
        LABEL_EDITION as NEO4J_EDITION, LABEL_IMAGE as NEO4J_IMAGE, LABEL_VERSION as NEO4J_VERSION,
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
}

/// The context under which the key's fingerprint is computed.
pub const KEY_FINGERPRINT_CONTEXT: &str = "rushdb-aes-256-encryption-key";

/// The write-pause window a stack snapshot recorded.
pub fn pause_ms(s: &Snapshot) -> Option<u64> {
    s.labels
        .iter()
        .find(|(k, _)| k == label::PAUSE_MS)?
        .1
        .parse()
        .ok()
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
