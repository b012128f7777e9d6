//! Proves `--json` holds to docs/JSON.md: each command's output, parsed, has the shape of the
//! documented example (the same keys, each value of the same JSON type), and each command ends
//! with the exit code the README names (0 ok, 6 warnings, 1 failed, 2 usage, 3 damaged,
//! 4 locked, 5 wrong password).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;

use clap::CommandFactory;
use rbk::cli::Cli;
use serde_json::Value;

use crate::util::*;

const DOC: &str = include_str!("../../docs/JSON.md");

/// The marker that names the JSON block after it, invisible in the rendered page.
const MARKER: &str = "<!-- example: ";

/// docs/JSON.md's example blocks by the name in their `<!-- example: NAME -->` marker.
fn examples() -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let mut lines = DOC.lines();
    while let Some(line) = lines.next() {
        let Some(name) = line
            .trim()
            .strip_prefix(MARKER)
            .and_then(|r| r.strip_suffix("-->"))
        else {
            continue;
        };
        let name = name.trim().to_string();
        let fence = lines.find(|l| !l.trim().is_empty());
        assert_eq!(
            fence.map(str::trim),
            Some("```json"),
            "example {name}: a ```json block must follow its marker"
        );
        let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
        let value = serde_json::from_str(&body.join("\n"))
            .unwrap_or_else(|e| panic!("example {name} in docs/JSON.md is not JSON: {e}"));
        assert!(
            out.insert(name.clone(), value).is_none(),
            "example {name} appears twice"
        );
    }
    out
}

fn example(name: &str) -> Value {
    examples()
        .remove(name)
        .unwrap_or_else(|| panic!("docs/JSON.md has no example {name}"))
}

/// What the docs allow beyond the example's own shape, by path (`parts[].a`: the key `a` of
/// every element of the array `parts`; the root is "").
#[derive(Default, Clone, Copy)]
pub struct Rules {
    /// May be null (the docs say when), and the example may show either.
    pub nullable: &'static [&'static str],
    /// Objects whose keys are data (labels), with string values.
    pub maps: &'static [&'static str],
    /// Objects whose keys are data (verification kinds), each value of the shape of one of
    /// the values the docs show there.
    pub keyed: &'static [&'static str],
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Every way `actual` differs in shape from the documented `doc`: objects by their key set,
/// arrays element by element (each element must have the shape of one documented element; an
/// array documented empty must be empty), everything else by JSON type.
fn shape_diff(actual: &Value, doc: &Value, rules: Rules, path: &str) -> Vec<String> {
    let at = if path.is_empty() { "(root)" } else { path };
    if actual.is_null() || doc.is_null() {
        if actual.is_null() == doc.is_null() || rules.nullable.contains(&path) {
            return Vec::new();
        }
        return vec![format!(
            "{at}: {} where the docs show {} (not documented as nullable)",
            kind(actual),
            kind(doc)
        )];
    }
    match (actual, doc) {
        (Value::Object(a), Value::Object(_)) if rules.maps.contains(&path) => a
            .iter()
            .filter(|(_, v)| !v.is_string())
            .map(|(k, v)| format!("{at}.{k}: {} in a map of strings", kind(v)))
            .collect(),
        (Value::Object(a), Value::Object(d)) if rules.keyed.contains(&path) => {
            let elem = join(path, "*");
            let mut out = Vec::new();
            for (k, x) in a {
                let tries: Vec<Vec<String>> =
                    d.values().map(|y| shape_diff(x, y, rules, &elem)).collect();
                if !tries.iter().any(Vec::is_empty) {
                    out.push(format!("{at}.{k} has the shape of no documented value:"));
                    out.extend(tries.into_iter().next().unwrap_or_else(|| {
                        vec!["the docs show no value to compare with".to_string()]
                    }));
                }
            }
            out
        }
        (Value::Object(a), Value::Object(d)) => {
            let (ak, dk): (BTreeSet<&String>, BTreeSet<&String>) =
                (a.keys().collect(), d.keys().collect());
            let mut out: Vec<String> = dk
                .difference(&ak)
                .map(|k| format!("{at}: documented key {k:?} is missing"))
                .chain(
                    ak.difference(&dk)
                        .map(|k| format!("{at}: key {k:?} is not documented")),
                )
                .collect();
            for k in ak.intersection(&dk) {
                out.extend(shape_diff(&a[*k], &d[*k], rules, &join(path, k)));
            }
            out
        }
        (Value::Array(a), Value::Array(d)) => {
            let elem = format!("{path}[]");
            if d.is_empty() {
                return if a.is_empty() {
                    Vec::new()
                } else {
                    vec![format!(
                        "{at}: {} element(s), but the docs show no element to compare with",
                        a.len()
                    )]
                };
            }
            let mut out = Vec::new();
            for (i, x) in a.iter().enumerate() {
                let tries: Vec<Vec<String>> =
                    d.iter().map(|y| shape_diff(x, y, rules, &elem)).collect();
                if !tries.iter().any(Vec::is_empty) {
                    out.push(format!("{at}[{i}] has the shape of no documented element:"));
                    out.extend(tries.into_iter().next().unwrap_or_default());
                }
            }
            out
        }
        _ if kind(actual) == kind(doc) => Vec::new(),
        _ => vec![format!(
            "{at}: {} where the docs show {}",
            kind(actual),
            kind(doc)
        )],
    }
}

