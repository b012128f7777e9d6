//! `rbk verify`: a whole snapshot passes with each part's check named; a part cut short, of the wrong shape or damaged in the repository fails with exit 3, naming the part.

use std::io::Write;
use std::process::Command;

use rbk::codec::neo4j_dump::{Compression, DumpFormat, DumpWriter};
use serde_json::Value;

use crate::util::*;

/// A plain-format dump as pg_dump writes one (the header, two tables' data, the last line).
fn pg_dump_text(rows: usize) -> Vec<u8> {
    let mut s = String::from(
        "--\n-- PostgreSQL database dump\n--\n\n\\restrict k3y\n\nSET statement_timeout = 0;\n\
         CREATE TABLE public.projects (id integer, name text);\n\n\
         COPY public.projects (id, name) FROM stdin;\n",
    );
    for i in 0..rows {
        s.push_str(&format!("{i}\tproject number {i}\n"));
    }
    s.push_str("\\.\n\nCOPY public.settings (k, v) FROM stdin;\nmode\tstrict\n\\.\n\n");
    s.push_str("--\n-- PostgreSQL database dump complete\n--\n\n\\unrestrict k3y\n\n");
    s.into_bytes()
}

/// A real SQLite file of several pages, made by the sqlite3 CLI.
fn sqlite_file(env: &Env, name: &str) -> Vec<u8> {
    let path = env.path(name);
    let out = Command::new("sqlite3")
        .arg(&path)
        .arg(
            "create table projects (id integer primary key, name text); \
             with recursive n(i) as (select 1 union all select i + 1 from n where i < 2000) \
             insert into projects (name) select 'project ' || i from n;",
        )
        .output()
        .expect("run sqlite3 (apt-get install sqlite3)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(&path).expect("the SQLite file")
}

/// A DZV1 dump whose tar is cut short inside, wrapped in a whole zstd stream with the
/// counts of the whole tar: the zstd layer is sound, so only a walk of the tar finds it.
fn dump_with_a_cut_tar() -> Vec<u8> {
    let whole = build_dump(DumpFormat::Dzv1Zstd, &store_files(7, 1));
    let (envelope, tar) = decode_dump(&whole);
    let mut w = DumpWriter::new(Vec::new(), &envelope, Compression::Level(3)).expect("writer");
    w.write_all(&tar[..tar.len() / 2]).expect("write");
    w.finish().expect("finish")
}

fn verify(env: &Env, id: &str) -> (Run, Value) {
    let r = env.run(&["--json", "verify", id]);
    let v = r.json();
    (r, v)
}

fn part<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["parts"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("no part {name} in {v}"))
}

