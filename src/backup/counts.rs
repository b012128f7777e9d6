//! The figures a restore drill compares against, counted in the write pause: the graph through cypher-shell while Neo4j still runs, the SQL tables through psql.

use std::time::Instant;

use tokio::runtime::Runtime;

use crate::source::docker::Engine;
use crate::source::neo4j::Database;
use crate::source::postgres::parse_row_counts;
use crate::stack::counts::{self, GraphCounts, TableRows};
use crate::stack::discover::{GraphStore, SqlStore, Stack, StackConfig};

/// What was counted, as manifest labels, and why anything was not.
pub struct Counted {
    pub labels: Vec<(String, String)>,
    pub warnings: Vec<String>,
    pub ms: u64,
}

/// Counts what can be counted, after RushDB stopped and before Neo4j stops. A count that
/// fails is a warning, never a failed snapshot: the dumps are what a restore needs, the
/// counts only what a drill checks them against. A Neo4j the operator stopped, an external
/// one, and SQLite (whose file rbk copies but cannot query: the RushDB image has no
/// `sqlite3`) are not counted.
pub fn count_stores(rt: &Runtime, engine: &Engine, stack: &Stack, config: &StackConfig) -> Counted {
    let began = Instant::now();
    let mut warnings = Vec::new();
    let graph: Option<GraphCounts> = match &stack.graph {
        GraphStore::Bundled { container, .. } if container.running => {
            let db = Database::new(container, &config.neo4j_database, config.neo4j_auth.clone());
            match rt.block_on(db.counts(engine)) {
                Ok(c) => Some(c),
                Err(e) => {
                    warnings.push(format!(
                        "the graph was not counted, so a restore drill cannot compare counts: {e:#}"
                    ));
                    None
                }
            }
        }
        _ => None,
    };
    let rows: Option<TableRows> = match &stack.sql {
        SqlStore::Postgres { container, target } if container.running => {
            let query = engine.exec_output(
                container,
                target.count_rows_command(),
                target.env(),
                None,
                std::time::Duration::from_secs(60),
            );
            match rt
                .block_on(query)
                .and_then(|out| parse_row_counts(&out).map_err(anyhow::Error::msg))
            {
                Ok(rows) => Some(rows),
                Err(e) => {
                    warnings.push(format!(
                        "the SQL tables were not counted, so a restore drill cannot compare rows: {e:#}"
                    ));
                    None
                }
            }
        }
        _ => None,
    };
    Counted {
        labels: counts::labels(graph.as_ref(), rows.as_ref()),
        warnings,
        ms: u64::try_from(began.elapsed().as_millis()).unwrap_or(u64::MAX),
    }
}
