//! `rbk snapshots`: list what the repository holds.

use anyhow::Result;
use clap::Args;

use super::global::GlobalArgs;
use super::output::{bytes, json};

/// List snapshots, oldest first.
///
/// Example: rbk snapshots --json | jq -r '.[-1].id'
#[derive(Args, Debug)]
pub struct SnapshotsArgs {}

pub fn run(global: &GlobalArgs, _args: &SnapshotsArgs) -> Result<u8> {
    let repo = global.open()?;
    let all = repo.snapshots()?;
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
                    "pause_ms": crate::backup::stack::pause_ms(s),
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
        println!(
            "{:<9} {:<26} {:<16} {:>10} {:>10}  parts / tags",
            "id", "time", "host", "size", "added"
        );
        for (id, s) in &all {
            match s {
                Ok(s) => {
                    let parts: Vec<String> = s
                        .parts
                        .iter()
                        .map(|p| format!("{} ({})", p.name, bytes(p.source_size)))
                        .collect();
                    let tags = if s.tags.is_empty() {
                        String::new()
                    } else {
                        format!("  [{}]", s.tags.join(", "))
                    };
                    let pause = crate::backup::stack::pause_ms(s)
                        .map(|ms| format!("{:.1}s", ms as f64 / 1000.0))
                        .unwrap_or_else(|| "-".into());
                    println!(
                        "{:<9} {:<26} {:<16} {:>10} {:>10} {:>7}  {}{}",
                        id.short(),
                        crate::store::time::display(&s.time),
                        s.host,
                        bytes(s.stats.bytes_read),
                        bytes(s.stats.bytes_added),
                        pause,
                        parts.join(", "),
                        tags
                    );
                }
                Err(e) => {
                    println!("{:<9} damaged: {e}", id.short());
                }
            }
        }
        println!("{} snapshot(s)", all.len());
    }
    Ok(code)
}
