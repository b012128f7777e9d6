//! Where the password comes from: `--password-file`/`--password-command` flags, then
//! `RBK_PASSWORD`, then `RBK_PASSWORD_FILE`/`RBK_PASSWORD_COMMAND`, then rbk.toml, then the
//! prompt. A file and a command at the same level is a usage error (exit 2); across levels the
//! higher one wins. Each rule is tested with the winner right and every loser wrong, so a
//! loser that won would show as a wrong password (exit 5).

use std::path::PathBuf;

use crate::util::*;

const WRONG: &str = "not the password";

struct Sources {
    env: Env,
    good_file: PathBuf,
    bad_file: PathBuf,
    good_cmd: String,
    bad_cmd: String,
}

fn sources() -> Sources {
    let env = Env::new();
    let good_file = env.write("good", format!("{PASSWORD}\n").as_bytes());
    let bad_file = env.write("bad", format!("{WRONG}\n").as_bytes());
    let good_cmd = format!("cat '{}'", good_file.display());
    let bad_cmd = format!("cat '{}'", bad_file.display());
    Sources {
        env,
        good_file,
        bad_file,
        good_cmd,
        bad_cmd,
    }
}

/// A source as a test states it.
#[derive(Clone, Copy)]
enum Src {
    FileFlag(bool),
    CommandFlag(bool),
    Password(bool),
    FileEnv(bool),
    CommandEnv(bool),
    FileToml(bool),
    CommandToml(bool),
}

impl Sources {
    fn file(&self, good: bool) -> String {
        let p = if good {
            &self.good_file
        } else {
            &self.bad_file
        };
        p.display().to_string()
    }

    fn command(&self, good: bool) -> String {
        if good { &self.good_cmd } else { &self.bad_cmd }.clone()
    }

    /// `rbk snapshots` with exactly these sources (no others in the environment).
    fn run(&self, srcs: &[Src]) -> Run {
        let mut args: Vec<String> = Vec::new();
        let mut toml = String::new();
        for s in srcs {
            match *s {
                Src::FileFlag(g) => args.extend(["--password-file".into(), self.file(g)]),
                Src::CommandFlag(g) => args.extend(["--password-command".into(), self.command(g)]),
                Src::FileToml(g) => toml.push_str(&format!("password_file = {:?}\n", self.file(g))),
                Src::CommandToml(g) => {
                    toml.push_str(&format!("password_command = {:?}\n", self.command(g)))
                }
                _ => {}
            }
        }
        let config = self.env.write("rbk.toml", toml.as_bytes());
        args.extend([
            "--config".into(),
            config.display().to_string(),
            "snapshots".into(),
        ]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut c = self.env.cmd(&args);
        c.env_remove("RBK_PASSWORD");
        for s in srcs {
            match *s {
                Src::Password(g) => {
                    c.env("RBK_PASSWORD", if g { PASSWORD } else { WRONG });
                }
                Src::FileEnv(g) => {
                    c.env("RBK_PASSWORD_FILE", self.file(g));
                }
                Src::CommandEnv(g) => {
                    c.env("RBK_PASSWORD_COMMAND", self.command(g));
                }
                _ => {}
            }
        }
        run(c)
    }
}

#[test]
fn each_source_beats_the_ones_after_it() {
    use Src::*;
    let s = sources();
    // The winner first, right; the others wrong.
    let cases: Vec<(&str, Vec<Src>)> = vec![
        (
            "a file flag over RBK_PASSWORD",
            vec![FileFlag(true), Password(false)],
        ),
        (
            "a command flag over RBK_PASSWORD",
            vec![CommandFlag(true), Password(false)],
        ),
        (
            "a file flag over RBK_PASSWORD_COMMAND",
            vec![FileFlag(true), CommandEnv(false)],
        ),
        (
            "a command flag over RBK_PASSWORD_FILE",
            vec![CommandFlag(true), FileEnv(false)],
        ),
        (
            "a file flag over rbk.toml's command",
            vec![FileFlag(true), CommandToml(false)],
        ),
        (
            "a command flag over rbk.toml's file",
            vec![CommandFlag(true), FileToml(false)],
        ),
        (
            "RBK_PASSWORD over RBK_PASSWORD_FILE",
            vec![Password(true), FileEnv(false)],
        ),
        (
            "RBK_PASSWORD over RBK_PASSWORD_COMMAND",
            vec![Password(true), CommandEnv(false)],
        ),
        (
            "RBK_PASSWORD over rbk.toml",
            vec![Password(true), FileToml(false)],
        ),
        (
            "RBK_PASSWORD_FILE over rbk.toml's command",
            vec![FileEnv(true), CommandToml(false)],
        ),
        (
            "RBK_PASSWORD_COMMAND over rbk.toml's file",
            vec![CommandEnv(true), FileToml(false)],
        ),
        (
            "RBK_PASSWORD_FILE over rbk.toml's file",
            vec![FileEnv(true), FileToml(false)],
        ),
        ("rbk.toml's file alone", vec![FileToml(true)]),
        ("rbk.toml's command alone", vec![CommandToml(true)]),
    ];
    let mut failures = Vec::new();
    for (what, srcs) in &cases {
        let r = s.run(srcs);
        if r.code != EXIT_OK {
            failures.push(format!("{what}: exit {}:\n{}", r.code, r.stderr));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_file_and_a_command_at_one_level_is_a_usage_error() {
    use Src::*;
    let s = sources();
    let cases: Vec<(&str, Vec<Src>)> = vec![
        ("two flags", vec![FileFlag(true), CommandFlag(true)]),
        (
            "two flags, RBK_PASSWORD set",
            vec![FileFlag(true), CommandFlag(true), Password(true)],
        ),
        ("two variables", vec![FileEnv(true), CommandEnv(true)]),
        (
            "two rbk.toml settings",
            vec![FileToml(true), CommandToml(true)],
        ),
    ];
    let mut failures = Vec::new();
    for (what, srcs) in &cases {
        let r = s.run(srcs);
        let named = r.stderr.contains("file") && r.stderr.contains("command");
        if r.code != EXIT_USAGE || !named {
            failures.push(format!("{what}: exit {} (want 2):\n{}", r.code, r.stderr));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The order is documented where users look: the README and `--help`.
#[test]
fn the_order_is_documented() {
    let readme = include_str!("../../README.md");
    assert!(
        readme.contains("`--password-file`/`--password-command`, then `RBK_PASSWORD`, then `RBK_PASSWORD_FILE`/`RBK_PASSWORD_COMMAND`, then rbk.toml, then the prompt"),
        "README must state the order"
    );
    let env = Env::empty();
    let help = env.ok(&["snapshots", "--help"]).stdout;
    assert!(
        help.contains("RBK_PASSWORD_FILE") && help.contains("RBK_PASSWORD_COMMAND"),
        "{help}"
    );
}
