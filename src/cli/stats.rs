//! `rbk stats`: the repository's size, deduplication and compression, per-snapshot growth and
//! a chart of daily growth.

use std::collections::BTreeMap;

use anyhow::Result;
use clap::Args;

use super::global::GlobalArgs;
use super::output::{bytes, esc, json};
use crate::store::stats::{DayGrowth, stats};

/// Calendar days the text chart shows, up to the last snapshot's: a month of nightly runs
/// fits a screen; `--json` has every day.
const CHART_DAYS: i64 = 31;
/// Width of the largest day's bar.
const BAR_WIDTH: u64 = 40;

/// Show sizes, deduplication and compression ratios, and growth per snapshot and per day.
///
/// Example: rbk stats --json | jq .dedup_ratio
#[derive(Args, Debug)]
pub struct StatsArgs {}

pub fn run(global: &GlobalArgs, _args: &StatsArgs) -> Result<u8> {
    let repo = global.open()?;
    // The shared lock, as check takes: a prune then cannot delete packs
    // whose blobs these figures count.
    let _lock = repo.read_lock("stats")?;
    global.warn_if_read_unlocked(&repo);
    let s = stats(&repo)?;
    if global.json {
        json(&serde_json::to_value(&s)?);
        return Ok(super::exit::OK);
    }
    println!(
        "{} snapshot(s), {} pack(s), {} blob(s)",
        s.snapshots, s.packs, s.blobs
    );
    println!(
        "logical size    {:>11}  every part of every snapshot",
        bytes(s.logical_bytes)
    );
    println!(
        "stored size     {:>11}  the pack files",
        bytes(s.stored_bytes)
    );
    println!(
        "deduplication   {:>11}  logical / {} in {} unique chunk(s)",
        times(s.dedup_ratio),
        bytes(s.unique_chunk_bytes),
        s.unique_chunks
    );
    println!(
        "compression     {:>11}  unique chunk bytes / {} sealed",
        times(s.compression_ratio),
        bytes(s.chunk_blob_bytes)
    );
    if s.per_snapshot.is_empty() {
        return Ok(super::exit::OK);
    }
    println!();
    println!("{:<9} {:<26} {:>10} {:>10}", "id", "time", "read", "added");
    for f in &s.per_snapshot {
        println!(
            "{:<9} {:<26} {:>10} {:>10}",
            f.short_id,
            esc(&crate::store::time::display(&f.time)),
            bytes(f.bytes_read),
            bytes(f.bytes_added)
        );
    }
    println!();
    println!("bytes added per day (each snapshot's own time zone)");
    let shown = calendar(&s.daily);
    let hidden = s.daily.len() - shown.iter().filter(|(_, d)| d.is_some()).count();
    if hidden > 0 {
        println!("({hidden} earlier day(s) not shown; --json has them)");
    }
    let days: Vec<&DayGrowth> = shown.iter().filter_map(|(_, d)| *d).collect();
    let mut bar = bars(&days).into_iter();
    for (date, day) in &shown {
        match day {
            Some(day) => println!(
                "{:<10} {:<width$} {:>10}",
                esc(date),
                bar.next().unwrap_or_default(),
                bytes(day.bytes_added),
                width = BAR_WIDTH as usize
            ),
            None => println!("{:<10} (no snapshot)", esc(date)),
        }
    }
    Ok(super::exit::OK)
}

/// The last `CHART_DAYS` calendar days up to the newest day with a snapshot, each with its
/// figures or `None`: a night without a snapshot shows as a gap, which is what a user reading
/// the chart of a nightly backup needs to see. Days whose date does not parse come last.
fn calendar(days: &[DayGrowth]) -> Vec<(String, Option<&DayGrowth>)> {
    let format = time::format_description::parse_borrowed::<2>("[year]-[month]-[day]").ok();
    let parse = |d: &DayGrowth| {
        format
            .as_ref()
            .and_then(|f| time::Date::parse(&d.date, f).ok())
    };
    let dated: BTreeMap<time::Date, &DayGrowth> =
        days.iter().filter_map(|d| Some((parse(d)?, d))).collect();
    let mut out = Vec::new();
    if let Some((&last, _)) = dated.last_key_value() {
        let mut date = last - time::Duration::days(CHART_DAYS - 1);
        if let Some((&first, _)) = dated.first_key_value() {
            date = date.max(first);
        }
        while date <= last {
            out.push((date.to_string(), dated.get(&date).copied()));
            match date.next_day() {
                Some(next) => date = next,
                None => break,
            }
        }
    }
    out.extend(
        days.iter()
            .filter(|d| parse(d).is_none())
            .map(|d| (d.date.clone(), Some(d))),
    );
    out
}

fn times(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{r:.2}x"))
}

/// One bar of `█` per day, scaled so the largest day fills `BAR_WIDTH`; a day
/// that added anything gets at least one block, so small growth stays visible.
fn bars(days: &[&DayGrowth]) -> Vec<String> {
    let max = days.iter().map(|d| d.bytes_added).max().unwrap_or(0);
    days.iter()
        .map(|d| {
            let n = if max == 0 || d.bytes_added == 0 {
                0
            } else {
                // u128: bytes times width must not overflow for any repository.
                (u128::from(d.bytes_added) * u128::from(BAR_WIDTH) / u128::from(max)).max(1)
                    as usize
            };
            "█".repeat(n)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(bytes_added: u64) -> DayGrowth {
        on("2026-03-01", bytes_added)
    }

    fn on(date: &str, bytes_added: u64) -> DayGrowth {
        DayGrowth {
            date: date.into(),
            snapshots: 1,
            bytes_added,
        }
    }

    #[test]
    fn the_calendar_shows_nights_without_a_snapshot_and_only_the_last_month() {
        let days = [on("2026-02-27", 1), on("2026-03-02", 2), on("unknown", 3)];
        let c = calendar(&days);
        let shown: Vec<(&str, Option<u64>)> = c
            .iter()
            .map(|(d, g)| (d.as_str(), g.map(|g| g.bytes_added)))
            .collect();
        assert_eq!(
            shown,
            vec![
                ("2026-02-27", Some(1)),
                ("2026-02-28", None),
                ("2026-03-01", None),
                ("2026-03-02", Some(2)),
                ("unknown", Some(3)),
            ]
        );
        let long = [on("2025-01-01", 1), on("2026-03-02", 2)];
        let c = calendar(&long);
        assert_eq!(c.len(), CHART_DAYS as usize);
        assert_eq!(c[0].0, "2026-01-31");
        assert!(c[0].1.is_none());
    }

    #[test]
    fn bars_scale_to_the_largest_day_and_keep_small_days_visible() {
        let days = [day(100), day(50), day(1), day(0)];
        let b = bars(&days.iter().collect::<Vec<_>>());
        let lens: Vec<usize> = b.iter().map(|s| s.chars().count()).collect();
        assert_eq!(lens, vec![40, 20, 1, 0]);
        assert!(bars(&[&day(0)])[0].is_empty());
        assert_eq!(bars(&[&day(u64::MAX)])[0].chars().count(), 40);
    }
}
