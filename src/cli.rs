//! The command line: clap types, one file per command, and the only code that prints.

mod check;
mod global;
mod init;
mod output;
mod password;
mod restore;
mod settings;
mod snapshot;
mod snapshots;
mod unlock;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::store::StoreError;
pub use global::GlobalArgs;

/// Exit codes, documented in the README.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    /// clap's own code for bad usage.
    pub const USAGE: u8 = 2;
    pub const DAMAGED: u8 = 3;
    pub const LOCKED: u8 = 4;
    pub const WRONG_PASSWORD: u8 = 5;
}

#[derive(Parser, Debug)]
#[command(
    name = "rbk",
    version,
    about = "Deduplicating, encrypted backups of RushDB stacks (Neo4j + SQL metadata)"
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
    Snapshot(snapshot::SnapshotArgs),
    Snapshots(snapshots::SnapshotsArgs),
    Restore(restore::RestoreArgs),
    Check(check::CheckArgs),
    Unlock(unlock::UnlockArgs),
}

pub fn run() -> ExitCode {
    crate::store::time::init_local_offset();
    let cli = Cli::parse();
    init_tracing(&cli.global);
    let result = match &cli.command {
        Command::Init(a) => init::run(&cli.global, a),
        Command::Snapshot(a) => snapshot::run(&cli.global, a),
        Command::Snapshots(a) => snapshots::run(&cli.global, a),
        Command::Restore(a) => restore::run(&cli.global, a),
        Command::Check(a) => check::run(&cli.global, a),
        Command::Unlock(a) => unlock::run(&cli.global, a),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("rbk: error: {e:#}");
            ExitCode::from(exit_code_of(&e))
        }
    }
}

fn exit_code_of(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
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
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RBK_LOG").unwrap_or_else(|_| level.into()),
        )
        .without_time()
        .try_init();
}
