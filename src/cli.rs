//! The command line: clap types, one file per command, and the only code that prints.

// Every `println!`, `print!`, `eprintln!` and `eprint!` in this file and in the modules
// declared below is one of these: they go through `output`, whose writer never panics on a
// closed or full stream and escapes control characters (see output.rs). Textual macro scope
// reaches only what follows, so they stay above the first `mod` (tests/tidy.rs checks).
macro_rules! println {
    () => {
        $crate::cli::output::out(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::cli::output::out(format_args!($($arg)*), true)
    };
}

#[allow(unused_macros)]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::cli::output::out(format_args!($($arg)*), false)
    };
}

macro_rules! eprintln {
    () => {
        $crate::cli::output::err(format_args!(""), true)
    };
    ($($arg:tt)*) => {
        $crate::cli::output::err(format_args!($($arg)*), true)
    };
}

#[allow(unused_macros)]
macro_rules! eprint {
    ($($arg:tt)*) => {
        $crate::cli::output::err(format_args!($($arg)*), false)
    };
}

mod alloc;
mod check;
mod completions;
mod copy;
mod diff;
mod drill;
mod forget;
mod global;
mod init;
mod keep;
mod key;
mod man;
mod monitor;
mod output;
mod password;
mod progress;
mod prune;
mod repair;
mod restore;
mod settings;
mod signals;
mod snapshot;
mod snapshots;
mod stats;
mod status;
mod unlock;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::restore::RestoringInto;
use crate::store::StoreError;
pub use global::GlobalArgs;

/// Exit codes, documented in the README and docs/JSON.md. Never renumbered: scripts and
/// systemd units (`SuccessExitStatus=`) hold these numbers.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    /// clap's own code for bad usage.
    pub const USAGE: u8 = 2;
    pub const DAMAGED: u8 = 3;
    pub const LOCKED: u8 = 4;
    pub const WRONG_PASSWORD: u8 = 5;
    /// Done, with warnings: the command did its job (the snapshot is saved, the restore is
    /// complete, the check found no damage) but reported something the user should look at.
    /// Its own code, so that an unattended run can raise it without calling it a failure.
    pub const WARNINGS: u8 = 6;
    /// `rbk status` found something that needs attention: a backup, drill or check overdue,
    /// damage reported, a snapshot that cannot be read, a stale lock. It names each.
    pub const NEEDS_ATTENTION: u8 = 7;
    /// Stopped by SIGINT or SIGTERM (128 + SIGINT, as shells report a Ctrl-C): nothing saved.
    pub const INTERRUPTED: u8 = 130;

    /// What each code means, for `rbk man` (the README's table says the same; a test holds
    /// the man page to its codes).
    pub const MEANINGS: [(u8, &str); 9] = [
        (OK, "success"),
        (FAILED, "failed (bad input, a producer failed, I/O error)"),
        (
            USAGE,
            "bad usage: the command line (or rbk.toml) must be fixed; nothing was done",
        ),
        (
            DAMAGED,
            "the repository is damaged (check found errors, or restore met damaged data)",
        ),
        (LOCKED, "the repository is locked by another process"),
        (WRONG_PASSWORD, "wrong password"),
        (
            WARNINGS,
            "done, with warnings: the command did its job, but reported something to look at",
        ),
        (
            NEEDS_ATTENTION,
            "status: something needs attention (a backup, drill or check overdue, damage reported, a stale lock); each is named",
        ),
        (
            INTERRUPTED,
            "stopped by Ctrl-C or SIGTERM: nothing was saved (snapshot), the stack was started again (stack and host mode)",
        ),
    ];

    /// OK, or WARNINGS when there are any.
    pub fn done(warnings: usize) -> u8 {
        if warnings == 0 { OK } else { WARNINGS }
    }
}

#[derive(Parser, Debug)]
#[command(
    name = "rbk",
    version,
    about = "Deduplicating, encrypted backups of RushDB stacks (Neo4j + SQL metadata)",
    after_help = "Examples:
  rbk init -r /mnt/nas/rbk               # a repository (asks for its password)
  rbk snapshot                           # the stack: pause writes, dump Neo4j + SQL, resume
  rbk snapshots                          # what the repository holds
  rbk restore latest                     # both stores back into the stack, consistently
  rbk prune --keep-daily 7 --keep-weekly 4   # retention, then reclaim space
  rbk check --read-data                  # prove every byte is intact

Settings come from ./rbk.toml (or --config), options and RBK_* variables; see `rbk man`."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    Init(init::InitArgs),
    Key(key::KeyArgs),
    Snapshot(snapshot::SnapshotArgs),
    Snapshots(snapshots::SnapshotsArgs),
    Restore(restore::RestoreArgs),
    Check(check::CheckArgs),
    Verify(verify::VerifyArgs),
    Stats(stats::StatsArgs),
    Status(status::StatusArgs),
    Diff(diff::DiffArgs),
    Prune(prune::PruneArgs),
    Copy(copy::CopyArgs),
    Forget(forget::ForgetArgs),
    Repair(repair::RepairArgs),
    Unlock(unlock::UnlockArgs),
    Completions(completions::CompletionsArgs),
    Man(man::ManArgs),
}

