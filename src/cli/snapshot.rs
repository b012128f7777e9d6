//! `rbk snapshot`: store files, stdin or a producer's output as one snapshot.

use std::path::PathBuf;

use anyhow::Result;
use clap::{ArgAction, Args};

use super::global::GlobalArgs;
use super::output::{bytes, esc, esc_join, json, rate};
use super::signals::{Second, cancel_on_signals, interrupted};
use crate::backup::host::snapshot_host;
use crate::backup::stack::{
    GraphMode, StackOutcome, StackPlan, StackSnapshotOptions, snapshot_stack,
};
use crate::backup::{Interrupted, PartSpec, Raw, Saved, SnapshotOptions, check_plan, snapshot};
use crate::parts::PartInput;
use crate::stack::names::pause_ms;
use crate::stack::phases::phases;

/// Take a snapshot: of the running RushDB stack (no part options), or of
/// the given parts (each --path, --stdin or --command is one part).
///
/// Examples:
///   rbk snapshot                       # the stack: pause writes, dump Neo4j + SQL, resume
///   rbk snapshot --dry-run             # what would stop, and for how long last time
///   rbk snapshot --volumes             # the stack, plus its other volumes as tar parts
///   rbk snapshot --path ./neo4j.dump --path ./metadata.sql
///   pg_dump rushdb | rbk snapshot --stdin metadata.sql
///   rbk snapshot --command metadata.sql -- pg_dump rushdb
#[derive(Args, Debug)]
// Verbatim: clap would otherwise join the example lines into one paragraph.
#[command(
    verbatim_doc_comment,
    about = "Take a snapshot of the running stack, or of the given files and streams"
)]
pub struct SnapshotArgs {
    /// A file to store; the part is named after the file.
    #[arg(long = "path", value_name = "FILE")]
    pub paths: Vec<PathBuf>,
    /// Store standard input as the part NAME.
    #[arg(long, value_name = "NAME")]
    pub stdin: Option<String>,
    /// Run PROGRAM (after `--`) and store its stdout as the part NAME;
    /// nothing is committed if it exits non-zero.
    #[arg(long = "command", value_name = "NAME", requires = "program")]
    pub command_name: Option<String>,
    /// The producer for --command NAME, and its arguments, after `--`.
    #[arg(last = true, value_name = "PROGRAM ARGS")]
    pub program: Vec<String>,
    /// Label the snapshot with these tags (comma-separated, as `prune --keep-tag`
    /// reads them; repeatable).
    #[arg(long = "tag", value_name = "TAGS", value_parser = super::keep::parse_tags)]
    pub tags: Vec<Vec<String>>,
    /// Record this host name instead of the machine's.
    #[arg(long)]
    pub host: Option<String>,
    /// Store parts byte for byte, with no Neo4j dump detection: every part, or with NAME
    /// only that part (repeatable: --raw a.dump --raw b.dump).
    #[arg(
        long,
        value_name = "NAME",
        num_args = 0..=1,
        // Never a part name (those are not empty): the bare flag, meaning every part.
        default_missing_value = "",
        action = ArgAction::Append
    )]
    pub raw: Vec<String>,
    /// Record this time (RFC 3339, e.g. 2026-03-01T02:00:00+01:00) instead of now:
    /// for importing older dumps with --path. Retention uses it and its offset.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub time: Option<String>,
    /// Accept a --time more than 5 minutes ahead of this machine's clock (it would be the
    /// newest snapshot, and the end of every --keep-within window, until that time passes).
    #[arg(long, requires = "time")]
    pub allow_future: bool,
    /// Stack mode: print the plan (containers found, what stops) and do nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Stack mode: the Compose project (default: found by the `rushdb` service label).
    #[arg(long)]
    pub project: Option<String>,
    /// Stack mode: also store the other named volumes of `rushdb` and `neo4j` (not the
    /// dumped data volumes), each as a tar part `volume.NAME.tar`.
    #[arg(long)]
    pub volumes: bool,
    /// Stack mode: how the graph is stored. `dump` (the default): `neo4j-admin database
    /// dump`, which loads into any later Neo4j. `volume`: the data volume's store files,
    /// archived while the stack runs and then, with Neo4j stopped, only what changed since
    /// (a shorter write pause; the Neo4j server is stopped, Enterprise too); restored only
    /// into the same Neo4j version. Default from rbk.toml `[neo4j] mode`.
    #[arg(long, value_name = "MODE", value_parser = ["dump", "volume"])]
    pub neo4j_mode: Option<String>,
}

