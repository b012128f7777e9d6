//! The command line: clap types, one file per command, and the only code that prints.

mod check;
mod completions;
mod diff;
mod forget;
mod global;
mod init;
mod key;
mod man;
mod output;
mod password;
mod progress;
mod prune;
mod restore;
mod settings;
mod snapshot;
mod snapshots;
mod stats;
mod unlock;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    /// Stopped by SIGINT or SIGTERM (128 + SIGINT, as shells report a Ctrl-C): nothing saved.
    pub const INTERRUPTED: u8 = 130;

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
    Stats(stats::StatsArgs),
    Diff(diff::DiffArgs),
    Prune(prune::PruneArgs),
    Forget(forget::ForgetArgs),
    Unlock(unlock::UnlockArgs),
    Completions(completions::CompletionsArgs),
    Man(man::ManArgs),
}

pub fn run() -> ExitCode {
    crate::store::time::init_local_offset();
    let cli = Cli::parse();
    init_tracing(&cli.global);
    let result = match &cli.command {
        Command::Init(a) => init::run(&cli.global, a),
        Command::Key(a) => key::run(&cli.global, a),
        Command::Snapshot(a) => snapshot::run(&cli.global, a),
        Command::Snapshots(a) => snapshots::run(&cli.global, a),
        Command::Restore(a) => restore::run(&cli.global, a),
        Command::Check(a) => check::run(&cli.global, a),
        Command::Stats(a) => stats::run(&cli.global, a),
        Command::Diff(a) => diff::run(&cli.global, a),
        Command::Prune(a) => prune::run(&cli.global, a),
        Command::Forget(a) => forget::run(&cli.global, a),
        Command::Unlock(a) => unlock::run(&cli.global, a),
        Command::Completions(a) => completions::run(a),
        Command::Man(a) => man::run(a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("rbk: error: {e:#}");
            if disk_full(&e) {
                eprintln!(
                    "rbk: the disk is full. Nothing half-written was kept: free space (e.g. `rbk prune`) and run the command again"
                );
            }
            ExitCode::from(exit_code_of(&e))
        }
    }
}

fn disk_full(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        let io = match c.downcast_ref::<StoreError>() {
            Some(StoreError::Io { error, .. }) => Some(error),
            Some(StoreError::Input(error) | StoreError::Output(error)) => Some(error),
            _ => c.downcast_ref::<std::io::Error>(),
        };
        io.and_then(std::io::Error::raw_os_error) == Some(libc::ENOSPC)
    })
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
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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
