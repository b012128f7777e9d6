//! Tests of the retention parsers, planner edge cases and invariants (proptest).

use proptest::prelude::*;
use time::{Date, Month, OffsetDateTime, UtcOffset};

use super::plan::within_cutoff;
use super::*;

/// A time with a whole-hour offset; tests only.
pub(super) fn at(y: i32, mo: u8, d: u8, h: u8, mi: u8, off: i8) -> OffsetDateTime {
    Date::from_calendar_date(y, Month::try_from(mo).unwrap(), d)
        .unwrap()
        .with_hms(h, mi, 0)
        .unwrap()
        .assume_offset(UtcOffset::from_hms(off, 0, 0).unwrap())
}

pub(super) fn cand(id: &str, time: OffsetDateTime) -> Candidate {
    Candidate {
        id: id.into(),
        time,
        group: "g".into(),
        tags: Vec::new(),
    }
}

fn reasons<'a>(plan: &'a [Decision], id: &str) -> &'a [String] {
    &plan.iter().find(|d| d.id == id).unwrap().reasons
}

fn ids(plan: &[Decision]) -> Vec<&str> {
    plan.iter().map(|d| d.id.as_str()).collect()
}

fn kept(plan: &[Decision]) -> Vec<&str> {
    plan.iter()
        .filter(|d| d.keep)
        .map(|d| d.id.as_str())
        .collect()
}

fn within(s: &str) -> Within {
    s.parse().unwrap()
}

// ---- parsers ----

#[test]
fn count_parses_numbers_and_unlimited() {
    assert_eq!("7".parse(), Ok(Count::N(7)));
    assert_eq!(" 12 ".parse(), Ok(Count::N(12)));
    assert_eq!("0".parse(), Ok(Count::N(0)));
    assert_eq!("4294967295".parse(), Ok(Count::N(u32::MAX)));
    assert_eq!("unlimited".parse(), Ok(Count::Unlimited));
    assert_eq!("Unlimited".parse(), Ok(Count::Unlimited));
    assert_eq!(Count::N(7).to_string(), "7");
    assert_eq!(Count::Unlimited.to_string(), "unlimited");
}

#[test]
fn count_refuses_garbage_with_a_clear_message() {
    for (bad, says) in [
        ("", "expected a number"),
        ("  ", "expected a number"),
        ("-1", "use \"unlimited\""),
        ("-0", "cannot be negative"),
        ("+3", "expected a number"),
        ("7d", "expected a number"),
        ("1.5", "expected a number"),
        ("all", "expected a number"),
        ("٣", "expected a number"),
        ("4294967296", "too large"),
        ("99999999999999999999", "too large"),
    ] {
        let e = bad.parse::<Count>().unwrap_err().to_string();
        assert!(e.contains(says), "{bad:?}: {e}");
        assert!(e.contains(&format!("{bad:?}")), "names the input: {e}");
    }
}

#[test]
fn within_parses_any_subset_of_units() {
    let w = |years, months, days, hours| Within {
        years,
        months,
        days,
        hours,
    };
    assert_eq!("7d".parse(), Ok(w(0, 0, 7, 0)));
    assert_eq!("36h".parse(), Ok(w(0, 0, 0, 36)));
    assert_eq!("2m".parse(), Ok(w(0, 2, 0, 0)));
    assert_eq!("1y2m3d4h".parse(), Ok(w(1, 2, 3, 4)));
    assert_eq!("4h3d".parse(), Ok(w(0, 0, 3, 4)));
    assert_eq!(" 1y12h ".parse(), Ok(w(1, 0, 0, 12)));
    assert_eq!("0d".parse(), Ok(w(0, 0, 0, 0)));
    assert_eq!("007d".parse(), Ok(w(0, 0, 7, 0)));
    for s in ["7d", "36h", "1y2m3d4h", "1y12h", "2m"] {
        assert_eq!(within(s).to_string(), s);
    }
    assert_eq!(within("4h3d").to_string(), "3d4h");
    assert_eq!(within("0d").to_string(), "0h");
    assert!(within("0y0h").is_zero());
}