pub fn run(global: &GlobalArgs, args: &SnapshotArgs) -> Result<u8> {
    let mut parts = Vec::new();
    for path in &args.paths {
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            return Err(crate::usage!(
                "{} has no file name to name its part; use --stdin NAME < FILE",
                path.display()
            ));
        };
        parts.push(PartSpec {
            name: name.to_string(),
            input: PartInput::File(path.clone()),
        });
    }
    if let Some(name) = &args.stdin {
        parts.push(PartSpec {
            name: name.clone(),
            input: PartInput::Stdin,
        });
    }
    match (&args.command_name, args.program.split_first()) {
        (Some(name), Some((program, rest))) => parts.push(PartSpec {
            name: name.clone(),
            input: PartInput::Command {
                program: program.clone(),
                args: rest.to_vec(),
            },
        }),
        (None, Some(_)) => return Err(crate::usage!("a program after `--` needs --command NAME")),
        (Some(_), None) => return Err(crate::usage!("--command NAME needs a program after `--`")),
        (None, None) => {}
    }
    if parts.is_empty() {
        return run_stack(global, args);
    }
    if args.dry_run || args.volumes {
        return Err(crate::usage!(
            "--dry-run and --volumes are for a stack snapshot; they cannot be combined with --path, --stdin or --command"
        ));
    }
    if let Some(time) = &args.time {
        refuse_future(time, args.allow_future)?;
    }
    let options = SnapshotOptions {
        parts,
        tags: args.tags.concat(),
        host: args.host.clone(),
        raw: raw_parts(&args.raw),
        time: args.time.clone(),
        ..SnapshotOptions::default()
    };
    // Usage errors before the password is asked for, as clap's are.
    check_plan(&options)?;
    let repo = global.open()?;
    // After the password (a prompt must stay interruptible by Ctrl-C as usual) and before
    // anything is locked or read.
    let options = SnapshotOptions {
        cancel: cancel_on_signals(Second::Exits)?,
        ..options
    };
    let saved = match snapshot(&repo, &options) {
        Ok(saved) => saved,
        Err(e) => {
            return match e.downcast_ref::<Interrupted>() {
                Some(i) => {
                    say_interrupted(i);
                    Ok(super::exit::INTERRUPTED)
                }
                None => Err(e),
            };
        }
    };
    Ok(saved_with_warnings(global, &saved))
}

/// `--raw` (every part), `--raw NAME` (those parts), or neither.
fn raw_parts(raw: &[String]) -> Raw {
    if raw.is_empty() {
        Raw::Detect
    } else if raw.iter().any(String::is_empty) {
        Raw::All
    } else {
        Raw::Parts(raw.to_vec())
    }
}

/// What a signal cut short, on stderr: nothing was saved, and how far it had got.
fn say_interrupted(i: &Interrupted) {
    eprintln!("rbk: {i}");
    if let Some((name, origin, read)) = &i.reading {
        eprintln!(
            "rbk: {} of part {name:?} ({origin}) had been read",
            bytes(*read)
        );
    }
    if !i.done.is_empty() {
        let done: Vec<String> = i
            .done
            .iter()
            .map(|(name, size)| format!("{name:?} ({})", bytes(*size)))
            .collect();
        eprintln!("rbk: read in full before that: {}", done.join(", "));
    }
    if !i.not_started.is_empty() {
        let names: Vec<String> = i.not_started.iter().map(|n| format!("{n:?}")).collect();
        eprintln!("rbk: not started: {}", names.join(", "));
    }
}