/// `actual` has the shape of docs/JSON.md's example `name`.
pub fn assert_shape(actual: &Value, name: &str, rules: Rules) {
    let diff = shape_diff(actual, &example(name), rules, "");
    assert!(
        diff.is_empty(),
        "the output differs from docs/JSON.md's example {name}:\n  {}\noutput: {actual}",
        diff.join("\n  ")
    );
}

/// Runs `rbk --json ARGS`, insists on `code`, and checks its output against example `name`.
fn json_run(env: &Env, args: &[&str], code: i32, name: &str, rules: Rules) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let r = env.run(&all);
    assert_eq!(r.code, code, "rbk {all:?}:\n{}", r.all());
    let v = r.json();
    assert_shape(&v, name, rules);
    v
}

/// A failing run prints no JSON: stdout is empty, the error is on stderr.
fn assert_failed_with(r: &Run, code: i32, what: &str) {
    assert_eq!(r.code, code, "{what}:\n{}", r.all());
    assert!(
        r.stdout.trim().is_empty(),
        "{what}: an error must not print on stdout:\n{}",
        r.stdout
    );
    assert!(r.stderr.contains("rbk: error:"), "{what}:\n{}", r.stderr);
}

const NONE: Rules = Rules {
    nullable: &[],
    maps: &[],
    keyed: &[],
};
const SNAPSHOT: Rules = Rules {
    nullable: &["pause_ms", "pause_phases"],
    maps: &[],
    keyed: &[],
};
pub const SNAPSHOTS: Rules = Rules {
    nullable: &["[].pause_ms", "[].project"],
    maps: &["[].labels"],
    keyed: &["[].verified"],
};
const STATS: Rules = Rules {
    nullable: &["dedup_ratio", "compression_ratio"],
    maps: &[],
    keyed: &[],
};
const DIFF: Rules = Rules {
    nullable: &["parts[].a", "parts[].b"],
    maps: &[],
    keyed: &[],
};
const PRUNE: Rules = Rules {
    nullable: &["policy"],
    maps: &[],
    keyed: &[],
};
const FORGET: Rules = Rules {
    nullable: &["reclaim"],
    maps: &[],
    keyed: &[],
};
const VERIFY: Rules = Rules {
    nullable: &["record"],
    maps: &[],
    keyed: &[],
};
const REPAIR_SNAPSHOTS: Rules = Rules {
    nullable: &["repaired[].new_id"],
    maps: &[],
    keyed: &[],
};

// ---------------------------------------------------------------- the checker and the docs