#[test]
fn within_refuses_garbage_with_a_clear_message() {
    for (bad, says) in [
        ("", "empty"),
        ("   ", "empty"),
        ("d", "expected a number"),
        ("7", "no unit"),
        ("1y2", "no unit"),
        ("7w", "unknown unit 'w'"),
        ("7D", "unknown unit 'D'"),
        ("7 d", "unknown unit ' '"),
        ("1.5d", "unknown unit '.'"),
        ("-1d", "expected a number"),
        ("1d2d", "'d' is given twice"),
        ("1m1m", "'m' is given twice"),
        ("٣d", "expected a number"),
        ("7dx", "expected a number"),
        ("4294967296h", "too large"),
    ] {
        let e = bad.parse::<Within>().unwrap_err().to_string();
        assert!(e.contains(says), "{bad:?}: {e}");
        assert!(e.starts_with("invalid duration"), "{e}");
    }
}

#[test]
fn tag_sets_split_on_commas_and_refuse_empty_tags() {
    assert_eq!(parse_tag_set("a,b").unwrap(), ["a", "b"]);
    assert_eq!(
        parse_tag_set(" db , pre-upgrade ").unwrap(),
        ["db", "pre-upgrade"]
    );
    assert_eq!(parse_tag_set("one").unwrap(), ["one"]);
    for bad in ["", " ", "a,,b", "a,", ",a"] {
        let e = parse_tag_set(bad).unwrap_err().to_string();
        assert!(e.contains("empty tag"), "{bad:?}: {e}");
    }
}

#[test]
fn emptiness_and_description() {
    assert!(Policy::default().is_empty());
    let zeros = Policy {
        daily: Some(Count::N(0)),
        within: Some(within("0d")),
        ..Policy::default()
    };
    assert!(zeros.is_empty(), "zero counts and durations are no rules");
    assert_eq!(zeros.describe(), "empty policy (keeps everything)");
    for p in [
        Policy {
            last: Some(Count::N(1)),
            ..Policy::default()
        },
        Policy {
            yearly: Some(Count::Unlimited),
            ..Policy::default()
        },
        Policy {
            within: Some(within("1h")),
            ..Policy::default()
        },
        Policy {
            tags: vec![vec!["x".into()]],
            ..Policy::default()
        },
    ] {
        assert!(!p.is_empty(), "{p:?}");
    }
    let p = Policy {
        last: Some(Count::N(3)),
        hourly: Some(Count::N(0)),
        daily: Some(Count::N(7)),
        weekly: Some(Count::N(4)),
        monthly: Some(Count::Unlimited),
        within: Some(within("1y2m")),
        tags: vec![vec!["db".into(), "pre-upgrade".into()], vec!["keep".into()]],
        ..Policy::default()
    };
    assert_eq!(
        p.describe(),
        "keep 3 last, 7 daily, 4 weekly, all monthly, within 1y2m, tag db,pre-upgrade, tag keep"
    );
}

#[test]
fn policy_and_decisions_serialize_for_json_and_deserialize_from_toml() {
    let p: Policy = toml::from_str(
        "daily = 7\nweekly = \"unlimited\"\nwithin = \"36h\"\ntags = [[\"a\", \"b\"]]\n",
    )
    .unwrap();
    assert_eq!(p.daily, Some(Count::N(7)));
    assert_eq!(p.weekly, Some(Count::Unlimited));
    assert_eq!(p.within, Some(within("36h")));
    assert_eq!(
        serde_json::to_string(&p).unwrap(),
        r#"{"daily":7,"weekly":"unlimited","within":"36h","tags":[["a","b"]]}"#
    );
    for (bad, says) in [
        ("daily = -1", "negative"),
        ("daily = \"x\"", "invalid count"),
        ("within = \"7w\"", "unknown unit"),
        ("keep_daily = 7", "unknown field"),
    ] {
        let e = toml::from_str::<Policy>(bad).unwrap_err().to_string();
        assert!(e.contains(says), "{bad}: {e}");
    }
    let d = plan(
        &Policy {
            last: Some(Count::N(1)),
            ..Policy::default()
        },
        &[cand("a", at(2024, 3, 31, 0, 30, 2))],
    );
    assert_eq!(
        serde_json::to_string(&d).unwrap(),
        r#"[{"id":"a","group":"g","time":"2024-03-31T00:30:00+02:00","keep":true,"reasons":["last"]}]"#
    );
}