pub fn run() -> ExitCode {
    crate::store::time::init_local_offset();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help, version, or clap's own usage error (exit 2).
            return match output::clap_message(&e) {
                Ok(()) => ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(exit::USAGE)),
                Err(w) => ExitCode::from(stdout_failed(&w, exit::OK)),
            };
        }
    };
    init_tracing(&cli.global);
    let monitor = monitor::Monitor::of(&cli.global, &cli.command);
    if let Some(m) = &monitor {
        m.start();
    }
    let result = match &cli.command {
        _ if cli.global.no_lock && !reads_only(&cli.command) => Err(crate::usage!(
            "--no-lock is for commands that only read the repository (restore, check, verify, snapshots, \
             stats, status, diff, key list): the others need the lock to keep it consistent"
        )),
        Command::Init(a) => init::run(&cli.global, a),
        Command::Key(a) => key::run(&cli.global, a),
        Command::Snapshot(a) => snapshot::run(&cli.global, a),
        Command::Snapshots(a) => snapshots::run(&cli.global, a),
        Command::Restore(a) => restore::run(&cli.global, a),
        Command::Check(a) => check::run(&cli.global, a),
        Command::Verify(a) => verify::run(&cli.global, a),
        Command::Stats(a) => stats::run(&cli.global, a),
        Command::Status(a) => status::run(&cli.global, a),
        Command::Diff(a) => diff::run(&cli.global, a),
        Command::Prune(a) => prune::run(&cli.global, a),
        Command::Copy(a) => copy::run(&cli.global, a),
        Command::Forget(a) => forget::run(&cli.global, a),
        Command::Repair(a) => repair::run(&cli.global, a),
        Command::Unlock(a) => unlock::run(&cli.global, a),
        Command::Completions(a) => completions::run(a),
        Command::Man(a) => man::run(a),
    };
    let mut error = None;
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            let text = format!("{e:#}");
            // Continuation lines (a producer's stderr tail) indented: only rbk's own first
            // line starts with `rbk:`, whatever the message quotes.
            eprintln!("rbk: error: {}", text.replace('\n', "\n  "));
            error = Some(text);
            match disk_full(&e) {
                Some(FullDisk::Repository) => eprintln!(
                    "rbk: the disk is full. Nothing half-written was kept: free space (e.g. `rbk prune`) and run the command again"
                ),
                Some(FullDisk::Target(dir)) => eprintln!(
                    "rbk: the disk holding {} is full: it is where the restore writes, not the repository. \
                     Nothing half-written was kept: free space there, or restore onto another disk (--to DIR), and run the restore again",
                    dir.map_or("the restore's target".into(), |d| d.display().to_string())
                ),
                None => {}
            }
            exit_code_of(&e)
        }
    };
    if let Some(m) = monitor {
        m.finish(&cli.global, code, error.as_deref());
    }
    // The command has ended (its locks are released): only now does a failed stdout count.
    match output::finish() {
        None => ExitCode::from(code),
        Some(e) => ExitCode::from(stdout_failed(&e, code)),
    }
}

/// The exit code of a run that could not write its output: a closed pipe is a quiet end
/// (the reader had enough: `rbk snapshots | head`), anything else (a full disk) an error,
/// exit 1 unless the command had already failed with its own code.
fn stdout_failed(e: &std::io::Error, code: u8) -> u8 {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        return code;
    }
    eprintln!("rbk: error: cannot write to standard output: {e}");
    if code == exit::OK || code == exit::WARNINGS {
        exit::FAILED
    } else {
        code
    }
}

/// Which disk an error says is full.
enum FullDisk<'a> {
    /// The repository's (or an input's): pruning frees space there.
    Repository,
    /// The one a restore writes to (its directory when known): pruning would not help.
    Target(Option<&'a std::path::Path>),
}

fn disk_full(e: &anyhow::Error) -> Option<FullDisk<'_>> {
    let mut full = false;
    let mut output = false;
    for c in e.chain() {
        let io = match c.downcast_ref::<StoreError>() {
            Some(StoreError::Io { error, .. } | StoreError::Input(error)) => Some(error),
            Some(StoreError::Output(error)) => {
                output = true;
                Some(error)
            }
            _ => c.downcast_ref::<std::io::Error>(),
        };
        full |= io.and_then(std::io::Error::raw_os_error) == Some(libc::ENOSPC);
    }
    if !full {
        return None;
    }
    // A context anywhere in the chain: anyhow finds it from the outermost error.
    match e.downcast_ref::<RestoringInto>() {
        Some(t) => Some(FullDisk::Target(Some(&t.dir))),
        None if output => Some(FullDisk::Target(None)),
        None => Some(FullDisk::Repository),
    }
}

/// Commands that only read the repository, which `--no-lock` may run without its lock.
fn reads_only(command: &Command) -> bool {
    match command {
        Command::Snapshots(_)
        | Command::Restore(_)
        | Command::Check(_)
        | Command::Verify(_)
        | Command::Stats(_)
        | Command::Status(_)
        | Command::Diff(_) => true,
        Command::Key(k) => matches!(k.command, key::KeyCommand::List(_)),
        _ => false,
    }
}

fn exit_code_of(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if cause.is::<crate::usage::UsageError>() {
            return exit::USAGE;
        }
        if let Some(s) = cause.downcast_ref::<StoreError>() {
            return match s {
                StoreError::Locked { .. } => exit::LOCKED,
                StoreError::WrongPassword { .. } => exit::WRONG_PASSWORD,
                s if s.is_damage() => exit::DAMAGED,
                _ => exit::FAILED,
            };
        }
    }
    exit::FAILED
}

fn init_tracing(global: &GlobalArgs) {
    let level = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        _ => "debug",
    };
    // `-v` and `-vv` raise rbk's own level only: the Docker client logs
    // request bodies at debug, and those hold container environments
    // (passwords, RushDB's encryption key).
    let default = if global.quiet {
        "error".to_string()
    } else {
        format!("warn,rbk={level}")
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(|| progress::LogWriter)
        .with_ansi(output::stderr_is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RBK_LOG")
                .unwrap_or_else(|_| default.into()),
        )
        .without_time()
        // When stderr is closed (a cron job's), a failed log write must not
        // panic through `eprintln!`: that would kill the task restarting the stack.
        .log_internal_errors(false)
        .try_init();
}