/// The shape checker finds each kind of drift, so a passing schema test means something.
#[test]
fn the_shape_checker_catches_every_kind_of_drift() {
    let doc = serde_json::json!({
        "id": "ab", "n": 1, "ratio": 1.5, "ok": true, "maybe": null,
        "parts": [{"name": "a", "size": 2}], "none": [], "labels": {"k": "v"},
        "kinds": {"read": {"ok": true}}
    });
    let rules = Rules {
        nullable: &["maybe"],
        maps: &["labels"],
        keyed: &["kinds"],
    };
    let same = serde_json::json!({
        "id": "cd", "n": 7, "ratio": 2.25, "ok": false, "maybe": {"x": 1},
        "parts": [{"name": "b", "size": 3}, {"name": "c", "size": 0}], "none": [],
        "labels": {"other": "w"}, "kinds": {"drill": {"ok": false}, "read": {"ok": true}}
    });
    assert_eq!(
        shape_diff(
            &serde_json::json!({"kinds": {}}),
            &serde_json::json!({"kinds": {"read": {"ok": true}}}),
            rules,
            ""
        ),
        Vec::<String>::new(),
        "a keyed object may be empty"
    );
    assert_eq!(shape_diff(&same, &doc, rules, ""), Vec::<String>::new());
    let drifted = [
        ("a missing key", serde_json::json!({"n": 1})),
        ("an extra key", serde_json::json!({"extra": 1})),
        ("a string for an integer", serde_json::json!({"n": "1"})),
        ("an integer for a number", serde_json::json!({"ratio": 2})),
        ("null where not nullable", serde_json::json!({"id": null})),
        (
            "an element's key renamed",
            serde_json::json!({"parts": [{"name": "a", "bytes": 2}]}),
        ),
        (
            "an element of an array shown empty",
            serde_json::json!({"none": [1]}),
        ),
        (
            "a map value that is not a string",
            serde_json::json!({"labels": {"k": 1}}),
        ),
        (
            "a keyed value of another shape",
            serde_json::json!({"kinds": {"read": {"ok": "yes"}}}),
        ),
        (
            "a keyed value with a key the docs lack",
            serde_json::json!({"kinds": {"read": {"ok": true, "extra": 1}}}),
        ),
    ];
    for (what, change) in drifted {
        let mut v = same.clone();
        let obj = v.as_object_mut().expect("object");
        for (k, x) in change.as_object().expect("object") {
            obj.insert(k.clone(), x.clone());
        }
        if what == "a missing key" {
            obj.remove("n");
        }
        assert!(
            !shape_diff(&v, &doc, rules, "").is_empty(),
            "{what} went unnoticed: {v}"
        );
    }
}

/// docs/JSON.md has a section for every command, and every example parses.
#[test]
fn json_md_documents_every_command() {
    for c in Cli::command().get_subcommands() {
        let name = c.get_name();
        if ["completions", "man"].contains(&name) {
            continue; // they print a script or a page, never a report
        }
        assert!(
            DOC.contains(&format!("\n## rbk {name}")),
            "docs/JSON.md has no section `## rbk {name}`"
        );
    }
    let names: BTreeSet<String> = examples().into_keys().collect();
    for wanted in [
        "init",
        "key-list",
        "key-list-damaged",
        "key-add",
        "key-remove",
        "key-passwd",
        "snapshot",
        "snapshots",
        "verify",
        "restore-to",
        "restore-host",
        "restore-host-dry-run",
        "check",
        "check-damaged",
        "stats",
        "diff",
        "prune",
        "prune-dry-run",
        "forget",
        "forget-unreadable",
        "copy",
        "repair-index",
        "repair-snapshots",
        "unlock",
    ] {
        assert!(names.contains(wanted), "no example {wanted}: {names:?}");
    }
}

// ---------------------------------------------------------------- each command's output

