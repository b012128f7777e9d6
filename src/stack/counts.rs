//! What the stores held when a stack snapshot was taken, counted in the write pause: the graph's nodes and relationships, and the rows of every SQL table, kept in the manifest so a restore drill can compare.
//!
//! Counted after RushDB stopped and before Neo4j did, so no write falls between the counts
//! and the dumps: a restore of the snapshot must show exactly these figures. They are kept
//! as two manifest labels holding JSON (`neo4j.counts`, `sql.rows`; docs/FORMAT.md), so
//! that older readers, which ignore labels they do not know, still read the manifest.

use super::names::label;
pub use crate::source::neo4j::GraphCounts;
pub use crate::source::postgres::TableRows;
use crate::store::manifest::Snapshot;

/// The labels that carry `graph` and `rows`, for those that were counted.
pub fn labels(graph: Option<&GraphCounts>, rows: Option<&TableRows>) -> Vec<(String, String)> {
    let mut l = Vec::new();
    // Serialising a struct of integers or a map of strings to integers cannot fail.
    if let Some(Ok(json)) = graph.map(serde_json::to_string) {
        l.push((label::NEO4J_COUNTS.to_string(), json));
    }
    if let Some(Ok(json)) = rows.map(serde_json::to_string) {
        l.push((label::SQL_ROWS.to_string(), json));
    }
    l
}

/// The graph counts a snapshot recorded; `None` when it has none (taken before rbk counted,
/// a server that was not running, an external Neo4j) or the label does not parse.
pub fn graph_counts(s: &Snapshot) -> Option<GraphCounts> {
    serde_json::from_str(label_value(s, label::NEO4J_COUNTS)?).ok()
}

/// The table rows a snapshot recorded, like [`graph_counts`].
pub fn table_rows(s: &Snapshot) -> Option<TableRows> {
    serde_json::from_str(label_value(s, label::SQL_ROWS)?).ok()
}

fn label_value<'a>(s: &'a Snapshot, key: &str) -> Option<&'a str> {
    s.labels
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// How `found` differs from `expected`: one plain line per table that is missing, extra,
/// or has another number of rows; empty when they agree.
pub fn row_differences(expected: &TableRows, found: &TableRows) -> Vec<String> {
    let mut out = Vec::new();
    for (table, want) in expected {
        match found.get(table) {
            None => out.push(format!("{table}: missing (had {want} rows)")),
            Some(got) if got != want => out.push(format!("{table}: {got} rows, expected {want}")),
            Some(_) => {}
        }
    }
    for (table, got) in found {
        if !expected.contains_key(table) {
            out.push(format!("{table}: not in the snapshot ({got} rows)"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(labels: Vec<(String, String)>) -> Snapshot {
        Snapshot {
            time: String::new(),
            host: String::new(),
            tags: Vec::new(),
            parts: Vec::new(),
            labels,
            stats: Default::default(),
        }
    }

    #[test]
    fn counts_survive_the_manifest_labels() {
        let graph = GraphCounts {
            nodes: 171,
            relationships: 253,
        };
        let rows = TableRows::from([("public.projects".into(), 3), ("public.a=b,c".into(), 0)]);
        let s = snapshot(labels(Some(&graph), Some(&rows)));
        assert_eq!(graph_counts(&s), Some(graph));
        assert_eq!(table_rows(&s), Some(rows));
        assert_eq!(graph_counts(&snapshot(Vec::new())), None);
        let garbled = snapshot(vec![(label::NEO4J_COUNTS.into(), "{nodes".into())]);
        assert_eq!(graph_counts(&garbled), None);
    }

    #[test]
    fn differences_name_each_table() {
        let expected = TableRows::from([("a".into(), 1), ("b".into(), 2), ("c".into(), 3)]);
        let found = TableRows::from([("a".into(), 1), ("b".into(), 5), ("d".into(), 0)]);
        assert_eq!(
            row_differences(&expected, &found),
            [
                "b: 5 rows, expected 2",
                "c: missing (had 3 rows)",
                "d: not in the snapshot (0 rows)"
            ]
        );
        assert!(row_differences(&expected, &expected).is_empty());
    }
}
