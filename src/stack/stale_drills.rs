//! Restore drills a killed rbk left on the engine: found by their labels, and removed unless the rbk process that made them still runs.

use anyhow::Result;

use crate::source::docker::Engine;

/// A drill's id: the snapshot's short id and the pid of the rbk that runs it, so a later
/// run can tell a live drill (left alone) from a dead one's leftovers (removed).
pub fn drill_id(snapshot_short: &str, pid: u32) -> String {
    format!("{snapshot_short}-{pid}")
}

/// Removes the drills of `project` whose rbk process is gone; returns one line per drill
/// removed, for the caller to report.
pub async fn remove_stale_drills(engine: &Engine, project: &str) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for left in engine.drill_leftovers(project).await? {
        if still_running(left.drill.id()) {
            continue;
        }
        let t = engine.remove_drill(&left.drill).await?;
        removed.push(format!(
            "removed restore drill {} that an interrupted rbk left behind ({} containers, {} volumes, {} networks)",
            left.drill.id(),
            t.containers,
            t.volumes,
            t.networks
        ));
    }
    Ok(removed)
}

/// Whether the rbk whose pid ends the drill id still runs on this machine. An id of
/// another form (or a pid that is now another program) counts as gone.
fn still_running(drill: &str) -> bool {
    let Some(pid) = drill
        .rsplit_once('-')
        .and_then(|(_, p)| p.parse::<u32>().ok())
    else {
        return false;
    };
    if pid == std::process::id() {
        return true;
    }
    std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "rbk")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_live_rbk_keeps_its_drill() {
        assert!(still_running(&drill_id("abc", std::process::id())));
        // Not an rbk (pid 1 is init here), and no such pid, and not an id of ours.
        assert!(!still_running(&drill_id("abc", 1)));
        assert!(!still_running(&drill_id("abc", u32::MAX)));
        assert!(!still_running("no-pid-here"));
    }
}
