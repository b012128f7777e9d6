//! `rbk snapshots`: list what the repository holds.

use std::collections::BTreeMap;

use anyhow::Result;
use clap::Args;

use super::global::GlobalArgs;
use super::output::{bytes, esc, esc_join, json};
use crate::store::Id;
use crate::verify::record;

/// List snapshots, oldest first, each with its latest verification.
///
/// The `verified` column shows one verification record per snapshot: the latest
/// restore test (`restore-tested DATE`), unless a plain `rbk verify` newer than it found the
/// snapshot bad; else the latest `rbk verify` (`verified DATE`). A failure reads
/// `FAILED restore-test DATE` or `FAILED verify DATE`; `-` means never verified.
///
/// Example: rbk snapshots --json | jq -r '.[-1].id'
#[derive(Args, Debug)]
pub struct SnapshotsArgs {}

pub fn run(global: &GlobalArgs, _args: &SnapshotsArgs) -> Result<u8> {
    let repo = global.open()?;
    let all = repo.snapshots()?;
    // Records are evidence, never needed to restore: one that cannot be read is left out
    // (`check` reports it), and a `verifications/` that cannot be listed costs the column,
    // with a warning, not the listing.
    let verified = repo.latest_verifications().unwrap_or_else(|e| {
        eprintln!(
            "warning: verification records not shown: {}",
            esc(&e.to_string())
        );
        Default::default()
    });
    let no_records = BTreeMap::new();
    let records_of = |id: &Id| verified.get(id).unwrap_or(&no_records);
    // A snapshot that cannot be read is damage, whichever way it is shown.
    let code = if all.iter().any(|(_, s)| s.is_err()) {
        super::exit::DAMAGED
    } else {
        super::exit::OK
    };
    if global.json {
        let items: Vec<serde_json::Value> = all
            .iter()
            .map(|(id, s)| match s {
                Ok(s) => serde_json::json!({
                    "id": id.to_hex(),
                    "short_id": id.short(),
                    "time": s.time,
                    "host": s.host,
                    "tags": s.tags,
                    "bytes_read": s.stats.bytes_read,
                    "bytes_added": s.stats.bytes_added,
                    "duration_ms": s.stats.duration_ms,
                    "pause_ms": crate::stack::names::pause_ms(s),
                    "verified": records_of(id).iter().map(|(kind, r)| (kind.clone(), serde_json::json!({
                        "time": r.record.time,
                        "passed": r.record.passed(),
                        "id": r.id.to_hex(),
                    }))).collect::<serde_json::Map<_, _>>(),
                    "project": project_of(s),
                    "labels": s.labels.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
                    "parts": s.parts.iter().map(|p| serde_json::json!({
                        "name": p.name, "codec": p.codec, "origin": p.origin,
                        "source_size": p.source_size, "stored_size": p.stored.size,
                    })).collect::<Vec<_>>(),
                }),
                Err(e) => serde_json::json!({"id": id.to_hex(), "error": e.to_string()}),
            })
            .collect();
        json(&serde_json::Value::Array(items));
    } else {
        // Columns sized to their widest cell, so the table reads at any host name length.
        let header = [
            "id",
            "time",
            "host/stack",
            "size",
            "added",
            "pause",
            "tags",
            "verified",
            "parts",
        ];
        let mut rows: Vec<[String; 9]> = Vec::new();
        let mut damaged = Vec::new();
        for (id, s) in &all {
            match s {
                Ok(s) => {
                    let parts: Vec<String> = s
                        .parts
                        .iter()
                        .map(|p| format!("{} ({})", esc(&p.name), bytes(p.source_size)))
                        .collect();
                    let stack = match project_of(s) {
                        Some(p) => format!("{}/{}", esc(&s.host), esc(p)),
                        None => esc(&s.host).into_owned(),
                    };
                    let pause = crate::stack::names::pause_ms(s)
                        .map(|ms| format!("{:.1} s", ms as f64 / 1000.0))
                        .unwrap_or_else(|| "-".into());
                    let records = records_of(id);
                    let shown = record::headline(
                        records.get(record::KIND_RESTORE_TEST),
                        records.get(record::KIND_READ),
                    )
                    .map(|r| esc(&record::describe(r)).into_owned())
                    .unwrap_or_else(|| "-".into());
                    rows.push([
                        id.short(),
                        esc(&crate::store::time::display(&s.time)).into_owned(),
                        stack,
                        bytes(s.stats.bytes_read),
                        bytes(s.stats.bytes_added),
                        pause,
                        if s.tags.is_empty() {
                            "-".into()
                        } else {
                            esc_join(&s.tags, ",")
                        },
                        shown,
                        parts.join(", "),
                    ]);
                }
                Err(e) => damaged.push(format!(
                    "{:<9} damaged: {}",
                    id.short(),
                    esc(&e.to_string())
                )),
            }
        }
        let mut width = header.map(str::len);
        for r in &rows {
            for (w, cell) in width.iter_mut().zip(r) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: [&str; 9]| -> String {
            let mut out = String::new();
            for (i, (cell, w)) in cells.iter().zip(width).enumerate() {
                let pad = w.saturating_sub(cell.chars().count());
                // Sizes and durations right-aligned, the rest left-aligned.
                if (3..=5).contains(&i) {
                    out.push_str(&" ".repeat(pad));
                    out.push_str(cell);
                } else {
                    out.push_str(cell);
                    if i + 1 < cells.len() {
                        out.push_str(&" ".repeat(pad));
                    }
                }
                if i + 1 < cells.len() {
                    out.push_str("  ");
                }
            }
            out
        };
        println!("{}", line(header));
        for r in &rows {
            println!("{}", line(r.each_ref().map(String::as_str)));
        }
        for d in &damaged {
            println!("{d}");
        }
        println!("{} snapshot(s)", all.len());
    }
    Ok(code)
}

/// The Compose project a stack snapshot was taken of.
fn project_of(s: &crate::store::manifest::Snapshot) -> Option<&str> {
    crate::stack::names::label_value(s, crate::stack::names::label::PROJECT)
}
