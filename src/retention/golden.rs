//! Golden tests of the planner over generated calendars: `tests/golden/retention/<case>.txt`.
//!
//! Each case renders the policy and the plan, one line per snapshot, and
//! compares it with its file; `RBK_BLESS=1` rewrites the files instead. Every
//! case also checks a few facts in code, worked out by hand from the calendar,
//! so a blessed file cannot silently encode a wrong plan.

use std::fs;
use std::path::PathBuf;

use time::format_description::well_known::Rfc3339;
use time::{Date, Month, OffsetDateTime, UtcOffset};

use super::tests::{at, cand};
use super::*;

fn date(y: i32, m: u8, d: u8) -> Date {
    Date::from_calendar_date(y, Month::try_from(m).unwrap(), d).unwrap()
}

/// Every day from `first` to `last`, inclusive.
fn days(first: Date, last: Date) -> Vec<Date> {
    let mut out = Vec::new();
    let mut d = first;
    while d <= last {
        out.push(d);
        d = d.next_day().unwrap();
    }
    out
}

fn mmdd(d: Date) -> String {
    format!("{:02}{:02}", u8::from(d.month()), d.day())
}

/// Berlin's offset in 2024 for a local time that is not in the repeated hour:
/// CEST (+02:00) from Mar 31 03:00 to Oct 27 03:00 local, CET (+01:00) otherwise.
fn berlin(d: Date, h: u8, m: u8) -> OffsetDateTime {
    let local = d.with_hms(h, m, 0).unwrap();
    let summer = local >= date(2024, 3, 31).with_hms(3, 0, 0).unwrap()
        && local < date(2024, 10, 27).with_hms(2, 0, 0).unwrap();
    let off = if summer { 2 } else { 1 };
    local.assume_offset(UtcOffset::from_hms(off, 0, 0).unwrap())
}

fn render(policy: &Policy, plan: &[Decision]) -> String {
    let kept = plan.iter().filter(|d| d.keep).count();
    let mut out = format!(
        "policy: {}\nsnapshots: {}, keep {}, remove {}\n",
        policy.describe(),
        plan.len(),
        kept,
        plan.len() - kept
    );
    out.push_str("columns: time (as recorded), local weekday and ISO week, id, verdict, reasons\n");
    let mut group: Option<&str> = None;
    for d in plan {
        if group != Some(d.group.as_str()) {
            out.push_str(&format!("\n[{}]\n", d.group));
            group = Some(&d.group);
        }
        let t = OffsetDateTime::parse(&d.time, &Rfc3339).unwrap();
        let (iso_year, week, _) = t.to_iso_week_date();
        let weekday = t.weekday().to_string();
        let verdict = if d.keep { "keep" } else { "remove" };
        let line = format!(
            "{}  {} {iso_year}-W{week:02}  {:<16} {verdict:<6}  {}",
            d.time,
            &weekday[..3],
            d.id,
            d.reasons.join(", ")
        );
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Plans, renders and compares with (or, under `RBK_BLESS=1`, rewrites) the golden file.
fn golden(case: &str, policy: &Policy, candidates: &[Candidate]) -> Vec<Decision> {
    let plan = plan(policy, candidates);
    let text = render(policy, &plan);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/retention")
        .join(format!("{case}.txt"));
    if std::env::var_os("RBK_BLESS").is_some_and(|v| v == "1") {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, &text).unwrap();
        return plan;
    }
    let want = fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with RBK_BLESS=1 to create it", path.display()));
    if want != text {
        let line = want
            .lines()
            .zip(text.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(want.lines().count().min(text.lines().count()));
        panic!(
            "{} differs from the plan at line {}:\n  file: {:?}\n  plan: {:?}\n\
             (RBK_BLESS=1 rewrites it; then read it and check it by hand)",
            path.display(),
            line + 1,
            want.lines().nth(line),
            text.lines().nth(line),
        );
    }
    plan
}

fn reasons<'a>(plan: &'a [Decision], id: &str) -> &'a [String] {
    &plan
        .iter()
        .find(|d| d.id == id)
        .unwrap_or_else(|| panic!("no decision for {id}"))
        .reasons
}

/// Ids kept for `reason` (exactly that reason string), in plan order.
fn kept_for<'a>(plan: &'a [Decision], reason: &str) -> Vec<&'a str> {
    plan.iter()
        .filter(|d| d.reasons.iter().any(|r| r == reason))
        .map(|d| d.id.as_str())
        .collect()
}