/// Prints a saved snapshot's warnings (on stderr, unless --quiet; in --json's `warnings`
/// too) and its report; done, or done with warnings.
fn saved_with_warnings(global: &GlobalArgs, saved: &Saved) -> u8 {
    if !global.quiet {
        for w in &saved.warnings {
            eprintln!("warning: {w}");
        }
    }
    report(global, &saved.id, &saved.snapshot, &saved.warnings);
    super::exit::done(saved.warnings.len())
}

/// Accepts RFC 3339 only, and keeps the text as given (its offset is the
/// time zone retention buckets the snapshot in).
fn parse_time(s: &str) -> std::result::Result<String, String> {
    crate::store::time::parse_rfc3339(s)
        .map(|_| s.to_string())
        .ok_or_else(|| format!("{s:?} is not an RFC 3339 time like 2026-03-01T02:00:00+01:00"))
}

/// How far ahead of the clock `--time` may be without `--allow-future`: clock skew between
/// the machine that made a dump and this one, not a date typed a year wrong.
const FUTURE_TOLERANCE_SECS: i64 = 5 * 60;

/// A snapshot dated in the future would be `latest` until that time and would move every
/// `--keep-within` window with it: refused unless asked for.
fn refuse_future(time: &str, allow: bool) -> Result<()> {
    let Some(t) = crate::store::time::parse_rfc3339(time) else {
        return Ok(());
    };
    let ahead = t.unix_timestamp() - crate::store::time::now_unix();
    if ahead > FUTURE_TOLERANCE_SECS && !allow {
        return Err(crate::usage!(
            "--time {time} is {} ahead of this machine's clock: the snapshot would be the newest \
             until then, and --keep-within would count from it. Check the date, or give \
             --allow-future",
            humantime::format_duration(std::time::Duration::from_secs(ahead.unsigned_abs()))
        ));
    }
    Ok(())
}

fn run_stack(global: &GlobalArgs, args: &SnapshotArgs) -> Result<u8> {
    if args.time.is_some() {
        return Err(crate::usage!(
            "--time records when imported dumps were taken; a stack snapshot is taken now"
        ));
    }
    let settings = global.settings()?;
    if settings.host.is_some() && (args.dry_run || args.volumes || args.neo4j_mode.is_some()) {
        return Err(crate::usage!(
            "--dry-run, --volumes and --neo4j-mode are for a Docker stack snapshot; rbk.toml selects host mode"
        ));
    }
    let repo = global.open()?;
    // After the password, as for parts; a second signal waits for the restart.
    let cancel = cancel_on_signals(Second::Waits)?;
    if let Some(host) = &settings.host {
        let saved =
            match snapshot_host(&repo, host, &args.tags.concat(), args.host.clone(), &cancel) {
                Ok(saved) => saved,
                Err(e) => return interrupted(e, &cancel, "no snapshot is saved"),
            };
        return Ok(saved_with_warnings(global, &saved));
    }
    let options = StackSnapshotOptions {
        stack: settings.stack_config(args.project.as_deref())?,
        tags: args.tags.concat(),
        host: args.host.clone(),
        dry_run: args.dry_run,
        volumes: args.volumes,
        graph_mode: match args.neo4j_mode.as_deref() {
            Some("volume") => GraphMode::Volume,
            Some(_) => GraphMode::Dump,
            None => settings.neo4j.mode.unwrap_or_default(),
        },
        cancel: cancel.clone(),
    };
    let outcome = match snapshot_stack(&repo, &options) {
        Ok(outcome) => outcome,
        Err(e) => return interrupted(e, &cancel, "no snapshot is saved"),
    };
    match outcome {
        StackOutcome::Planned(plan) => {
            if global.json {
                json(&serde_json::to_value(&plan)?);
            } else {
                print_plan(&plan);
            }
            // A plan did nothing, so there is nothing to be done "with warnings": 0, and
            // its warnings are in what it prints.
            Ok(super::exit::OK)
        }
        StackOutcome::Saved { id, snapshot, plan } => {
            if !global.json && !global.quiet {
                for w in &plan.warnings {
                    eprintln!("warning: {}", esc(w));
                }
            }
            report(global, &id, &snapshot, &plan.warnings);
            // The snapshot is saved, but a warning (a default encryption key, SQLite in a
            // container layer) needs a person: 6, which the shipped schedule files count as
            // success (the prune still runs) while a script can still tell it apart.
            Ok(super::exit::done(plan.warnings.len()))
        }
    }
}

