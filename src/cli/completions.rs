//! `rbk completions SHELL`: a completion script generated from the clap definition, so it never
//! drifts from the commands and options rbk really has.

use anyhow::Result;
use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::Cli;

/// Print a shell completion script on stdout.
///
/// Example: rbk completions bash > /etc/bash_completion.d/rbk
#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub fn run(args: &CompletionsArgs) -> Result<u8> {
    let mut cmd = Cli::command();
    // Into memory first: clap_complete panics when its writer fails, and a
    // closed stdout (`rbk completions bash | head`) is an error, not a crash.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "rbk", &mut script);
    super::output::raw(&script);
    Ok(super::exit::OK)
}