fn kept(plan: &[Decision]) -> Vec<&str> {
    plan.iter()
        .filter(|d| d.keep)
        .map(|d| d.id.as_str())
        .collect()
}

fn time_of<'a>(plan: &'a [Decision], id: &str) -> &'a str {
    &plan.iter().find(|d| d.id == id).unwrap().time
}

fn count(n: u32) -> Option<Count> {
    Some(Count::N(n))
}

#[test]
fn nightly_year_with_gaps() {
    // 03:15 UTC every night from Apr 2023 to Mar 2024, except: every day
    // whose ordinal is 4 mod 11, two weeks of holiday in August (ISO weeks
    // 32 and 33), all of November, and Mar 27-28 2024.
    let skipped = |d: Date| {
        d.ordinal() % 11 == 4
            || (date(2023, 8, 7) <= d && d <= date(2023, 8, 20))
            || (d.year() == 2023 && d.month() == Month::November)
            || d == date(2024, 3, 27)
            || d == date(2024, 3, 28)
    };
    let nights: Vec<Date> = days(date(2023, 4, 1), date(2024, 3, 31))
        .into_iter()
        .filter(|&d| !skipped(d))
        .collect();
    let id = |d: Date| format!("n{}{}", d.year(), mmdd(d));
    let input: Vec<Candidate> = nights
        .iter()
        .map(|&d| cand(&id(d), d.with_hms(3, 15, 0).unwrap().assume_utc()))
        .collect();
    let policy = Policy {
        last: count(3),
        daily: count(7),
        weekly: count(5),
        monthly: count(12),
        yearly: Some(Count::Unlimited),
        ..Policy::default()
    };
    let plan = golden("nightly_year", &policy, &input);

    // keep-daily 7 keeps the 7 newest nights present, whatever the gaps.
    let newest7: Vec<String> = nights.iter().rev().take(7).map(|&d| id(d)).collect();
    assert_eq!(kept_for(&plan, "daily"), newest7);
    assert!(!newest7.contains(&"n20240327".to_string()));
    assert_eq!(
        kept_for(&plan, "last"),
        ["n20240331", "n20240330", "n20240329"]
    );
    // One per ISO week, newest night of each: Mar 10 (a Sunday) is missing,
    // so week 10 is kept by its Saturday.
    assert_eq!(
        kept_for(&plan, "weekly"),
        [
            "n20240331",
            "n20240324",
            "n20240317",
            "n20240309",
            "n20240303"
        ]
    );
    // November is empty, so 12 monthly buckets run out of months: 11
    // months plus the oldest night, kept as "oldest monthly".
    assert_eq!(kept_for(&plan, "monthly").len(), 11);
    assert!(kept_for(&plan, "monthly").contains(&"n20230430"));
    assert_eq!(
        reasons(&plan, "n20230401"),
        ["oldest monthly", "oldest yearly"]
    );
    assert_eq!(kept_for(&plan, "yearly"), ["n20240331", "n20231231"]);
    // 7 daily (3 of them also last), 3 more weekly, 10 more monthly, the oldest.
    assert_eq!(kept(&plan).len(), 7 + 3 + 10 + 1);
}

#[test]
fn within_a_month_of_march_31() {
    // One month before Mar 31 2024 is "Feb 31", which Go's AddDate (and so
    // restic) normalises to Mar 2: only snapshots strictly after Mar 2 03:15 stay.
    let mut input: Vec<Candidate> = days(date(2024, 2, 25), date(2024, 3, 31))
        .into_iter()
        .map(|d| {
            cand(
                &format!("w{}", mmdd(d)),
                d.with_hms(3, 15, 0).unwrap().assume_utc(),
            )
        })
        .collect();
    input.push(cand("w0302-late", at(2024, 3, 2, 3, 16, 0)));
    let policy = Policy {
        within: Some("1m".parse().unwrap()),
        ..Policy::default()
    };
    let plan = golden("within_month_end", &policy, &input);
    let want: Vec<String> = (3..=31)
        .rev()
        .map(|d| format!("w03{d:02}"))
        .chain(["w0302-late".to_string()])
        .collect();
    assert_eq!(kept(&plan), want);
    assert!(
        reasons(&plan, "w0302").is_empty(),
        "exactly at the cutoff is not within"
    );
}

