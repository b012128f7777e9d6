//! Proves the refusals happen before anything is stopped: a changed encryption key, a dry run, a stack that is not there.

use super::*;

const ALL: [&str; 3] = ["rushdb", "neo4j", "postgres"];
const KEY_VAR: &str = "RUSHDB_AES_256_ENCRYPTION_KEY";
const OTHER_KEY: &str = "AnotherKeyOf32CharactersForTests";

/// Dry runs print the plan and touch nothing; a missing stack is a clear error; a restore
/// into a RushDB running with another key is refused (stack untouched) unless forced.
/// "Untouched" is checked by `{{.State.StartedAt}}` of every container: a stop and start
/// would change it.
#[test]
fn stack_preflight_refuses_before_touching_anything() {
    let Some(_turn) = docker_test("stack_preflight_refuses_before_touching_anything") else {
        return;
    };
    let started = Instant::now();
    let stack = Stack::up("preflight", Variant::Postgres);
    let env = Env::new();
    let untouched = stack.started_at(&ALL);

    // ---- the dry run
    let plan = rbk_ok(&env, &["--json", "snapshot", "--dry-run"]).json();
    assert_eq!(plan["project"], stack.project.as_str(), "{plan}");
    assert_eq!(
        plan["stops"],
        serde_json::json!([stack.rushdb(), stack.neo4j()]),
        "rushdb first, then neo4j: {plan}"
    );
    assert_eq!(plan["parts"], serde_json::json!([GRAPH, PG]), "{plan}");
    assert_eq!(plan["last_pause_ms"], Value::Null, "{plan}");
    assert!(
        plan["warnings"].to_string().contains(KEY_VAR),
        "the published default key is warned about: {plan}"
    );
    let text = rbk_ok(
        &env,
        &["snapshot", "--dry-run", "--project", &stack.project],
    );
    assert_contains(&text.stdout, "would stop", "the plan in words");
    assert_contains(&text.stdout, &stack.neo4j(), "the plan in words");
    assert_eq!(list(&env), Vec::<Value>::new(), "a dry run saves nothing");
    assert_eq!(stack.started_at(&ALL), untouched, "a dry run stops nothing");

    // ---- no such stack
    let missing = format!("rbkit_missing_{}", std::process::id());
    let r = rbk(&env, &["snapshot", "--project", &missing]);
    assert_not_done(&r, "a snapshot of a missing project");
    assert_contains(&r.stderr, &missing, "the error names the project");
    assert_contains(
        &r.stderr,
        "no `rushdb` service",
        "the error says what is missing",
    );
    // No project given and no container with the service label at all (a service name that
    // exists nowhere, through rbk.toml, so other stacks on the host do not matter).
    let config = env.write(
        "no-service.toml",
        format!("[stack]\nrushdb_service = \"{missing}\"\n").as_bytes(),
    );
    let r = rbk(&env, &["--config", config.to_str().unwrap(), "snapshot"]);
    assert_not_done(&r, "a snapshot with a missing rushdb service");
    assert_contains(
        &r.stderr,
        &format!("no container with the label com.docker.compose.service={missing}"),
        "the error says how the stack is found",
    );
    assert_eq!(list(&env), Vec::<Value>::new());

    // ---- a snapshot, then the dry run knows its pause
    let s1 = stack_snapshot(&env, &["--project", &stack.project]);
    let id1 = id_of(&s1);
    stack.settle();
    let plan = rbk_ok(&env, &["--json", "snapshot", "--dry-run"]).json();
    assert_eq!(plan["last_pause_ms"], s1["pause_ms"], "{plan}");
    let r = rbk(&env, &["restore", &id1, "--project", &missing]);
    assert_not_done(&r, "a restore into a missing project");
    assert_contains(&r.stderr, &missing, "restore names the missing project");

    // ---- RushDB recreated with another key
    let out = stack.compose(&["up", "-d", "rushdb"], &[(KEY_VAR, OTHER_KEY)]);
    assert!(
        out.status.success(),
        "recreate rushdb:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        docker(&["inspect", "-f", "{{json .Config.Env}}", &stack.rushdb()]).contains(OTHER_KEY)
    );
    stack.settle();
    let untouched = stack.started_at(&ALL);
    let r = rbk(&env, &["restore", &id1]);
    assert_not_done(&r, "a restore with another key is refused");
    assert_contains(&r.stderr, KEY_VAR, "the refusal names the key");
    assert_contains(&r.stderr, "--force", "the refusal says how to override");
    assert_eq!(
        stack.started_at(&ALL),
        untouched,
        "the refused restore stopped nothing"
    );

    let rushdb_before = stack.started_at(&["rushdb"]);
    let r = rbk_done(&env, &["--json", "restore", &id1, "--force"]);
    assert_eq!(
        r.code, EXIT_WARNINGS,
        "a forced restore is done, with warnings"
    );
    let report = r.json();
    assert_eq!(
        report["restored"],
        serde_json::json!([GRAPH, PG]),
        "{report}"
    );
    assert!(
        report["warnings"]
            .to_string()
            .contains("differs from the one in use"),
        "the forced restore still warns: {report}"
    );
    stack.wait_running(&ALL);
    assert_ne!(
        stack.started_at(&["rushdb"]),
        rushdb_before,
        "the forced restore did stop and start rushdb"
    );
    assert_eq!(list(&env).len(), 1);
    println!(
        "preflight refusals: whole test {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
