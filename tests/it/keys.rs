//! `rbk key`: several passwords for one repository, listing, removal rules, password change, crashes.

use std::fs;

use serde_json::Value;

use crate::util::{
    BIN, EXIT_DAMAGED, EXIT_OK, EXIT_WRONG_PASSWORD, Env, PASSWORD, Run, cmd_for, names_in, run,
};

const SECOND: &str = "it: second password, from a file";
const THIRD: &str = "it: third password, from a command";
/// Cheap Argon2 for every new key, as `Env::new` uses for the first.
const KDF: [&str; 2] = ["--kdf-memory-mib", "8"];

/// `rbk ARGS` opened with `password` instead of the default one.
fn run_with(env: &Env, password: &str, args: &[&str]) -> Run {
    run(cmd_for(&env.repo, password, args))
}

fn opens_with(env: &Env, password: &str) -> bool {
    let r = run_with(env, password, &["snapshots"]);
    assert!(
        r.code == EXIT_OK || r.code == EXIT_WRONG_PASSWORD,
        "snapshots with a password: unexpected exit:\n{}",
        r.all()
    );
    r.code == EXIT_OK
}

/// `rbk --json key list` opened with `password`: the parsed array.
fn list(env: &Env, password: &str) -> Vec<Value> {
    let r = run_with(env, password, &["--json", "key", "list"]);
    assert_eq!(r.code, EXIT_OK, "key list failed:\n{}", r.all());
    match r.json() {
        Value::Array(a) => a,
        other => panic!("key list --json is not an array: {other}"),
    }
}

fn key_files(env: &Env) -> Vec<String> {
    names_in(&env.repo.join("keys"))
}

/// Adds a key whose password is read from a file; returns its id.
fn add_from_file(env: &Env, password: &str) -> String {
    let file = env.write("new-password", format!("{password}\nignored\n").as_bytes());
    let file = file.to_str().expect("utf-8 temp path");
    let r = env.ok(&[
        "--json",
        "key",
        "add",
        "--new-password-file",
        file,
        KDF[0],
        KDF[1],
    ]);
    added_id(&r)
}

fn added_id(r: &Run) -> String {
    r.json()["added"]
        .as_str()
        .unwrap_or_else(|| panic!("no added id in {}", r.stdout))
        .to_string()
}

fn current_of(keys: &[Value]) -> Vec<String> {
    keys.iter()
        .filter(|k| k["current"] == Value::Bool(true))
        .map(|k| k["id"].as_str().expect("id").to_string())
        .collect()
}

#[test]
fn keys_from_a_file_and_a_command_open_the_same_repository() {
    let env = Env::new();
    let first = key_files(&env);
    assert_eq!(first.len(), 1);

    let second = add_from_file(&env, SECOND);
    let script = env.write("pw.sh", format!("printf '%s\\n' '{THIRD}'\n").as_bytes());
    let command = format!("sh {}", script.display());
    let r = env.ok(&[
        "--json",
        "key",
        "add",
        "--new-password-command",
        &command,
        KDF[0],
        KDF[1],
    ]);
    let third = added_id(&r);

    let mut expected = vec![first[0].clone(), second.clone(), third.clone()];
    expected.sort();
    assert_eq!(key_files(&env), expected);
    for pw in [PASSWORD, SECOND, THIRD] {
        assert!(opens_with(&env, pw), "{pw:?} does not open the repository");
    }
    assert!(!opens_with(&env, "it: not a password of this repository"));

    // Each password marks its own key, and every key lists its host, time and KDF.
    for (pw, id) in [(PASSWORD, &first[0]), (SECOND, &second), (THIRD, &third)] {
        let keys = list(&env, pw);
        assert_eq!(keys.len(), 3, "{keys:?}");
        assert_eq!(current_of(&keys), vec![id.clone()], "opened with {pw:?}");
        for k in &keys {
            assert!(k["host"].as_str().is_some_and(|h| !h.is_empty()), "{k}");
            assert!(k["created_unix"].as_i64().is_some_and(|t| t > 0), "{k}");
            assert_eq!(k["kdf"]["memory_kib"], Value::from(8 * 1024), "{k}");
        }
    }
    // No password ever reaches the output.
    let text = env.ok(&["key", "list"]);
    for pw in [PASSWORD, SECOND, THIRD] {
        assert!(!text.all().contains(pw));
        assert!(!r.all().contains(pw));
    }
}