/// `init` and the `key` commands.
#[test]
fn init_and_key_output_match_the_docs() {
    let env = Env::empty();
    json_run(
        &env,
        &["init", "--kdf-memory-mib", "8"],
        EXIT_OK,
        "init",
        NONE,
    );
    let new = env.write("new-password", b"a second password\n");
    let new = new.to_str().unwrap();
    let args = ["--kdf-memory-mib", "8", "--new-password-file", new];
    let added = json_run(
        &env,
        &[&["key", "add"][..], &args].concat(),
        EXIT_OK,
        "key-add",
        NONE,
    );
    let list = json_run(&env, &["key", "list"], EXIT_OK, "key-list", NONE);
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
    let added = added["added"].as_str().expect("added").to_string();
    json_run(
        &env,
        &["key", "remove", &added],
        EXIT_OK,
        "key-remove",
        NONE,
    );
    let r = json_run(
        &env,
        &[&["key", "passwd"][..], &args].concat(),
        EXIT_OK,
        "key-passwd",
        NONE,
    );
    assert_ne!(r["added"], r["removed"], "{r}");

    // A damaged key file: listed with `error`, exit 3. The old password is gone; the new
    // one opens the repository.
    let keys = names_in(&env.repo.join("keys"));
    let spare = run(cmd_for(
        &env.repo,
        "a second password",
        &[
            "--json",
            "key",
            "add",
            "--kdf-memory-mib",
            "8",
            "--new-password-file",
            new,
        ],
    ));
    assert_eq!(spare.code, EXIT_OK, "{}", spare.all());
    let damaged = spare.json()["added"].as_str().expect("added").to_string();
    assert!(!keys.contains(&damaged));
    fs::write(env.repo.join("keys").join(&damaged), b"not a key file").expect("damage");
    let r = run(cmd_for(
        &env.repo,
        "a second password",
        &["--json", "key", "list"],
    ));
    assert_eq!(r.code, EXIT_DAMAGED, "{}", r.all());
    let v = r.json();
    assert_shape(&v, "key-list-damaged", NONE);
    assert!(
        v.as_array().is_some_and(|a| a
            .iter()
            .any(|k| k["id"] == damaged.as_str() && k["error"].is_string())),
        "{v}"
    );
}

/// `snapshot`, `snapshots`, `diff`, `stats` and `restore --to`.
#[test]
fn snapshot_listing_diff_stats_and_restore_output_match_the_docs() {
    let env = Env::new();
    let empty = json_run(&env, &["stats"], EXIT_OK, "stats", STATS);
    assert!(
        empty["dedup_ratio"].is_null(),
        "an empty repository: {empty}"
    );
    let a = env.write("a.bin", &random_bytes(300 * 1024, 1));
    let first = json_run(
        &env,
        &[
            "snapshot",
            "--path",
            a.to_str().unwrap(),
            "--tag",
            "nightly",
            "--time",
            "2026-03-01T02:00:00+01:00",
        ],
        EXIT_OK,
        "snapshot",
        SNAPSHOT,
    );
    assert!(first["pause_ms"].is_null(), "not a stack snapshot: {first}");
    let b = env.write("b.bin", &random_bytes(100 * 1024, 2));
    json_run(
        &env,
        &[
            "snapshot",
            "--path",
            a.to_str().unwrap(),
            "--path",
            b.to_str().unwrap(),
            "--time",
            "2026-03-02T02:00:00+01:00",
        ],
        EXIT_OK,
        "snapshot",
        SNAPSHOT,
    );
    let verified = json_run(&env, &["verify", &id_of(&first)], EXIT_OK, "verify", VERIFY);
    assert!(verified["record"].is_string(), "{verified}");
    let list = json_run(&env, &["snapshots"], EXIT_OK, "snapshots", SNAPSHOTS);
    assert_eq!(list.as_array().map(Vec::len), Some(2), "{list}");
    assert_eq!(
        list[0]["verified"]["read"]["id"], verified["record"],
        "{list}"
    );
    assert_eq!(list[1]["verified"], serde_json::json!({}), "{list}");
    let d = json_run(
        &env,
        &["diff", &id_of(&first), "latest"],
        EXIT_OK,
        "diff",
        DIFF,
    );
    assert!(
        d["parts"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["a"].is_null() && p["status"] == "new")),
        "b.bin is new: {d}"
    );
    let s = json_run(&env, &["stats"], EXIT_OK, "stats", STATS);
    assert!(s["dedup_ratio"].is_f64(), "{s}");
    let to = env.path("out");
    json_run(
        &env,
        &["restore", "latest", "--to", to.to_str().unwrap()],
        EXIT_OK,
        "restore-to",
        NONE,
    );
}