fn print_plan(plan: &StackPlan) {
    println!("stack {}:", esc(&plan.project));
    println!("  rushdb  {}", esc(&plan.rushdb));
    println!("  graph   {}", esc(&plan.graph));
    println!("  sql     {}", esc(&plan.sql));
    println!(
        "would stop {} (in that order), store {}, then start them again",
        esc_join(&plan.stops, ", "),
        esc_join(&plan.parts, " + ")
    );
    match plan.last_pause_ms {
        Some(ms) => println!(
            "writes were paused for {:.1} s during the last stack snapshot",
            ms as f64 / 1000.0
        ),
        None => println!("no earlier stack snapshot to estimate the write pause from"),
    }
    for w in &plan.warnings {
        println!("warning: {}", esc(w));
    }
}

fn report(
    global: &GlobalArgs,
    id: &crate::store::Id,
    snap: &crate::store::manifest::Snapshot,
    warnings: &[String],
) {
    let s = &snap.stats;
    {
        use super::monitor::{Figure, record};
        record(Figure::ReadBytes, s.bytes_read as f64);
        record(Figure::AddedBytes, s.bytes_added as f64);
        record(Figure::Chunks, s.chunks as f64);
        record(Figure::NewChunks, s.new_chunks as f64);
        record(Figure::Warnings, warnings.len() as f64);
        if let Some(ms) = pause_ms(snap) {
            record(Figure::PauseSeconds, ms as f64 / 1000.0);
        }
    }
    if global.json {
        json(&serde_json::json!({
            "id": id.to_hex(),
            "short_id": id.short(),
            "time": snap.time,
            "bytes_read": s.bytes_read,
            "bytes_added": s.bytes_added,
            "chunks": s.chunks,
            "new_chunks": s.new_chunks,
            "duration_ms": s.duration_ms,
            "parts": snap.parts.iter().map(|p| serde_json::json!({
                "name": p.name,
                "codec": p.codec,
                "source_size": p.source_size,
                "stored_size": p.stored.size,
                "chunks": p.stored.chunks,
            })).collect::<Vec<_>>(),
            "pause_ms": pause_ms(snap),
            "pause_phases": phases(snap),
            "warnings": warnings,
        }));
    } else if !global.quiet {
        for p in &snap.parts {
            println!(
                "  {:<24} {:>10}  {}",
                esc(&p.name),
                bytes(p.source_size),
                esc(&p.codec)
            );
        }
        println!(
            "snapshot {} saved: read {}, added {} ({} of {} chunks new), {:.1} s, {}",
            id.short(),
            bytes(s.bytes_read),
            bytes(s.bytes_added),
            s.new_chunks,
            s.chunks,
            s.duration_ms as f64 / 1000.0,
            rate(s.bytes_read, s.duration_ms)
        );
        if let Some(ms) = pause_ms(snap) {
            println!("writes were paused for {:.1} s", ms as f64 / 1000.0);
        }
        // Where the pause went; phases overlap (the dumps run side by side), so each shows
        // when it began.
        for p in phases(snap).unwrap_or_default() {
            println!(
                "  at {:>6.1} s  {:<22} {:>6.1} s",
                p.start_ms as f64 / 1000.0,
                esc(&p.phase),
                p.ms as f64 / 1000.0
            );
        }
    }
}