#[test]
fn no_flag_takes_a_password_itself() {
    let env = Env::new();
    for flag in ["--new-password", "--password"] {
        let r = env.run(&["key", "add", flag, "it: visible in ps"]);
        assert_eq!(r.code, 2, "{flag} must not exist:\n{}", r.all());
    }
    // Without a file, a command or a terminal there is nothing to read it from.
    let r = env.run(&["key", "add"]);
    assert_ne!(r.code, EXIT_OK);
    assert!(r.stderr.contains("--new-password-file"), "{}", r.all());
    assert_eq!(key_files(&env).len(), 1);
}

#[test]
fn removal_refuses_the_last_key_and_the_current_one_without_the_flag() {
    let env = Env::new();
    let first = key_files(&env).remove(0);

    let r = env.run(&["key", "remove", &first]);
    assert_ne!(r.code, EXIT_OK);
    assert!(r.stderr.contains("last readable key"), "{}", r.all());
    let r = env.run(&["key", "remove", &first, "--allow-current"]);
    assert_ne!(r.code, EXIT_OK, "the last key went:\n{}", r.all());
    assert_eq!(key_files(&env), vec![first.clone()]);

    let second = add_from_file(&env, SECOND);
    let r = env.run(&["key", "remove", &first[..6]]);
    assert_ne!(r.code, EXIT_OK);
    assert!(r.stderr.contains("--allow-current"), "{}", r.all());
    assert_eq!(key_files(&env).len(), 2);

    let r = env.run(&["key", "remove", "zz"]);
    assert_ne!(r.code, EXIT_OK);
    assert!(r.stderr.contains("no key matches"), "{}", r.all());

    // Opened with the second password, the first key is just another key.
    let r = run_with(&env, SECOND, &["--json", "key", "remove", &first[..8]]);
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    assert_eq!(r.json()["removed"], Value::from(first.clone()));
    assert_eq!(key_files(&env), vec![second]);
    assert!(!opens_with(&env, PASSWORD));
    assert!(opens_with(&env, SECOND));
}

#[test]
fn removing_the_current_key_with_the_flag_leaves_the_other() {
    let env = Env::new();
    let first = key_files(&env).remove(0);
    let second = add_from_file(&env, SECOND);
    env.ok(&["key", "remove", &first, "--allow-current"]);
    assert_eq!(key_files(&env), vec![second]);
    assert!(opens_with(&env, SECOND));
}

#[test]
fn passwd_leaves_one_key_that_only_the_new_password_opens() {
    let env = Env::new();
    let old = key_files(&env).remove(0);
    let file = env.write("new-password", SECOND.as_bytes());
    let r = env.ok(&[
        "--json",
        "key",
        "passwd",
        "--new-password-file",
        file.to_str().expect("utf-8 temp path"),
        KDF[0],
        KDF[1],
    ]);
    let v = r.json();
    assert_eq!(v["removed"], Value::from(old.clone()));
    let added = added_id(&r);
    assert_eq!(key_files(&env), vec![added.clone()]);

    let r = env.run(&["snapshots"]);
    assert_eq!(r.code, EXIT_WRONG_PASSWORD, "{}", r.all());
    assert!(opens_with(&env, SECOND));
    assert_eq!(current_of(&list(&env, SECOND)), vec![added]);
}

