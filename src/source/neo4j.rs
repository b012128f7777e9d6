//! Neo4j: the `neo4j-admin` commands for dump and load, and version and edition from the container.

use std::cmp::Ordering;

use super::docker::ContainerInfo;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edition {
    /// Must be stopped for a dump: rbk dumps from a one-off container.
    Community,
    /// Dumps online through `exec`.
    Enterprise,
}

impl Edition {
    pub fn of(c: &ContainerInfo) -> Edition {
        let enterprise = c
            .env_var("NEO4J_EDITION")
            .is_some_and(|e| e.eq_ignore_ascii_case("enterprise"))
            || c.image.contains("enterprise");
        if enterprise {
            Edition::Enterprise
        } else {
            Edition::Community
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Edition::Community => "community",
            Edition::Enterprise => "enterprise",
        }
    }
}

/// Streams the dump to stdout (Neo4j 5.19 and later, 2025.x, 2026.x); logs go to stderr.
pub fn dump_command(database: &str) -> Vec<String> {
    ["neo4j-admin", "database", "dump", database, "--to-stdout"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

pub fn load_command(database: &str) -> Vec<String> {
    [
        "neo4j-admin",
        "database",
        "load",
        database,
        "--from-stdin",
        "--overwrite-destination=true",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The Neo4j version a container runs: `NEO4J_VERSION` from its environment,
/// else the image tag (`neo4j:2026.01.4-community` -> `2026.01.4`).
pub fn version_of(c: &ContainerInfo) -> Option<String> {
    if let Some(v) = c.env_var("NEO4J_VERSION") {
        return Some(v);
    }
    let tag = c.image.rsplit_once(':')?.1;
    let v: String = tag
        .chars()
        .take_while(|ch| ch.is_ascii_digit() || *ch == '.')
        .collect();
    (!v.is_empty()).then_some(v)
}

/// Compares dotted versions numerically (`5.26.1` < `2025.01.0`).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    let parse = |s: &str| -> Vec<u64> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(a).cmp(&parse(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(compare_versions("5.26.1", "2025.01.0"), Ordering::Less);
        assert_eq!(compare_versions("2026.01.4", "2026.01.4"), Ordering::Equal);
        assert_eq!(compare_versions("5.9", "5.19"), Ordering::Less);
    }
}
