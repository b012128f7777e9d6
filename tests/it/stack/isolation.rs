//! Proves rbk removes only its own stack's leftover one-off containers: another stack's dump in flight on the same engine survives a snapshot, and a Ctrl-C, of this one.

use super::*;

/// Containers the test made by hand, removed however the test ends.
struct Made(Vec<String>);

impl Drop for Made {
    fn drop(&mut self) {
        for id in &self.0 {
            let _ = docker_out(&["rm", "-f", id]);
        }
    }
}

/// A running container labelled as an rbk one-off copying `copied`, in `project` (no project
/// label when `None`: as rbk made them before it labelled the project).
fn fake_oneoff(made: &mut Made, copied: &str, project: Option<&str>) -> String {
    let oneoff = format!("{ONEOFF_LABEL}={copied}");
    let mut args = vec!["run", "-d", "--label", oneoff.as_str()];
    let scoped = project.map(|p| format!("{ONEOFF_PROJECT_LABEL}={p}"));
    if let Some(l) = &scoped {
        args.extend(["--label", l.as_str()]);
    }
    args.extend([IMAGE, "sleep", "600"]);
    let id = docker(&args).trim().to_string();
    made.0.push(id.clone());
    id
}

fn exists(id: &str) -> bool {
    docker_out(&["inspect", id]).status.success()
}

/// Four leftovers: one of this project and one of another, each with and without the project
/// label. A snapshot removes exactly this project's two; the other project's two still run.
/// Then a snapshot interrupted mid-dump (whose signal task removes one-offs too) leaves them
/// running as well.
#[test]
fn stack_snapshot_removes_only_its_own_leftover_oneoffs() {
    let Some(_turn) = docker_test("stack_snapshot_removes_only_its_own_leftover_oneoffs") else {
        return;
    };
    let started = Instant::now();
    let stack = Stack::up("isolation", Variant::Postgres);
    let other = format!("rbkit_otherstack_{}", std::process::id());
    let other_neo4j = format!("{other}_neo4j_1");
    let mut made = Made(Vec::new());
    let own = fake_oneoff(&mut made, &stack.neo4j(), Some(&stack.project));
    let own_legacy = fake_oneoff(&mut made, &stack.neo4j(), None);
    let theirs = fake_oneoff(&mut made, &other_neo4j, Some(&other));
    let theirs_legacy = fake_oneoff(&mut made, &other_neo4j, None);

    let env = Env::new();
    stack_snapshot(&env, &[]);
    assert!(!exists(&own), "this project's leftover one-off was removed");
    assert!(
        !exists(&own_legacy),
        "this project's leftover one-off without the project label was removed"
    );
    for id in [&theirs, &theirs_legacy] {
        assert!(
            is_running(id),
            "another project's one-off {id} was left running"
        );
    }

    // The signal task's removal is scoped too.
    stack.settle();
    stack.graph(&["graph-fill", "2500"]);
    stack.set_knob("NEO4J_ADMIN_BYTES_PER_SEC", "50000");
    let child = rbk_cmd(&env, &["snapshot"]).spawn().expect("spawn rbk");
    wait_until(RBK_GUARD, "the one-off dump container runs", || {
        stack.running_oneoffs().len() == 1
    });
    // SAFETY: kill(2) on the pid of our own child, which has not been waited for.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
    let r = wait_with_guard(child, RBK_GUARD, "rbk snapshot after SIGINT");
    assert_eq!(r.code, 130, "{}", r.all());
    assert_eq!(
        stack.oneoffs(),
        Vec::<String>::new(),
        "rbk removed its dump"
    );
    for id in [&theirs, &theirs_legacy] {
        assert!(
            is_running(id),
            "another project's one-off {id} survived the signal task"
        );
    }
    stack.clear_knobs();
    stack.wait_running(&["rushdb", "neo4j"]);
    println!(
        "leftover one-offs scoped by project: whole test {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