/// `prune` (and its dry run), `forget` (with and without --prune) and `unlock`.
#[test]
fn prune_forget_and_unlock_output_match_the_docs() {
    let env = Env::new();
    let mut ids = Vec::new();
    for day in 1..=3 {
        let p = env.write("db.bin", &random_bytes(200 * 1024, day));
        let time = format!("2026-03-0{day}T02:00:00+01:00");
        ids.push(id_of(&env.snapshot(&[
            "--path",
            p.to_str().unwrap(),
            "--time",
            &time,
        ])));
    }
    let dry = json_run(
        &env,
        &["prune", "--keep-last", "2", "--dry-run"],
        EXIT_OK,
        "prune-dry-run",
        PRUNE,
    );
    assert_eq!(dry["dry_run"], true, "{dry}");
    json_run(
        &env,
        &["prune", "--keep-last", "2"],
        EXIT_OK,
        "prune",
        PRUNE,
    );
    let r = json_run(&env, &["prune", "--reclaim-only"], EXIT_OK, "prune", PRUNE);
    assert!(r["policy"].is_null(), "{r}");
    let f = json_run(&env, &["forget", &ids[1][..8]], EXIT_OK, "forget", FORGET);
    assert!(f["reclaim"].is_null(), "{f}");
    json_run(
        &env,
        &["forget", &ids[2][..8], "--prune"],
        EXIT_OK,
        "forget",
        FORGET,
    );

    // A live lock is kept, every lock goes with --all.
    let repo = env.open();
    let held = repo.lock(false, "it: a long restore").expect("lock");
    let u = json_run(&env, &["unlock"], EXIT_OK, "unlock", NONE);
    assert_eq!(u["kept"].as_array().map(Vec::len), Some(1), "{u}");
    let u = json_run(&env, &["unlock", "--all"], EXIT_OK, "unlock", NONE);
    assert_eq!(u["removed"].as_array().map(Vec::len), Some(1), "{u}");
    drop(held);
}

/// `repair index` and `repair snapshots` (a pack lost, a garbage pack planted, a snapshot file
/// truncated), and `forget` of the unreadable snapshot.
#[test]
fn repair_output_matches_the_docs() {
    let env = Env::new();
    let sql = env.write("metadata.sql", &random_bytes(300 * 1024, 11));
    let dump = env.write("neo4j.dump", &random_bytes(200 * 1024, 12));
    let (sql, dump) = (sql.to_str().unwrap(), dump.to_str().unwrap());
    env.snapshot(&["--path", sql]);
    let kept = env.packs();
    let both = id_of(&env.snapshot(&["--path", sql, "--path", dump]));
    let broken = id_of(&env.snapshot(&["--path", dump, "--tag", "x"]));
    for p in env.packs().into_iter().filter(|p| !kept.contains(p)) {
        fs::remove_file(p).unwrap();
    }
    let file = env.repo.join("snapshots").join(&broken);
    fs::write(&file, &fs::read(&file).unwrap()[..50]).unwrap();
    let planted = "5c0d39b0bc4d4fb2ea1b4d1d9a2a5a1dd26ac1fc2f2f3a6e06d7e0a21b0a6e43";
    fs::create_dir_all(env.repo.join("data/5c")).unwrap();
    fs::write(env.repo.join("data/5c").join(planted), b"garbage pack").unwrap();

    let dry = json_run(
        &env,
        &["repair", "snapshots", "--dry-run"],
        EXIT_WARNINGS,
        "repair-snapshots",
        REPAIR_SNAPSHOTS,
    );
    assert!(dry["repaired"][0]["new_id"].is_null(), "{dry}");
    let done = json_run(
        &env,
        &["repair", "snapshots"],
        EXIT_WARNINGS,
        "repair-snapshots",
        REPAIR_SNAPSHOTS,
    );
    assert_eq!(done["repaired"][0]["id"], both.as_str(), "{done}");
    let ix = json_run(
        &env,
        &["repair", "index"],
        EXIT_WARNINGS,
        "repair-index",
        NONE,
    );
    assert_eq!(ix["packs_dropped"], 1, "{ix}");
    let f = json_run(
        &env,
        &["forget", &broken[..8]],
        EXIT_OK,
        "forget-unreadable",
        FORGET,
    );
    assert_eq!(f["unreadable"], serde_json::json!([broken]), "{f}");
}

