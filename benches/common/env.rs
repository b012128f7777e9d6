//! Benchmark settings from the environment: a value, or the default when unset or blank.

use anyhow::{Context, Result};

pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> Result<T> {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .ok()
            .with_context(|| format!("{name}={v:?} is not a valid value")),
        _ => Ok(default),
    }
}
