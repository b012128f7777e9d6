//! `rbk man`: a roff man page generated from the clap definition, so the manual always says what
//! `--help` says.

use std::io::Write;

use anyhow::Result;
use clap::{Args, CommandFactory};

use super::Cli;

/// Print rbk's man page (roff) on stdout.
///
/// Example: rbk man > /usr/local/share/man/man1/rbk.1 && man rbk
#[derive(Args, Debug)]
pub struct ManArgs {}

pub fn run(_args: &ManArgs) -> Result<u8> {
    let mut page = Vec::new();
    render(&mut page)?;
    super::output::raw(&page);
    Ok(super::exit::OK)
}

/// The variables rbk reads, for ENVIRONMENT (tests/it/help.rs finds every `RBK_*` the source
/// names and holds this list to it).
const ENVIRONMENT: [(&str, &str); 20] = [
    ("RBK_REPO", "The repository, as --repo."),
    ("RBK_CONFIG", "The configuration file, as --config."),
    (
        "RBK_PASSWORD",
        "The password itself. Beaten by --password-file and --password-command; beats \
         RBK_PASSWORD_FILE, RBK_PASSWORD_COMMAND and rbk.toml.",
    ),
    (
        "RBK_PASSWORD_FILE",
        "A file whose first line is the password, below the flags and RBK_PASSWORD and above \
         rbk.toml. Setting it and RBK_PASSWORD_COMMAND is an error (exit 2).",
    ),
    (
        "RBK_PASSWORD_COMMAND",
        "A shell command whose first output line is the password (same place as \
         RBK_PASSWORD_FILE).",
    ),
    ("RBK_PROGRESS", "auto, json or none, as --progress."),
    ("RBK_COPY_TO", "The destination of `rbk copy`, as its --to."),
    (
        "RBK_METRICS_FILE",
        "The Prometheus metrics file of snapshot, restore, prune, check, verify and copy, as \
         --metrics-file.",
    ),
    (
        "RBK_PING_URL",
        "The dead-man ping URL of snapshot, restore, prune, check, verify and copy, as \
         --ping-url.",
    ),
    (
        "RBK_COPY_PASSWORD_FILE",
        "The destination's password file for `rbk copy`, as its --to-password-file.",
    ),
    (
        "RBK_COPY_PASSWORD_COMMAND",
        "The destination's password command for `rbk copy`, as its --to-password-command.",
    ),
    (
        "RBK_LOG",
        "A tracing filter for what rbk logs on stderr (e.g. rbk=debug); overrides -q and -v.",
    ),
    (
        "RBK_POSTGRES_PASSWORD",
        "The Postgres password for a stack snapshot or restore; beats postgres_password_file \
         in rbk.toml.",
    ),
    (
        "RBK_NEO4J_PASSWORD",
        "The Neo4j password (Enterprise: STOP and START DATABASE); beats neo4j_password_file \
         in rbk.toml.",
    ),
    (
        "DOCKER_HOST",
        "The Docker engine to talk to in stack mode (default: /var/run/docker.sock).",
    ),
    (
        "RBK_FAULT",
        "For rbk's own tests only: ACTION@OPERATION:N makes the repository backend fail or \
         kill the process at its Nth such operation (for `rbk copy`, the destination's).",
    ),
    (
        "RBK_TEST_DELAY_COMMIT_MS",
        "For rbk's own tests only: wait N ms between restarting the stack and committing.",
    ),
    (
        "RBK_TEST_AFTER_PRECOPY",
        "For rbk's own tests only: a shell command run between a volume-mode snapshot's \
         pre-copy and its pause.",
    ),
    (
        "RBK_TEST_ONE_OFF_SCAN",
        "For rbk's own tests only: 1 reads a volume-mode snapshot's data volume through a \
         one-off container even where this host could read it directly.",
    ),
    (
        "RBK_TEST_PARTIAL_NAME",
        "For rbk's own tests only: the first temporary file name a restore tries (16 hex \
         digits), so a test can plant a link there.",
    ),
];