// ---- keep-within arithmetic (Go's AddDate) ----

#[test]
fn within_cutoff_normalises_month_ends_like_go() {
    let cut = |t, s| within_cutoff(t, within(s)).unwrap();
    // "Feb 31" rolls over into March: Mar 3 in a common year, Mar 2 in a leap year.
    assert_eq!(
        cut(at(2023, 3, 31, 12, 0, 0), "1m"),
        at(2023, 3, 3, 12, 0, 0)
    );
    assert_eq!(
        cut(at(2024, 3, 31, 12, 0, 0), "1m"),
        at(2024, 3, 2, 12, 0, 0)
    );
    assert_eq!(
        cut(at(2024, 5, 31, 12, 0, 0), "1m"),
        at(2024, 5, 1, 12, 0, 0)
    );
    assert_eq!(
        cut(at(2024, 1, 31, 12, 0, 0), "2m"),
        at(2023, 12, 1, 12, 0, 0)
    );
    assert_eq!(
        cut(at(2024, 2, 29, 12, 0, 0), "1y"),
        at(2023, 3, 1, 12, 0, 0)
    );
    assert_eq!(
        cut(at(2024, 3, 31, 12, 0, 0), "31d"),
        at(2024, 2, 29, 12, 0, 0)
    );
    // Months and days are one step: Mar 31 - 1m - 1d is "Feb 30" = Mar 1.
    assert_eq!(
        cut(at(2024, 3, 31, 12, 0, 0), "1m1d"),
        at(2024, 3, 1, 12, 0, 0)
    );
    assert_eq!(
        cut(at(2024, 1, 15, 12, 0, 0), "13m"),
        at(2022, 12, 15, 12, 0, 0)
    );
    // Hours are elapsed time, after the calendar step.
    assert_eq!(
        cut(at(2024, 3, 1, 6, 0, 0), "1d12h"),
        at(2024, 2, 28, 18, 0, 0)
    );
    // The calendar step happens on the wall clock in the newest snapshot's offset.
    assert_eq!(
        cut(at(2024, 3, 31, 0, 30, 2), "1d"),
        at(2024, 3, 30, 0, 30, 2)
    );
    assert_eq!(
        cut(at(2024, 3, 31, 23, 30, 2), "1m"),
        at(2024, 3, 2, 23, 30, 2)
    );
    // Beyond the representable range everything is within.
    assert_eq!(
        within_cutoff(at(2024, 1, 1, 0, 0, 0), within("100000y")),
        None
    );
    assert_eq!(
        within_cutoff(at(2024, 1, 1, 0, 0, 0), within("4294967295d")),
        None
    );
}

#[test]
fn within_keeps_only_what_is_strictly_after_the_cutoff() {
    let p = Policy {
        within: Some(within("1m")),
        ..Policy::default()
    };
    let plan = plan(
        &p,
        &[
            cand("new", at(2024, 3, 31, 3, 15, 0)),
            cand("after", at(2024, 3, 2, 3, 16, 0)),
            cand("exact", at(2024, 3, 2, 3, 15, 0)),
            cand("before", at(2024, 3, 1, 3, 15, 0)),
        ],
    );
    assert_eq!(kept(&plan), ["new", "after"]);
    assert_eq!(reasons(&plan, "new"), ["within 1m"]);
    let all = super::plan(
        &Policy {
            within: Some(within("100000y")),
            ..Policy::default()
        },
        &[
            cand("a", at(2024, 1, 1, 0, 0, 0)),
            cand("b", at(1, 1, 1, 0, 0, 0)),
        ],
    );
    assert_eq!(kept(&all), ["a", "b"]);
}

