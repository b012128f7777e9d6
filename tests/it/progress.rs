//! Progress output: bars only on a terminal, never in a log; JSON lines that add up to the report.

use std::process::Command;

use serde_json::Value;

use crate::json::{Rules, assert_shape};
use crate::util::{BIN, Env, PASSWORD, random_bytes, u64_of};

/// What a drawn bar leaves in a byte stream: carriage returns, escape
/// sequences, and the words of rbk's bar templates.
fn bar_traces(s: &str) -> Vec<&'static str> {
    let mut found = Vec::new();
    if s.contains('\r') {
        found.push("a carriage return");
    }
    if s.contains('\x1b') {
        found.push("an escape sequence");
    }
    if s.contains("ETA") {
        found.push("an ETA");
    }
    if s.contains("] ") && s.contains('[') {
        found.push("a bar");
    }
    found
}

/// Every command that shows progress, in an order that leaves each one work to do.
fn long_commands(env: &Env) -> Vec<Vec<String>> {
    let data = env.write("data.bin", &random_bytes(24 << 20, 7));
    let data = data.to_string_lossy().into_owned();
    let out = env.path("out").to_string_lossy().into_owned();
    [
        vec!["snapshot", "--path", &data],
        vec!["snapshot", "--path", &data],
        // Run more than once into the same directory: replacing its files is asked for.
        vec!["restore", "latest", "--to", &out, "--overwrite"],
        vec!["check", "--read-data"],
        vec!["prune", "--keep-last", "1"],
    ]
    .into_iter()
    .map(|a| a.into_iter().map(String::from).collect())
    .collect()
}

#[test]
fn progress_never_appears_when_stderr_is_not_a_terminal() {
    let env = Env::new();
    for args in long_commands(&env) {
        for extra in [&[][..], &["-v"][..], &["--progress", "auto"][..]] {
            let mut all: Vec<&str> = extra.to_vec();
            all.extend(args.iter().map(String::as_str));
            // `Env::run` captures stderr through a pipe: what cron or systemd sees.
            let r = env.ok(&all);
            let traces = bar_traces(&r.stderr);
            assert!(
                traces.is_empty(),
                "rbk {all:?} wrote {traces:?} to a stderr that is not a terminal:\n{}",
                r.stderr
            );
            if extra.is_empty() {
                assert_eq!(r.stderr, "", "rbk {all:?} wrote to stderr");
            }
        }
    }
}

/// Runs `rbk ARGS` with stdout and stderr on a pseudo-terminal (util-linux
/// `script`), returning what the terminal received.
fn on_a_terminal(env: &Env, args: &[String]) -> String {
    let mut line = format!("'{BIN}'");
    for a in args {
        line.push_str(&format!(" '{a}'"));
    }
    let out = Command::new("script")
        .args(["-qefc", &line, "/dev/null"])
        .env("RBK_REPO", &env.repo)
        .env("RBK_PASSWORD", PASSWORD)
        .env_remove("RBK_PROGRESS")
        .env_remove("RBK_LOG")
        .output()
        .expect("util-linux `script` runs rbk on a pseudo-terminal");
    assert!(out.status.success(), "{line}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The control for the test above: the same detector does see bars when
/// there is a terminal, so its silence there means something.
#[test]
fn bars_are_drawn_on_a_terminal_and_quiet_hides_them() {
    let env = Env::new();
    for args in long_commands(&env) {
        let seen = on_a_terminal(&env, &args);
        assert!(
            !bar_traces(&seen).is_empty() && seen.contains('['),
            "rbk {args:?} drew no progress on a terminal:\n{seen:?}"
        );
    }
    for args in long_commands(&env) {
        let mut quiet = vec!["--quiet".to_string()];
        quiet.extend(args);
        let seen = on_a_terminal(&env, &quiet);
        assert!(
            !seen.contains("ETA") && !seen.contains('\x1b'),
            "rbk {quiet:?} drew progress:\n{seen:?}"
        );
    }
}

/// `--progress json`: each stderr line one event; a task's end adds up to the report.
/// Each has the shape docs/JSON.md documents.
fn events(stderr: &str) -> Vec<Value> {
    let events: Vec<Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}")))
        .collect();
    let rules = Rules {
        nullable: &["total"],
        maps: &[],
        keyed: &[],
    };
    for e in &events {
        assert_shape(e, "progress-event", rules);
    }
    events
}

fn end_of<'a>(events: &'a [Value], label: &str) -> &'a Value {
    let ends: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "end" && e["label"] == label)
        .collect();
    assert_eq!(ends.len(), 1, "one end event for {label}: {events:?}");
    ends[0]
}

#[test]
fn json_progress_lines_add_up_to_the_report() {
    let env = Env::new();
    let size = 20 << 20;
    let data = env.write("graph.bin", &random_bytes(size, 3));
    let data = data.to_string_lossy().into_owned();

    let mut reports = Vec::new();
    for _ in 0..2 {
        let r = env.ok(&["--json", "--progress", "json", "snapshot", "--path", &data]);
        let ev = events(&r.stderr);
        // Every task that starts ends, and ids are not reused.
        let starts: Vec<u64> = ev
            .iter()
            .filter(|e| e["type"] == "start")
            .map(|e| u64_of(e, "task"))
            .collect();
        let ends: Vec<u64> = ev
            .iter()
            .filter(|e| e["type"] == "end")
            .map(|e| u64_of(e, "task"))
            .collect();
        assert_eq!(starts, ends, "{ev:?}");
        let end = end_of(&ev, "graph.bin");
        let report = r.json();
        assert_eq!(u64_of(end, "done"), size as u64, "{end}");
        assert_eq!(end["total"], Value::from(size as u64), "{end}");
        assert_eq!(end["unit"], "bytes");
        assert_eq!(
            u64_of(end, "added"),
            u64_of(&report, "bytes_added"),
            "{end} vs {report}"
        );
        reports.push(report);
    }
    assert!(u64_of(&reports[0], "bytes_added") > size as u64 / 2);
    assert_eq!(u64_of(&reports[1], "bytes_added"), 0, "{}", reports[1]);

    let out = env.path("out").to_string_lossy().into_owned();
    let r = env.ok(&["--progress", "json", "restore", "latest", "--to", &out]);
    let restored = end_of(&events(&r.stderr), "graph.bin").clone();
    assert_eq!(u64_of(&restored, "done"), size as u64, "{restored}");

    let r = env.ok(&["--json", "--progress", "json", "check", "--read-data"]);
    let ev = events(&r.stderr);
    let read = end_of(&ev, "read packs");
    assert_eq!(
        u64_of(read, "done"),
        u64_of(&r.json(), "bytes_read"),
        "{read}"
    );
    let snaps = end_of(&ev, "snapshots");
    assert_eq!((u64_of(snaps, "done"), u64_of(snaps, "total")), (2, 2));

    // Forget the first; the second holds the same chunks, so nothing is
    // repacked and no pack is deleted: prune shows only its snapshot pass.
    let r = env.ok(&["--json", "--progress", "json", "prune", "--keep-last", "1"]);
    let ev = events(&r.stderr);
    assert_eq!(u64_of(end_of(&ev, "snapshots"), "done"), 1);
    assert!(ev.iter().all(|e| e["label"] != "repack"), "{ev:?}");
}
