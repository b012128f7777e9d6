//! What a stack snapshot is made of, as backup writes it and restore reads it: part names and manifest labels.

use crate::store::manifest::Snapshot;

/// Part names, as `restore --to DIR` writes them.
pub const PART_GRAPH: &str = "neo4j.dump";
pub const PART_POSTGRES: &str = "metadata.sql";
pub const PART_SQLITE: &str = "rushdb.db";
/// The SQLite write-ahead log beside the file, when one was left (RushDB
/// killed rather than stopped): committed transactions may live only there,
/// so the file without it is not a consistent copy.
pub const PART_SQLITE_WAL: &str = "rushdb.db-wal";

/// The part holding a volume's tar archive (`--volumes`): `volume.<name>.tar`. Part names
/// are file names (no `/`), so the prefix is joined by a dot.
pub fn volume_part(name: &str) -> String {
    format!("volume.{name}.tar")
}

/// The volume name of a volume part, or `None` for any other part.
pub fn volume_of_part(part: &str) -> Option<&str> {
    part.strip_prefix("volume.")?
        .strip_suffix(".tar")
        .filter(|n| !n.is_empty())
}

/// Manifest labels the stack layer writes (and `restore` reads).
pub mod label {
    pub const KIND: &str = "rbk.kind";
    pub const PROJECT: &str = "compose.project";
    pub const PAUSE_MS: &str = "pause.ms";
    pub const PAUSE_START: &str = "pause.start";
    pub const RUSHDB_IMAGE: &str = "rushdb.image";
    pub const KEY_FINGERPRINT: &str = "rushdb.key_fingerprint";
    pub const NEO4J_IMAGE: &str = "neo4j.image";
    pub const NEO4J_VERSION: &str = "neo4j.version";
    pub const NEO4J_EDITION: &str = "neo4j.edition";
    pub const NEO4J_EXTERNAL: &str = "neo4j.external_uri";
    pub const SQL_KIND: &str = "sql.kind";
    pub const SQL_IMAGE: &str = "sql.image";
    pub const SQLITE_PATH: &str = "sqlite.path";
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