#[test]
fn within_counts_from_the_newest_even_when_it_is_in_the_future() {
    // A clock-skewed snapshot dated months ahead moves the window with it:
    // the plan has no clock to know better (restic would ignore snapshots
    // newer than its own "now" when finding the newest).
    let p = Policy {
        within: Some(within("7d")),
        ..Policy::default()
    };
    let plan = plan(
        &p,
        &[
            cand("skewed", at(2030, 1, 1, 0, 0, 0)),
            cand("recent", at(2024, 6, 1, 0, 0, 0)),
            cand("older", at(2024, 5, 30, 0, 0, 0)),
        ],
    );
    assert_eq!(kept(&plan), ["skewed"]);
}

// ---- counted rules ----

#[test]
fn equal_times_are_ordered_by_id_and_the_last_of_them_is_the_oldest() {
    let t = at(2024, 5, 1, 12, 0, 0);
    let input = [cand("c", t), cand("a", t), cand("b", t)];
    let last1 = Policy {
        last: Some(Count::N(1)),
        ..Policy::default()
    };
    let plan1 = plan(&last1, &input);
    assert_eq!(ids(&plan1), ["a", "b", "c"]);
    assert_eq!(kept(&plan1), ["a"]);
    let daily2 = Policy {
        daily: Some(Count::N(2)),
        ..Policy::default()
    };
    let plan2 = plan(&daily2, &input);
    assert_eq!(reasons(&plan2, "a"), ["daily"]);
    assert!(reasons(&plan2, "b").is_empty());
    assert_eq!(reasons(&plan2, "c"), ["oldest daily"]);
    // The same instant written in another offset is still a tie.
    let plan3 = plan(
        &last1,
        &[
            cand("z", t),
            cand("y", t.to_offset(UtcOffset::from_hms(9, 0, 0).unwrap())),
        ],
    );
    assert_eq!(ids(&plan3), ["y", "z"]);
}

#[test]
fn counts_larger_than_the_group_and_unlimited() {
    let days: Vec<Candidate> = (1..=3)
        .flat_map(|d| {
            [
                cand(&format!("d{d}-am"), at(2024, 5, d, 6, 0, 0)),
                cand(&format!("d{d}-pm"), at(2024, 5, d, 18, 0, 0)),
            ]
        })
        .collect();
    let last = plan(
        &Policy {
            last: Some(Count::N(100)),
            ..Policy::default()
        },
        &days,
    );
    assert_eq!(kept(&last).len(), 6);
    let monthly = plan(
        &Policy {
            monthly: Some(Count::N(100)),
            ..Policy::default()
        },
        &days,
    );
    assert_eq!(kept(&monthly), ["d3-pm", "d1-am"]);
    assert_eq!(reasons(&monthly, "d1-am"), ["oldest monthly"]);
    let daily = plan(
        &Policy {
            daily: Some(Count::Unlimited),
            ..Policy::default()
        },
        &days,
    );
    assert_eq!(kept(&daily), ["d3-pm", "d2-pm", "d1-pm", "d1-am"]);
    assert_eq!(reasons(&daily, "d1-am"), ["oldest daily"]);
    let all = plan(
        &Policy {
            last: Some(Count::Unlimited),
            ..Policy::default()
        },
        &days,
    );
    assert!(all.iter().all(|d| d.reasons == ["last"]));
}