/// One page for rbk and every command: the page for `rbk` lists the commands; each command's
/// synopsis, description and options follow in a section of its own (their headings demoted
/// to subsections), `key`'s commands in sections of their own too, so one installed file
/// documents every option and refers to no page that is not installed.
fn render(page: &mut Vec<u8>) -> Result<()> {
    let cmd = Cli::command();
    let man = clap_mangen::Man::new(cmd.clone());
    man.render_title(page)?;
    man.render_name_section(page)?;
    man.render_synopsis_section(page)?;
    man.render_description_section(page)?;
    man.render_options_section(page)?;
    commands(page, &cmd, "rbk")?;
    exit_status(page)?;
    environment(page)?;
    let mut examples = Vec::new();
    man.render_extra_section(&mut examples)?;
    for line in String::from_utf8_lossy(&examples).lines() {
        match line {
            ".SH EXTRA" => writeln!(page, ".SH EXAMPLES")?,
            _ => writeln!(page, "{line}")?,
        }
    }
    for sub in subcommands(&cmd) {
        command_section(page, sub, "rbk")?;
    }
    man.render_version_section(page)?;
    Ok(())
}

/// The commands of `cmd` rbk defines (not clap's `help`).
fn subcommands(cmd: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    cmd.get_subcommands().filter(|s| s.get_name() != "help")
}

/// `.SH COMMANDS` (or a subsection): each command with its summary and where its section is.
fn commands(page: &mut Vec<u8>, cmd: &clap::Command, parent: &str) -> Result<()> {
    let heading = if parent == "rbk" { ".SH" } else { ".SS" };
    writeln!(page, "{heading} COMMANDS")?;
    for sub in subcommands(cmd) {
        let name = format!("{parent} {}", sub.get_name());
        writeln!(page, ".TP")?;
        writeln!(page, "\\fB{}\\fR", text(&name))?;
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        writeln!(
            page,
            "{} (see {} below).",
            text(about.trim_end_matches('.')),
            text(&name.to_uppercase())
        )?;
    }
    Ok(())
}

/// `.SH "RBK NAME"`: the synopsis, description and options of one command, then its own
/// commands' sections.
fn command_section(page: &mut Vec<u8>, sub: &clap::Command, parent: &str) -> Result<()> {
    let name = format!("{parent} {}", sub.get_name());
    let man = clap_mangen::Man::new(sub.clone().bin_name(name.clone()));
    let mut section = Vec::new();
    man.render_synopsis_section(&mut section)?;
    man.render_description_section(&mut section)?;
    man.render_options_section(&mut section)?;
    writeln!(page, ".SH \"{}\"", name.to_uppercase())?;
    for line in String::from_utf8_lossy(&section).lines() {
        match line.strip_prefix(".SH ") {
            Some(heading) => writeln!(page, ".SS {heading}")?,
            None => writeln!(page, "{line}")?,
        }
    }
    if sub.has_subcommands() {
        commands(page, sub, &name)?;
        for nested in subcommands(sub) {
            command_section(page, nested, &name)?;
        }
    }
    Ok(())
}

fn exit_status(page: &mut Vec<u8>) -> Result<()> {
    writeln!(page, ".SH \"EXIT STATUS\"")?;
    for (code, meaning) in super::exit::MEANINGS {
        writeln!(page, ".TP\n{code}\n{}", text(meaning))?;
    }
    writeln!(
        page,
        ".PP\nScripts that chain commands treat 0 and 6 as success. The codes are never renumbered."
    )?;
    Ok(())
}

fn environment(page: &mut Vec<u8>) -> Result<()> {
    writeln!(page, ".SH ENVIRONMENT")?;
    for (name, meaning) in ENVIRONMENT {
        writeln!(page, ".TP\n\\fB{}\\fR\n{}", text(name), text(meaning))?;
    }
    Ok(())
}

/// Plain text as roff: backslashes and hyphens escaped, no line taken for a request.
fn text(s: &str) -> String {
    let escaped = s.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with('.') || escaped.starts_with('\'') {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}