#[test]
fn several_snapshots_a_day() {
    let times = [(0, 5), (6, 0), (12, 0), (12, 40), (18, 0), (23, 55)];
    let mut input: Vec<Candidate> = days(date(2024, 5, 6), date(2024, 5, 12))
        .into_iter()
        .flat_map(|d| {
            times.iter().map(move |&(h, m)| {
                cand(
                    &format!("p{}-{h:02}{m:02}", mmdd(d)),
                    d.with_hms(h, m, 0).unwrap().assume_utc(),
                )
            })
        })
        .collect();
    // Two snapshots at the same instant: the id decides which counts as newer.
    input.push(cand("p0512-1200b", at(2024, 5, 12, 12, 0, 0)));
    input.reverse();
    let policy = Policy {
        last: count(4),
        hourly: count(10),
        daily: count(5),
        ..Policy::default()
    };
    let plan = golden("several_a_day", &policy, &input);

    assert_eq!(
        kept_for(&plan, "last"),
        ["p0512-2355", "p0512-1800", "p0512-1240", "p0512-1200"]
    );
    let pos = |id| plan.iter().position(|d| d.id == id).unwrap();
    assert!(pos("p0512-1200") < pos("p0512-1200b"));
    // 12:00 and 12:40 share an hour: the hourly rule keeps only 12:40, and
    // its 10 buckets are the 5 distinct hours of May 12 and of May 11.
    let hourly = kept_for(&plan, "hourly");
    assert_eq!(hourly.len(), 10);
    assert!(hourly.iter().all(|id| !id.ends_with("-1200")));
    assert_eq!(hourly.last(), Some(&"p0511-0005"));
    assert_eq!(
        kept_for(&plan, "daily"),
        [
            "p0512-2355",
            "p0511-2355",
            "p0510-2355",
            "p0509-2355",
            "p0508-2355"
        ]
    );
    assert!(reasons(&plan, "p0512-1200b").is_empty());
}

#[test]
fn dst_spring_forward_in_berlin() {
    // 00:30 and 23:30 local every day around Mar 31 2024 (CET +01:00 ->
    // CEST +02:00); 23:30 is missing on Mar 29, Apr 2 and Apr 5, so those
    // days' only snapshot is at 00:30, which in UTC is the evening before.
    let mut input = Vec::new();
    for d in days(date(2024, 3, 24), date(2024, 4, 7)) {
        input.push(cand(&format!("b{}-0030", mmdd(d)), berlin(d, 0, 30)));
        if ![date(2024, 3, 29), date(2024, 4, 2), date(2024, 4, 5)].contains(&d) {
            input.push(cand(&format!("b{}-2330", mmdd(d)), berlin(d, 23, 30)));
        }
    }
    input.push(cand("b0408-0030", berlin(date(2024, 4, 8), 0, 30)));
    let policy = Policy {
        daily: count(10),
        weekly: count(3),
        ..Policy::default()
    };
    let plan = golden("dst_spring", &policy, &input);

    assert_eq!(time_of(&plan, "b0331-0030"), "2024-03-31T00:30:00+01:00");
    assert_eq!(time_of(&plan, "b0331-2330"), "2024-03-31T23:30:00+02:00");
    // 00:30 +02:00 on Apr 5 is 22:30 UTC on Apr 4, after Apr 4 23:30 +02:00
    // (21:30 UTC). By UTC day only one of them would be kept; by local day
    // each is its own day's newest.
    assert_eq!(time_of(&plan, "b0405-0030"), "2024-04-05T00:30:00+02:00");
    assert_eq!(reasons(&plan, "b0405-0030"), ["daily"]);
    assert_eq!(reasons(&plan, "b0404-2330"), ["daily"]);
    assert_eq!(
        kept_for(&plan, "daily"),
        [
            "b0408-0030",
            "b0407-2330",
            "b0406-2330",
            "b0405-0030",
            "b0404-2330",
            "b0403-2330",
            "b0402-0030",
            "b0401-2330",
            "b0331-2330",
            "b0330-2330",
        ]
    );
    // Monday Apr 8 00:30 local is Sunday 22:30 UTC: its own ISO week locally.
    assert_eq!(
        kept_for(&plan, "weekly"),
        ["b0408-0030", "b0407-2330", "b0331-2330"]
    );
}