#[test]
fn the_oldest_is_kept_only_while_the_rule_has_count_left() {
    let three: Vec<Candidate> = (1..=3)
        .map(|d| cand(&format!("d{d}"), at(2024, 5, d, 6, 0, 0)))
        .collect();
    let exact = plan(
        &Policy {
            daily: Some(Count::N(3)),
            ..Policy::default()
        },
        &three,
    );
    // The oldest is its own day, so it is a plain "daily", not "oldest daily".
    assert_eq!(reasons(&exact, "d1"), ["daily"]);
    let short = plan(
        &Policy {
            daily: Some(Count::N(2)),
            monthly: Some(Count::N(1)),
            ..Policy::default()
        },
        &three,
    );
    assert_eq!(kept(&short), ["d3", "d2"]);
    assert_eq!(reasons(&short, "d3"), ["daily", "monthly"]);
}

#[test]
fn reasons_come_in_rule_order_and_zero_counts_are_off() {
    let mut c = cand("a", at(2024, 5, 1, 6, 0, 0));
    c.tags = vec!["x".into(), "y".into()];
    let p = Policy {
        last: Some(Count::N(1)),
        hourly: Some(Count::N(0)),
        daily: Some(Count::N(1)),
        yearly: Some(Count::N(1)),
        within: Some(within("1h")),
        tags: vec![vec!["y".into(), "x".into()], vec!["z".into()]],
        ..Policy::default()
    };
    assert_eq!(
        plan(&p, &[c])[0].reasons,
        ["last", "daily", "yearly", "within 1h", "tag y,x"]
    );
}

#[test]
fn an_empty_policy_keeps_everything_and_no_input_gives_no_output() {
    let plan1 = plan(&Policy::default(), &[cand("a", at(2024, 5, 1, 6, 0, 0))]);
    assert_eq!(plan1[0].reasons, ["empty policy"]);
    assert!(plan1[0].keep);
    let p = Policy {
        last: Some(Count::N(1)),
        ..Policy::default()
    };
    assert!(plan(&p, &[]).is_empty());
}

// ---- invariants ----

const OFFSETS: [i32; 6] = [-5 * 3600, -3600, 0, 3600, 2 * 3600 + 1800, 9 * 3600];
const TAGS: [&str; 3] = ["a", "b", "c"];

fn candidates() -> impl Strategy<Value = Vec<Candidate>> {
    // Coarse times (half hours over ~3 years) so ties and shared buckets are common.
    let one = (0u8..3, 0i64..52_000, 0usize..OFFSETS.len(), 0u8..8);
    prop::collection::vec(one, 0..40).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (g, half_hours, off, tags))| {
                let offset = UtcOffset::from_whole_seconds(OFFSETS[off]).unwrap();
                let time = OffsetDateTime::from_unix_timestamp(1_650_000_000 + half_hours * 1800)
                    .unwrap()
                    .to_offset(offset);
                Candidate {
                    // Ids are not in time order, so the tie-break is exercised.
                    id: format!("s{:02}", (i * 7) % 41),
                    time,
                    group: format!("g{g}"),
                    tags: TAGS
                        .iter()
                        .enumerate()
                        .filter(|(b, _)| tags & (1 << b) != 0)
                        .map(|(_, t)| t.to_string())
                        .collect(),
                }
            })
            .collect()
    })
}

fn count() -> impl Strategy<Value = Option<Count>> {
    prop_oneof![
        Just(None),
        (0u32..6).prop_map(|n| Some(Count::N(n))),
        Just(Some(Count::Unlimited)),
    ]
}

