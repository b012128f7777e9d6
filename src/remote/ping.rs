//! Dead-man pings: an HTTP request to a monitoring service (healthchecks.io, Uptime Kuma's push monitors) when a run starts, succeeds or fails.
//!
//! A ping is advice to a watcher, never part of the backup: it has a bounded time, and
//! its failure is returned for the caller to report as a warning.

use std::time::Duration;

use anyhow::{Context, Result};

/// The longest a ping may take, connection included: a monitoring service that hangs
/// must not hold the nightly run.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// What a ping reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Start,
    Success,
    Failure,
}

/// The URL a signal goes to: `URL/start`, `URL`, `URL/fail`, as healthchecks.io and
/// Uptime Kuma expect.
pub fn url_for(base: &str, signal: Signal) -> String {
    let base = base.trim_end_matches('/');
    match signal {
        Signal::Start => format!("{base}/start"),
        Signal::Success => base.to_string(),
        Signal::Failure => format!("{base}/fail"),
    }
}

/// POSTs `body` to the signal's URL, within `TIMEOUT`; a status other than 2xx is an error.
pub fn ping(base: &str, signal: Signal, body: String) -> Result<()> {
    let url = url_for(base, signal);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT)
            .build()
            .context("building the HTTP client")?;
        let response = tokio::time::timeout(TIMEOUT, client.post(&url).body(body).send())
            .await
            .map_err(|_| anyhow::anyhow!("no answer within {} s", TIMEOUT.as_secs()))?
            .map_err(|e| anyhow::anyhow!("{}", without_url(&e)))?;
        let status = response.status();
        if !status.is_success() {
            anyhow::bail!("the server answered {status}");
        }
        Ok(())
    })
}

/// A reqwest error's words without the URL it carries: a ping URL is a secret of sorts
/// (whoever has it can report a backup as done).
fn without_url(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("no answer within {} s", TIMEOUT.as_secs());
    }
    let kind = if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut cause = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(c) = cause {
        detail = c.to_string();
        cause = c.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {detail}")
    }
}

/// The part of a ping URL that may be shown: its scheme and host.
pub fn shown(base: &str) -> String {
    match base.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
            // user:password@host shows as host.
            let host = host.rsplit('@').next().unwrap_or_default();
            format!("{scheme}://{host}/…")
        }
        None => "the ping URL".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_go_where_healthchecks_expects_them() {
        let base = "https://hc-ping.com/5f0c";
        assert_eq!(
            url_for(base, Signal::Start),
            "https://hc-ping.com/5f0c/start"
        );
        assert_eq!(url_for(base, Signal::Success), "https://hc-ping.com/5f0c");
        assert_eq!(
            url_for("http://kuma/api/push/x/", Signal::Failure),
            "http://kuma/api/push/x/fail"
        );
    }

    #[test]
    fn a_shown_url_keeps_only_scheme_and_host() {
        assert_eq!(
            shown("https://u:p@hc-ping.com/5f0c?x=1"),
            "https://hc-ping.com/…"
        );
        assert_eq!(shown("not a url"), "the ping URL");
    }
}