#[test]
fn dst_fall_back_in_berlin() {
    // Oct 27 2024 repeats 02:00-03:00 local; 02:30 happens at +02:00 and
    // again at +01:00. Both are the same local hour, so keep-hourly keeps
    // only the later one. 23:30 is missing on Oct 24.
    let mut input = Vec::new();
    for d in days(date(2024, 10, 21), date(2024, 10, 27)) {
        input.push(cand(&format!("b{}-0030", mmdd(d)), berlin(d, 0, 30)));
        if d != date(2024, 10, 24) {
            input.push(cand(&format!("b{}-2330", mmdd(d)), berlin(d, 23, 30)));
        }
    }
    input.push(cand("b1027-0230-cest", at(2024, 10, 27, 2, 30, 2)));
    input.push(cand("b1027-0230-cet", at(2024, 10, 27, 2, 30, 1)));
    let policy = Policy {
        hourly: count(4),
        daily: Some(Count::Unlimited),
        ..Policy::default()
    };
    let plan = golden("dst_autumn", &policy, &input);

    assert_eq!(time_of(&plan, "b1027-0030"), "2024-10-27T00:30:00+02:00");
    assert_eq!(time_of(&plan, "b1027-2330"), "2024-10-27T23:30:00+01:00");
    assert_eq!(
        kept_for(&plan, "hourly"),
        ["b1027-2330", "b1027-0230-cet", "b1027-0030", "b1026-2330"]
    );
    assert!(reasons(&plan, "b1027-0230-cest").is_empty());
    assert_eq!(
        kept_for(&plan, "daily"),
        [
            "b1027-2330",
            "b1026-2330",
            "b1025-2330",
            "b1024-0030",
            "b1023-2330",
            "b1022-2330",
            "b1021-2330",
        ]
    );
    assert_eq!(reasons(&plan, "b1021-0030"), ["oldest daily"]);
    assert_eq!(kept(&plan).len(), 10);
}

#[test]
fn mixed_time_zones_in_one_group() {
    // Two hosts back up into one group: Tokyo at 09:30 +09:00 (00:30 UTC the
    // same day) and New York at 22:00 -05:00 (03:00 UTC the next day).
    // Newest first, the local days alternate (21, 20, 21, 19, 20, ...), and a
    // rule compares only with the bucket it kept last, so keep-daily keeps
    // every one of the newest snapshots: 6 "days" cover only Jan 18-21.
    let mut input = Vec::new();
    for d in days(date(2024, 1, 8), date(2024, 1, 21)) {
        input.push(cand(
            &format!("tyo-{}", mmdd(d)),
            d.with_hms(9, 30, 0)
                .unwrap()
                .assume_offset(UtcOffset::from_hms(9, 0, 0).unwrap()),
        ));
        input.push(cand(
            &format!("nyc-{}", mmdd(d)),
            d.with_hms(22, 0, 0)
                .unwrap()
                .assume_offset(UtcOffset::from_hms(-5, 0, 0).unwrap()),
        ));
    }
    let policy = Policy {
        daily: count(6),
        weekly: count(3),
        ..Policy::default()
    };
    let plan = golden("mixed_zones", &policy, &input);

    let newest6: Vec<&str> = plan.iter().take(6).map(|d| d.id.as_str()).collect();
    assert_eq!(
        newest6,
        [
            "nyc-0121", "nyc-0120", "tyo-0121", "nyc-0119", "tyo-0120", "nyc-0118"
        ]
    );
    assert_eq!(kept_for(&plan, "daily"), newest6);
    // Sunday Jan 14 in New York sorts before Monday Jan 15 in Tokyo (00:30
    // UTC Jan 15 vs 03:00 UTC Jan 15), so the weeks alternate too.
    assert_eq!(
        kept_for(&plan, "weekly"),
        ["nyc-0121", "nyc-0114", "tyo-0115"]
    );
    assert_eq!(time_of(&plan, "tyo-0115"), "2024-01-15T09:30:00+09:00");
}

#[test]
fn keep_tag_sets() {
    // Nightly in June 2024 at 01:00 +02:00. Every night is tagged "nightly";
    // Sundays also "full"; a few carry "manual" and/or "pre-upgrade".
    let input: Vec<Candidate> = days(date(2024, 6, 1), date(2024, 6, 30))
        .into_iter()
        .map(|d| {
            let mut c = cand(&format!("t{}", mmdd(d)), berlin(d, 1, 0));
            c.tags.push("nightly".into());
            if d.weekday() == time::Weekday::Sunday {
                c.tags.push("full".into());
            }
            let extra: &[&str] = match d.day() {
                5 | 19 => &["manual"],
                12 => &["manual", "pre-upgrade"],
                14 => &["pre-upgrade", "extra", "manual"],
                26 => &["pre-upgrade"],
                _ => &[],
            };
            c.tags.extend(extra.iter().map(|t| t.to_string()));
            c
        })
        .collect();
    let policy = Policy {
        last: count(2),
        tags: vec![
            parse_tag_set("manual, pre-upgrade").unwrap(),
            parse_tag_set("full").unwrap(),
        ],
        ..Policy::default()
    };
    let plan = golden("keep_tag", &policy, &input);

    assert_eq!(
        kept(&plan),
        [
            "t0630", "t0629", "t0623", "t0616", "t0614", "t0612", "t0609", "t0602"
        ]
    );
    assert_eq!(reasons(&plan, "t0630"), ["last", "tag full"]);
    assert_eq!(reasons(&plan, "t0614"), ["tag manual,pre-upgrade"]);
    // A set keeps only snapshots that carry all of its tags.
    for partial in ["t0605", "t0619", "t0626"] {
        assert!(reasons(&plan, partial).is_empty(), "{partial}");
    }
}