fn policy() -> impl Strategy<Value = Policy> {
    let within = prop_oneof![
        Just(None),
        (0u32..2, 0u32..3, 0u32..10, 0u32..30).prop_map(|(years, months, days, hours)| {
            Some(Within {
                years,
                months,
                days,
                hours,
            })
        }),
    ];
    let tags = prop::collection::vec(prop::sample::subsequence(TAGS.to_vec(), 0..3), 0..3);
    (
        count(),
        count(),
        count(),
        count(),
        count(),
        count(),
        within,
        tags,
    )
        .prop_map(
            |(last, hourly, daily, weekly, monthly, yearly, within, tags)| Policy {
                last,
                hourly,
                daily,
                weekly,
                monthly,
                yearly,
                within,
                tags: tags
                    .into_iter()
                    .map(|s| s.into_iter().map(String::from).collect())
                    .collect(),
            },
        )
}

fn shuffled() -> impl Strategy<Value = (Vec<Candidate>, Vec<Candidate>)> {
    candidates().prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
}

proptest! {
    #[test]
    fn keep_last_n_keeps_exactly_the_n_newest_of_each_group(
        (input, _) in shuffled(),
        n in 0u32..8,
        other in policy(),
    ) {
        let other = Policy { last: None, ..other };
        let p = Policy { last: Some(Count::N(n)), ..other.clone() };
        let out = plan(&p, &input);
        for g in ["g0", "g1", "g2"] {
            let group: Vec<&Decision> = out.iter().filter(|d| d.group == g).collect();
            let want = group.len().min(n as usize);
            let last: Vec<bool> = group
                .iter()
                .map(|d| d.reasons.iter().any(|r| r == "last"))
                .collect();
            // Exactly the first `want` in newest-first order carry "last".
            prop_assert!(last.iter().take(want).all(|&b| b), "{group:?}");
            prop_assert!(last.iter().skip(want).all(|&b| !b), "{group:?}");
            if other.is_empty() && n > 0 {
                prop_assert_eq!(group.iter().filter(|d| d.keep).count(), want);
            }
        }
    }

    #[test]
    fn plans_are_well_formed_and_independent_of_input_order(
        (input, shuffled) in shuffled(),
        p in policy(),
    ) {
        let out = plan(&p, &input);
        // Kept exactly when there is a reason.
        for d in &out {
            prop_assert_eq!(d.keep, !d.reasons.is_empty(), "{:?}", d);
        }
        // A permutation of the input, in the documented order.
        let mut want: Vec<(&str, &str)> = input.iter().map(|c| (c.group.as_str(), c.id.as_str())).collect();
        let mut got: Vec<(&str, &str)> = out.iter().map(|d| (d.group.as_str(), d.id.as_str())).collect();
        want.sort_unstable();
        got.sort_unstable();
        prop_assert_eq!(want, got);
        let key = |d: &Decision| {
            let t = OffsetDateTime::parse(&d.time, &time::format_description::well_known::Rfc3339).unwrap();
            (d.group.clone(), std::cmp::Reverse(t), d.id.clone())
        };
        prop_assert!(out.windows(2).all(|w| key(&w[0]) <= key(&w[1])));
        // A rule of N keeps at most N snapshots per group (the oldest included).
        for (name, count) in p.counts() {
            if let Some(Count::N(n)) = count {
                for g in ["g0", "g1", "g2"] {
                    let by_rule = out
                        .iter()
                        .filter(|d| d.group == g)
                        .filter(|d| d.reasons.iter().any(|r| r == name || *r == format!("oldest {name}")))
                        .count();
                    prop_assert!(by_rule <= n as usize, "{name} {n}: {by_rule}");
                }
            }
        }
        prop_assert_eq!(&out, &plan(&p, &shuffled));
    }

    #[test]
    fn within_round_trips_through_its_text(years in 0u32..500, months in 0u32..50, days in 0u32..5000, hours in 0u32..100_000) {
        let w = Within { years, months, days, hours };
        prop_assert_eq!(w.to_string().parse::<Within>(), Ok(w));
    }

    #[test]
    fn count_round_trips_through_its_text(c in count()) {
        if let Some(c) = c {
            prop_assert_eq!(c.to_string().parse::<Count>(), Ok(c));
        }
    }
}