/// `check`: its report has the documented shape whether it is clean (0), warns (6) or finds
/// damage (3), and an error has the shape of a warning.
#[test]
fn check_output_and_exit_codes_0_clean_6_warnings_3_damaged() {
    let env = Env::new();
    let p = env.write("db.bin", &random_bytes(300 * 1024, 5));
    env.snapshot(&["--path", p.to_str().unwrap()]);
    let clean = json_run(&env, &["check", "--read-data"], EXIT_OK, "check", NONE);
    assert_eq!(clean["ok"], true, "{clean}");
    assert_eq!(clean["warnings"], serde_json::json!([]), "{clean}");

    // A temporary file left by an interrupted write: a warning, not damage.
    let pack = env.packs().into_iter().next().expect("a pack");
    let temp = pack
        .parent()
        .expect("pack dir")
        .join(".tmp-left-by-a-crash");
    fs::write(&temp, b"half a pack").expect("temp file");
    let warned = json_run(
        &env,
        &["check", "--read-data"],
        EXIT_WARNINGS,
        "check",
        NONE,
    );
    assert_eq!(warned["ok"], true, "warnings are not damage: {warned}");
    assert!(
        warned["warnings"]
            .as_array()
            .is_some_and(|w| w.iter().any(is_leftover_temp)),
        "{warned}"
    );
    let text = env.run(&["check"]);
    assert_eq!(text.code, EXIT_WARNINGS, "{}", text.all());
    assert!(text.stdout.contains("warning: "), "{}", text.all());
    let quiet = env.run(&["--quiet", "check"]);
    assert_eq!(
        quiet.code, EXIT_WARNINGS,
        "--quiet hides warnings, not the code"
    );

    // A pack in no index (left by an interrupted snapshot): a warning too.
    fs::remove_file(&temp).expect("rm temp");
    let other = Env::new();
    let q = other.write("other.bin", &random_bytes(100 * 1024, 6));
    other.snapshot(&["--path", q.to_str().unwrap()]);
    for stray in other.packs() {
        let rel = stray.strip_prefix(&other.repo).expect("in repo");
        let dest = env.repo.join(rel);
        fs::create_dir_all(dest.parent().expect("dir")).expect("mkdir");
        fs::copy(&stray, &dest).expect("copy pack");
    }
    let orphan = json_run(&env, &["check"], EXIT_WARNINGS, "check", NONE);
    assert!(
        orphan["warnings"]
            .as_array()
            .is_some_and(|w| w.iter().any(is_unreferenced_pack)),
        "{orphan}"
    );

    // Damage outranks warnings: a flipped byte in an indexed pack is 3, strays or not.
    flip_byte(&pack, 40);
    let r = env.run(&["--json", "check", "--read-data"]);
    assert_eq!(r.code, EXIT_DAMAGED, "{}", r.all());
    let both = r.json();
    assert_eq!(both["ok"], false, "{both}");
    assert!(
        both["warnings"].as_array().is_some_and(|w| !w.is_empty()),
        "{both}"
    );
    for stray in other.packs() {
        fs::remove_file(
            env.repo
                .join(stray.strip_prefix(&other.repo).expect("in repo")),
        )
        .expect("rm stray");
    }
    let damaged = json_run(
        &env,
        &["check", "--read-data"],
        EXIT_DAMAGED,
        "check-damaged",
        NONE,
    );
    assert!(
        damaged["errors"].as_array().is_some_and(|e| !e.is_empty()),
        "{damaged}"
    );
}

