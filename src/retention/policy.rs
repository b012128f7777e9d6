//! The retention policy: keep-* counts, keep-within durations and keep-tag sets, with their parsers.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A rule argument that did not parse; the message says what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {input:?}: {reason}")]
pub struct ParseError {
    what: &'static str,
    input: String,
    reason: String,
}

impl ParseError {
    fn new(what: &'static str, input: &str, reason: impl Into<String>) -> ParseError {
        ParseError {
            what,
            input: input.to_string(),
            reason: reason.into(),
        }
    }
}

/// How many buckets a keep-* rule keeps.
///
/// `N(0)` is accepted and means "rule off", as restic's 0 does; a policy made
/// only of such rules is empty (see [`Policy::is_empty`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    N(u32),
    Unlimited,
}

impl Count {
    /// Whether this count keeps anything at all.
    pub fn is_active(self) -> bool {
        self != Count::N(0)
    }
}

impl FromStr for Count {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Count, ParseError> {
        let err = |reason: &str| ParseError::new("count", s, reason);
        let t = s.trim();
        if t.eq_ignore_ascii_case("unlimited") {
            return Ok(Count::Unlimited);
        }
        if t.is_empty() {
            return Err(err("expected a number of snapshots or \"unlimited\""));
        }
        // restic spells "keep all" as -1; say so rather than "not a number".
        if t.starts_with('-') {
            return Err(err(
                "a count cannot be negative; use \"unlimited\" to keep every bucket",
            ));
        }
        if !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err("expected a number of snapshots or \"unlimited\""));
        }
        t.parse::<u32>()
            .map(Count::N)
            .map_err(|_| err("the number is too large (at most 4294967295)"))
    }
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Count::N(n) => write!(f, "{n}"),
            Count::Unlimited => f.write_str("unlimited"),
        }
    }
}

/// JSON and TOML see a number, or the string "unlimited".
impl Serialize for Count {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Count::N(n) => s.serialize_u32(*n),
            Count::Unlimited => s.serialize_str("unlimited"),
        }
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Count, D::Error> {
        struct CountVisitor;
        impl Visitor<'_> for CountVisitor {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number of snapshots or \"unlimited\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Count, E> {
                u32::try_from(v)
                    .map(Count::N)
                    .map_err(|_| E::custom(format!("count {v} is too large")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Count, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::custom(
                        "a count cannot be negative; use \"unlimited\" to keep every bucket",
                    )),
                }
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Count, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(CountVisitor)
    }
}

/// A keep-within duration in restic's form `1y2m3d4h` (`m` is months).
///
/// Years, months and days are calendar steps, applied together the way Go's
/// `AddDate` does (so one month before Mar 31 is "Feb 31", which normalises
/// to Mar 2 or 3); hours are then subtracted as elapsed time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Within {
    pub years: u32,
    pub months: u32,
    pub days: u32,
    pub hours: u32,
}

impl Within {
    /// A zero duration is no rule, as in restic.
    pub fn is_zero(&self) -> bool {
        *self == Within::default()
    }
}

impl FromStr for Within {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Within, ParseError> {
        let err = |reason: String| ParseError::new("duration", s, reason);
        let mut rest = s.trim();
        if rest.is_empty() {
            return Err(err(
                "empty; expected a duration like 7d, 36h or 1y2m3d4h".into()
            ));
        }
        let mut w = Within::default();
        let mut seen = [false; 4];
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(err(format!(
                    "expected a number at {rest:?} (a duration is like 7d, 36h or 1y2m3d4h)"
                )));
            }
            let (num, tail) = rest.split_at(digits);
            let n: u32 = num
                .parse()
                .map_err(|_| err(format!("{num} is too large")))?;
            let mut chars = tail.chars();
            let slot = match chars.next() {
                None => {
                    return Err(err(format!("{num} has no unit; add y, m (months), d or h")));
                }
                Some('y') => 0,
                Some('m') => 1,
                Some('d') => 2,
                Some('h') => 3,
                Some(u) => {
                    return Err(err(format!(
                        "unknown unit {u:?} after {num}; units are y, m (months), d and h"
                    )));
                }
            };
            // restic silently lets the last of "1d2d" win; a typo like that
            // deserves an error, not a guess.
            if seen[slot] {
                return Err(err(format!(
                    "unit {:?} is given twice",
                    ['y', 'm', 'd', 'h'][slot]
                )));
            }
            seen[slot] = true;
            match slot {
                0 => w.years = n,
                1 => w.months = n,
                2 => w.days = n,
                _ => w.hours = n,
            }
            rest = chars.as_str();
        }
        Ok(w)
    }
}