#[test]
fn several_groups() {
    // Four hosts, planned independently: a is current, b stopped in
    // December, c has only two snapshots (fewer than the counts), and d has
    // one snapshot dated months ahead (a wrong clock), which keep-within
    // measures from.
    let at_two = |d: Date, off: i8| {
        d.with_hms(2, 0, 0)
            .unwrap()
            .assume_offset(UtcOffset::from_hms(off, 0, 0).unwrap())
    };
    let grouped = |group: &str, id: String, t| Candidate {
        group: group.into(),
        ..cand(&id, t)
    };
    let mut lists: Vec<Vec<Candidate>> = vec![
        days(date(2024, 1, 1), date(2024, 1, 20))
            .into_iter()
            .map(|d| grouped("host-a/rushdb", format!("a{}", mmdd(d)), at_two(d, 0)))
            .collect(),
        days(date(2023, 12, 1), date(2023, 12, 10))
            .into_iter()
            .map(|d| grouped("host-b/rushdb", format!("b{}", mmdd(d)), at_two(d, 0)))
            .collect(),
        vec![
            grouped("host-c/rushdb", "c0105".into(), at_two(date(2024, 1, 5), 0)),
            grouped(
                "host-c/rushdb",
                "c0119".into(),
                at_two(date(2024, 1, 19), 0),
            ),
        ],
        days(date(2024, 1, 10), date(2024, 1, 20))
            .into_iter()
            .map(|d| grouped("host-d/rushdb", format!("d{}", mmdd(d)), at_two(d, 1)))
            .chain([grouped(
                "host-d/rushdb",
                "d-skewed".into(),
                at_two(date(2024, 9, 1), 2),
            )])
            .collect(),
    ];
    // Interleave the hosts, newest group last, to show the output order is the plan's own.
    lists.reverse();
    let mut input = Vec::new();
    while lists.iter().any(|l| !l.is_empty()) {
        for l in &mut lists {
            if let Some(c) = l.pop() {
                input.push(c);
            }
        }
    }
    let policy = Policy {
        last: count(1),
        daily: count(3),
        weekly: count(2),
        within: Some("5d".parse().unwrap()),
        ..Policy::default()
    };
    let plan = golden("several_groups", &policy, &input);

    let groups: Vec<&str> = plan.iter().map(|d| d.group.as_str()).collect();
    let mut sorted = groups.clone();
    sorted.sort();
    assert_eq!(groups, sorted);
    assert_eq!(
        kept_for(&plan, "within 5d")
            .iter()
            .filter(|id| id.starts_with('a'))
            .count(),
        5
    );
    // b's window is measured from its own newest (Dec 10), strictly after Dec 5 02:00.
    assert_eq!(
        plan.iter()
            .filter(|d| d.id.starts_with('b') && d.reasons.iter().any(|r| r == "within 5d"))
            .map(|d| d.id.as_str())
            .collect::<Vec<_>>(),
        ["b1210", "b1209", "b1208", "b1207", "b1206"]
    );
    assert_eq!(
        reasons(&plan, "c0119"),
        ["last", "daily", "weekly", "within 5d"]
    );
    assert_eq!(reasons(&plan, "c0105"), ["daily", "weekly"]);
    assert_eq!(
        reasons(&plan, "d-skewed"),
        ["last", "daily", "weekly", "within 5d"]
    );
    assert!(
        plan.iter()
            .filter(|d| d.group == "host-d/rushdb" && d.id != "d-skewed")
            .all(|d| !d.reasons.iter().any(|r| r.starts_with("within")))
    );
    assert_eq!(kept_for(&plan, "daily").len(), 3 + 3 + 2 + 3);
}
