//! Wall-clock helpers: Unix seconds and RFC 3339 with the local offset.

use std::sync::OnceLock;

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

static LOCAL_OFFSET: OnceLock<UtcOffset> = OnceLock::new();

/// Reads the local UTC offset. Call it first thing in `main`: the `time`
/// crate refuses to read it once other threads exist (the C library's
/// time-zone access is not thread-safe), and falls back to UTC.
pub fn init_local_offset() {
    let _ = LOCAL_OFFSET.set(UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC));
}

pub fn now_unix() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

/// Now, in RFC 3339 with the local UTC offset (UTC when it cannot be known).
/// Sub-second digits are kept so snapshots taken within one second still
/// sort in the order they were taken.
pub fn now_rfc3339() -> String {
    let offset = LOCAL_OFFSET.get().copied().unwrap_or(UtcOffset::UTC);
    let now = OffsetDateTime::now_utc().to_offset(offset);
    now.format(&Rfc3339)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}

/// An RFC 3339 time shown to the second, for tables.
pub fn display(rfc3339: &str) -> String {
    match parse_rfc3339(rfc3339) {
        Some(t) => {
            let t = t.replace_nanosecond(0).unwrap_or(t);
            t.format(&Rfc3339).unwrap_or_else(|_| rfc3339.to_string())
        }
        None => rfc3339.to_string(),
    }
}

pub fn format_unix(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| secs.to_string())
}

pub fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}