#[test]
fn a_whole_snapshot_passes_and_says_what_each_part_was_checked_as() {
    let env = Env::new();
    let dump = env.write(
        "neo4j.dump",
        &build_dump(DumpFormat::Dzv1Zstd, &store_files(3, 1)),
    );
    let sql = env.write("metadata.sql", &pg_dump_text(500));
    sqlite_file(&env, "rushdb.db");
    let db = env.path("rushdb.db");
    let text = env.write("notes.txt", &text_bytes(10_000, 5));
    let mut args = Vec::new();
    for p in [&dump, &sql, &db, &text] {
        args.push("--path".to_string());
        args.push(p.display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let id = id_of(&env.snapshot(&args));

    let (r, v) = verify(&env, &id[..8]);
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    crate::json::assert_shape(&v, "verify", crate::json::Rules::default());
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["snapshot"], id.as_str());
    let checks: Vec<(&str, &str)> = ["neo4j.dump", "metadata.sql", "rushdb.db", "notes.txt"]
        .iter()
        .map(|n| (*n, part(&v, n)["check"].as_str().unwrap_or("?")))
        .collect();
    assert_eq!(
        checks,
        [
            ("neo4j.dump", "neo4j-dump"),
            ("metadata.sql", "pg-dump"),
            ("rushdb.db", "sqlite"),
            ("notes.txt", "bytes"),
        ]
    );
    let detail = |n| part(&v, n)["detail"].as_str().unwrap_or("").to_string();
    assert!(
        detail("neo4j.dump").contains("as its header records"),
        "{v}"
    );
    assert!(
        detail("metadata.sql").contains("2 table(s) with data, 501 row(s)"),
        "{v}"
    );
    assert!(detail("rushdb.db").contains("page(s) of 4096 bytes"), "{v}");

    // `latest` is the default, and the human report names every part.
    let human = env.ok(&["verify"]);
    for name in ["neo4j.dump", "metadata.sql", "rushdb.db", "notes.txt"] {
        assert!(human.stdout.contains(name), "{}", human.stdout);
    }
    assert!(human.stdout.contains("every one whole"), "{}", human.stdout);
}

#[test]
fn stores_cut_short_fail_with_exit_3_and_name_the_part() {
    let env = Env::new();
    let sql = pg_dump_text(2000);
    let inside_a_table = sql.len() / 2;
    let db = sqlite_file(&env, "whole.db");
    assert!(db.len() >= 3 * 4096, "{} bytes", db.len());
    let cases: [(&str, Vec<u8>, &str, &str); 4] = [
        (
            "metadata.sql",
            sql[..inside_a_table].to_vec(),
            "pg-dump",
            "inside the data",
        ),
        (
            "metadata.sql",
            sql[..sql.len() - 60].to_vec(),
            "pg-dump",
            "dump complete\" line",
        ),
        (
            "rushdb.db",
            db[..db.len() - 4096].to_vec(),
            "sqlite",
            "cut short",
        ),
        ("neo4j.dump", dump_with_a_cut_tar(), "neo4j-dump", "tar"),
    ];
    for (name, bytes, check, says) in cases {
        // The good part beside it keeps passing: the verdict is per part.
        let good = env.write("good.sql", &pg_dump_text(3));
        let bad = env.write(name, &bytes);
        let id = id_of(&env.snapshot(&[
            "--path",
            good.to_str().unwrap(),
            "--path",
            bad.to_str().unwrap(),
        ]));
        let (r, v) = verify(&env, &id[..8]);
        assert_eq!(r.code, EXIT_DAMAGED, "{name}: {}", r.all());
        assert_eq!(v["ok"], false, "{v}");
        assert_eq!(part(&v, "good.sql")["ok"], true, "{v}");
        let p = part(&v, name);
        assert_eq!(p["ok"], false, "{v}");
        assert_eq!(p["check"], check, "{v}");
        let detail = p["detail"].as_str().unwrap_or("");
        assert!(detail.contains(says), "{name}: {detail}");
        // The human report says FAIL on that part's line, and exits 3 too.
        let human = env.run(&["verify", &id[..8]]);
        assert_eq!(human.code, EXIT_DAMAGED, "{}", human.all());
        let line = human
            .stdout
            .lines()
            .find(|l| l.contains(name))
            .unwrap_or_else(|| panic!("no line for {name}:\n{}", human.stdout));
        assert!(line.contains("FAIL"), "{line}");
    }
}

/// Damage in the repository fails the parts it reaches, as damage, and no other.
#[test]
fn a_damaged_pack_fails_the_part_it_holds() {
    let env = Env::new();
    let a = env.write("a.bin", &random_bytes(200_000, 1));
    let id_a = id_of(&env.snapshot(&["--path", a.to_str().unwrap()]));
    let packs_a = env.packs();
    let b = env.write("b.bin", &random_bytes(200_000, 2));
    let id_b = id_of(&env.snapshot(&["--path", b.to_str().unwrap()]));
    let pack_b = env
        .packs()
        .into_iter()
        .find(|p| !packs_a.contains(p))
        .expect("the second snapshot's pack");
    flip_byte(&pack_b, 100);

    let (r, v) = verify(&env, &id_b[..8]);
    assert_eq!(r.code, EXIT_DAMAGED, "{}", r.all());
    let p = part(&v, "b.bin");
    assert_eq!(p["ok"], false, "{v}");
    assert!(
        p["detail"].as_str().unwrap_or("").contains("damaged"),
        "{v}"
    );
    let (r, _) = verify(&env, &id_a[..8]);
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
}

#[test]
fn verify_needs_a_snapshot_that_exists() {
    let env = Env::new();
    let r = env.run(&["verify"]);
    assert_eq!(r.code, EXIT_FAILED, "{}", r.all());
    assert!(r.stderr.contains("snapshot"), "{}", r.stderr);
    let r = env.run(&["verify", "abcdef12"]);
    assert_ne!(r.code, EXIT_OK, "{}", r.all());
}

/// The dump used above really is damaged only in its tar: its header is a plausible one.
#[test]
fn the_cut_dump_has_a_whole_envelope() {
    let d = dump_with_a_cut_tar();
    let (envelope, _) = decode_dump(&d);
    assert_eq!(envelope.format, DumpFormat::Dzv1Zstd);
    assert!(envelope.file_count().is_some_and(|n| n > 0));
}
