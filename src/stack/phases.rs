//! The write pause taken apart: when each phase began and how long it took, recorded in the manifest (label `pause.phases`) so users see where their downtime goes.
//!
//! Phases may overlap (the graph and the SQL are dumped at once, and Neo4j starts again
//! while the SQL dump is still running), so each carries its start as well as its length,
//! both in milliseconds from the pause's first stop.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::names::{label, label_value};
use crate::source::kind::Role;
use crate::store::manifest::Snapshot;

/// Phase names, as the manifest and `snapshot --json` show them.
pub mod phase {
    pub const STOP_RUSHDB: &str = "stop rushdb";
    pub const COUNT: &str = "count stores";
    pub const STOP_NEO4J: &str = "stop neo4j";
    pub const STOP_DATABASE: &str = "stop neo4j database";
    pub const DUMP_GRAPH: &str = "dump neo4j";
    /// Volume mode: the data volume's paused pass.
    pub const ARCHIVE_GRAPH: &str = "archive neo4j volume";
    pub const DUMP_SQL: &str = "dump sql";
    pub const ARCHIVE_VOLUMES: &str = "archive volumes";
    pub const START_NEO4J: &str = "start neo4j";
    pub const START_DATABASE: &str = "start neo4j database";
    pub const WAIT_NEO4J: &str = "wait neo4j healthy";
    pub const START_RUSHDB: &str = "start rushdb";
    /// Host mode: `pause_command` and `resume_command`.
    pub const PAUSE_WRITES: &str = "pause writes";
    pub const RESUME_WRITES: &str = "resume writes";
}

/// The phase in which the stores of `role` are read.
pub fn dump_phase(role: Role) -> &'static str {
    match role {
        Role::Graph => phase::DUMP_GRAPH,
        Role::Sql => phase::DUMP_SQL,
        Role::Volume => phase::ARCHIVE_VOLUMES,
    }
}

/// One phase: `start_ms` after the pause began, lasting `ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phase {
    pub phase: String,
    pub start_ms: u64,
    pub ms: u64,
}

/// Collects phases from any thread; clones share the list.
#[derive(Clone)]
pub struct Phases {
    origin: Instant,
    done: Arc<Mutex<Vec<Phase>>>,
}

impl Phases {
    /// The pause begins now: every start is measured from here.
    pub fn begin() -> Phases {
        Phases {
            origin: Instant::now(),
            done: Arc::default(),
        }
    }

    /// Runs `f` as the phase `name`; it is recorded whether `f` succeeds or not (a failed
    /// dump took that long too).
    pub fn time<T>(&self, name: &str, f: impl FnOnce() -> T) -> T {
        let began = Instant::now();
        let out = f();
        self.record(name, began);
        out
    }

    /// Records the phase `name` as running from `began` until now.
    pub fn record(&self, name: &str, began: Instant) {
        let ms = |i: Instant| i.saturating_duration_since(self.origin).as_millis() as u64;
        let (start_ms, end_ms) = (ms(began), ms(Instant::now()));
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        done.push(Phase {
            phase: name.to_string(),
            start_ms,
            ms: end_ms.saturating_sub(start_ms),
        });
    }

    /// The phases so far, in the order they began.
    pub fn list(&self) -> Vec<Phase> {
        let mut list = self.done.lock().unwrap_or_else(|p| p.into_inner()).clone();
        list.sort_by_key(|p| p.start_ms);
        list
    }

    /// The manifest label that records them.
    pub fn label(&self) -> (String, String) {
        let json = serde_json::to_string(&self.list()).unwrap_or_else(|_| "[]".into());
        (label::PAUSE_PHASES.into(), json)
    }
}

/// The phases a snapshot recorded; `None` before rbk recorded them, or for a snapshot of
/// parts, or if the label does not parse (a manifest is read, never trusted to be ours).
pub fn phases(s: &Snapshot) -> Option<Vec<Phase>> {
    serde_json::from_str(label_value(s, label::PAUSE_PHASES)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_overlap_and_come_back_in_the_order_they_began() {
        let phases = Phases::begin();
        let (a, b) = (phases.clone(), phases.clone());
        let early = Instant::now();
        std::thread::sleep(std::time::Duration::from_millis(30));
        let t = std::thread::spawn(move || a.time("second", || 5));
        b.record("first", early);
        assert_eq!(t.join().unwrap(), 5);
        let list = phases.list();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].phase, "first");
        assert_eq!(list[0].start_ms, 0);
        assert!(list[0].ms >= 30, "{list:?}");
        assert!(list[1].start_ms >= 30, "{list:?}");
    }

    #[test]
    fn the_label_reads_back_and_a_foreign_one_is_ignored() {
        let phases = Phases::begin();
        phases.time(phase::STOP_RUSHDB, || ());
        let mut s = Snapshot {
            time: "2026-12-07T08:00:00Z".into(),
            host: "h".into(),
            tags: Vec::new(),
            parts: Vec::new(),
            labels: Vec::new(),
            stats: Default::default(),
        };
        s.labels.push(phases.label());
        assert_eq!(super::phases(&s), Some(phases.list()));
        s.labels = vec![(label::PAUSE_PHASES.into(), "{not json".into())];
        assert_eq!(super::phases(&s), None);
        s.labels.clear();
        assert_eq!(super::phases(&s), None);
    }
}
