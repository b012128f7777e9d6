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

/// One page for rbk and every command: clap_mangen's page for `rbk` lists the commands, and
/// each command's synopsis, description and options follow in a section of its own (their
/// headings demoted to subsections), so one installed file documents every option.
fn render(page: &mut Vec<u8>) -> Result<()> {
    let cmd = Cli::command();
    clap_mangen::Man::new(cmd.clone()).render(page)?;
    for sub in cmd.get_subcommands() {
        let name = format!("rbk {}", sub.get_name());
        let man = clap_mangen::Man::new(sub.clone().bin_name(name.clone()));
        let mut section = Vec::new();
        man.render_synopsis_section(&mut section)?;
        man.render_description_section(&mut section)?;
        man.render_options_section(&mut section)?;
        if sub.has_subcommands() {
            man.render_subcommands_section(&mut section)?;
        }
        writeln!(page, ".SH \"{}\"", name.to_uppercase())?;
        for line in String::from_utf8_lossy(&section).lines() {
            match line.strip_prefix(".SH ") {
                Some(heading) => writeln!(page, ".SS {heading}")?,
                None => writeln!(page, "{line}")?,
            }
        }
    }
    Ok(())
}