/// A host-mode restore of SQLite metadata: without a pause command it is done with a warning
/// (6); with one, 0; its --dry-run plan touches nothing and is 0 even when it warns.
#[test]
fn host_restore_output_and_exit_codes_0_done_6_done_with_warnings() {
    let env = Env::new();
    let db = env.write("rushdb.db", &random_bytes(64 * 1024, 7));
    let events = env.path("events");
    let config = |name: &str, pause: bool| {
        let mut text = format!("[host]\nsqlite_path = \"{}\"\n", db.display());
        if pause {
            text.push_str(&format!(
                "pause_command = \"echo pause >> '{e}'\"\nresume_command = \"echo resume >> '{e}'\"\n",
                e = events.display()
            ));
        }
        env.write(name, text.as_bytes())
    };
    let (bare, paused) = (config("bare.toml", false), config("paused.toml", true));
    let with = |config: &std::path::Path, args: &[&str]| {
        let mut all = vec!["--config", config.to_str().unwrap(), "--json"];
        all.extend_from_slice(args);
        let mut c = env.cmd(&all);
        c.current_dir(env.tmp.path());
        run(c)
    };
    let s = with(&paused, &["snapshot"]);
    assert_eq!(s.code, EXIT_OK, "{}", s.all());
    assert_shape(&s.json(), "snapshot", SNAPSHOT);

    let plan = with(&bare, &["restore", "latest", "--dry-run"]);
    assert_eq!(plan.code, EXIT_OK, "a plan did nothing:\n{}", plan.all());
    let v = plan.json();
    assert_shape(&v, "restore-host-dry-run", NONE);
    assert!(v["warnings"].to_string().contains("pause_command"), "{v}");

    let r = with(&bare, &["restore", "latest"]);
    assert_eq!(
        r.code,
        EXIT_WARNINGS,
        "restored, with a warning:\n{}",
        r.all()
    );
    let v = r.json();
    assert_shape(&v, "restore-host", NONE);
    assert!(v["warnings"].to_string().contains("pause_command"), "{v}");

    let r = with(&paused, &["restore", "latest"]);
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    let v = r.json();
    assert_shape(&v, "restore-host", NONE);
    assert_eq!(v["warnings"], serde_json::json!([]), "{v}");
}

// ---------------------------------------------------------------- exit codes of failures

/// Locked (4), wrong password (5), failed (1) and bad usage (2): no JSON on stdout, the error
/// on stderr.
#[test]
fn failures_exit_4_locked_5_wrong_password_1_failed_2_usage_without_json() {
    let env = Env::new();
    let p = env.write("db.bin", b"some bytes");
    let path = p.to_str().unwrap();

    let repo = env.open();
    let held = repo.lock(true, "it: maintenance").expect("exclusive lock");
    let r = env.run(&["--json", "snapshot", "--path", path]);
    assert_failed_with(&r, EXIT_LOCKED, "a snapshot beside an exclusive lock");
    drop(held);

    let r = run(cmd_for(
        &env.repo,
        "not the password",
        &["--json", "snapshots"],
    ));
    assert_failed_with(&r, EXIT_WRONG_PASSWORD, "a wrong password");

    let r = env.run(&["--json", "snapshot", "--command", "db", "--", "false"]);
    assert_failed_with(&r, EXIT_FAILED, "a producer that fails");
    let r = env.run(&["--json", "restore", "ffffffff", "--to", path]);
    assert_failed_with(&r, EXIT_FAILED, "an unknown snapshot");

    let r = env.run(&["--json", "snapshot", "--no-such-option"]);
    assert_eq!(r.code, EXIT_USAGE, "{}", r.all());
    assert!(r.stdout.trim().is_empty(), "{}", r.stdout);

    // And the same repository, left alone, is fine.
    json_run(
        &env,
        &["snapshot", "--path", path],
        EXIT_OK,
        "snapshot",
        SNAPSHOT,
    );
}