impl fmt::Display for Within {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_zero() {
            return f.write_str("0h");
        }
        for (n, unit) in [
            (self.years, 'y'),
            (self.months, 'm'),
            (self.days, 'd'),
            (self.hours, 'h'),
        ] {
            if n != 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        Ok(())
    }
}

impl Serialize for Within {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Within {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Within, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(de::Error::custom)
    }
}

/// Parses one keep-tag value: comma-separated tags that must all be present.
/// Whitespace around each tag is dropped (as restic does); an empty tag is
/// refused, because restic would silently keep nothing for it.
pub fn parse_tag_set(s: &str) -> Result<Vec<String>, ParseError> {
    let tags: Vec<String> = s.split(',').map(|t| t.trim().to_string()).collect();
    if tags.iter().any(String::is_empty) {
        return Err(ParseError::new(
            "tag set",
            s,
            "empty tag; expected tags separated by commas, like daily,db",
        ));
    }
    Ok(tags)
}

/// Which snapshots `rbk prune` keeps. The rules are ORed: a snapshot is kept
/// if any rule keeps it, and each rule counts on its own.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<Count>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hourly: Option<Count>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daily: Option<Count>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weekly: Option<Count>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monthly: Option<Count>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub yearly: Option<Count>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub within: Option<Within>,
    /// Each entry is a set of tags that must all be present; a snapshot
    /// matching any entry is kept. An empty set matches every snapshot.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Vec<String>>,
}

impl Policy {
    /// The bucket rules in evaluation (and report) order, with their names.
    pub(crate) fn counts(&self) -> [(&'static str, Option<Count>); 6] {
        [
            ("last", self.last),
            ("hourly", self.hourly),
            ("daily", self.daily),
            ("weekly", self.weekly),
            ("monthly", self.monthly),
            ("yearly", self.yearly),
        ]
    }

    /// The keep-within rule, unless it is absent or zero.
    pub(crate) fn active_within(&self) -> Option<Within> {
        self.within.filter(|w| !w.is_zero())
    }

    /// True when no rule would keep anything: zero counts and a zero
    /// duration are no rules. Applying an empty policy would delete every
    /// snapshot, so the CLI refuses it (and [`super::plan`] keeps everything).
    pub fn is_empty(&self) -> bool {
        self.counts()
            .iter()
            .all(|(_, c)| !c.is_some_and(Count::is_active))
            && self.active_within().is_none()
            && self.tags.is_empty()
    }

    /// One line for reports, e.g. `keep 7 daily, 4 weekly, all monthly, within 1y, tag db,pre-upgrade`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (name, count) in self.counts() {
            match count {
                Some(Count::N(0)) | None => {}
                Some(Count::N(n)) => parts.push(format!("{n} {name}")),
                Some(Count::Unlimited) => parts.push(format!("all {name}")),
            }
        }
        if let Some(w) = self.active_within() {
            parts.push(format!("within {w}"));
        }
        for set in &self.tags {
            parts.push(tag_label(set));
        }
        if parts.is_empty() {
            "empty policy (keeps everything)".to_string()
        } else {
            format!("keep {}", parts.join(", "))
        }
    }
}

/// How a keep-tag set is named in reports and reasons: `tag a,b`.
pub(crate) fn tag_label(set: &[String]) -> String {
    if set.is_empty() {
        // Only reachable by building a Policy by hand: all of no tags is every snapshot.
        "tag (any)".to_string()
    } else {
        format!("tag {}", set.join(","))
    }
}