#[test]
fn an_interrupted_passwd_leaves_both_keys_working() {
    let env = Env::new();
    let file = env.write("new-password", SECOND.as_bytes());
    let mut c = env.cmd(&[
        "key",
        "passwd",
        "--new-password-file",
        file.to_str().expect("utf-8 temp path"),
        KDF[0],
        KDF[1],
    ]);
    // SIGKILL just before the first delete: the old key's removal.
    c.env("RBK_FAULT", "kill@remove:1");
    let r = run(c);
    // Killed by a signal, which `Run` reports as -1.
    assert_eq!(r.code, -1, "the fault did not fire:\n{}", r.all());

    assert_eq!(key_files(&env).len(), 2);
    assert!(opens_with(&env, PASSWORD));
    assert!(opens_with(&env, SECOND));
    assert_eq!(list(&env, PASSWORD).len(), 2);
}

#[test]
fn a_damaged_key_file_does_not_stop_another_key() {
    let env = Env::new();
    let first = key_files(&env).remove(0);
    let second = add_from_file(&env, SECOND);
    // Damage whichever key file the listing meets first, then the other, in turn.
    for (damaged, works) in [(&first, SECOND), (&second, PASSWORD)] {
        let path = env.repo.join("keys").join(damaged);
        let good = fs::read(&path).expect("read key file");
        let mut bad = good.clone();
        bad[10] ^= 0xFF;
        fs::write(&path, &bad).expect("write key file");

        assert!(opens_with(&env, works), "{works:?} with {damaged} damaged");
        let r = run_with(&env, works, &["--json", "key", "list"]);
        assert_eq!(r.code, EXIT_DAMAGED, "{}", r.all());
        let keys = match r.json() {
            Value::Array(a) => a,
            other => panic!("not an array: {other}"),
        };
        let bad_entry = keys
            .iter()
            .find(|k| k["id"] == damaged.as_str())
            .expect("the damaged key is listed");
        assert!(
            bad_entry["error"]
                .as_str()
                .is_some_and(|e| e.contains("damaged"))
        );
        // The damaged key does not count as one that would remain.
        let other = if damaged == &first { &second } else { &first };
        let r = run_with(&env, works, &["key", "remove", other, "--allow-current"]);
        assert_ne!(r.code, EXIT_OK, "{}", r.all());
        assert!(r.stderr.contains("last readable key"), "{}", r.all());

        fs::write(&path, &good).expect("restore key file");
    }
}

#[test]
fn help_names_every_subcommand() {
    let out = std::process::Command::new(BIN)
        .args(["key", "--help"])
        .output()
        .expect("run rbk");
    let help = String::from_utf8_lossy(&out.stdout);
    for sub in ["list", "add", "remove", "passwd"] {
        assert!(help.contains(sub), "{help}");
    }
}

#[test]
fn the_store_api_types_its_refusals() {
    use std::sync::Arc;

    use rbk::store::backend::LocalBackend;
    use rbk::store::keys::KdfParams;
    use rbk::store::{Repository, StoreError};

    let env = Env::empty();
    let mut repo = crate::util::init_repo_lib(&env.repo);
    let cheap = KdfParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    let first = repo.key_name().to_string();
    assert!(matches!(
        repo.remove_key(&first, true),
        Err(StoreError::LastKey(_))
    ));
    let second = repo.add_key(SECOND.as_bytes(), cheap).expect("add_key");
    assert!(matches!(
        repo.remove_key(&first, false),
        Err(StoreError::KeyInUse(_))
    ));
    assert_eq!(repo.find_key(&second[..10]).expect("find_key"), second);
    assert_eq!(repo.list_keys().expect("list_keys").len(), 2);

    let (third, removed) = repo
        .change_password(THIRD.as_bytes(), cheap)
        .expect("change_password");
    assert_eq!(removed, first);
    assert_eq!(repo.key_name(), third);
    let backend = || Arc::new(LocalBackend::new(&env.repo));
    assert!(matches!(
        Repository::open(backend(), PASSWORD.as_bytes()),
        Err(StoreError::WrongPassword { keys: 2, .. })
    ));
    for pw in [SECOND, THIRD] {
        Repository::open(backend(), pw.as_bytes()).expect("open with a remaining password");
    }
}
