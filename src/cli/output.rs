//! Formatting for people: sizes, rates, durations.

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub fn rate(bytes: u64, ms: u64) -> String {
    if ms == 0 {
        return "-".into();
    }
    format!("{:.0} MB/s", bytes as f64 / 1e6 / (ms as f64 / 1000.0))
}

/// Prints a value as one JSON object on stdout.
pub fn json(value: &serde_json::Value) {
    println!("{value}");
}
