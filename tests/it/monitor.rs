//! `--metrics-file` and `--ping-url`: the Prometheus file read back with a real exposition-format parser (and `promtool` where installed), and dead-man pings against a small HTTP server on 127.0.0.1.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use prometheus_parse::{Scrape, Value as Metric};

use crate::util::*;

/// The file's samples by (metric, command label, result label), and the types declared.
struct Metrics {
    samples: HashMap<(String, String, String), Metric>,
}

impl Metrics {
    fn read(path: &Path) -> Metrics {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let scrape = Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
            .unwrap_or_else(|e| panic!("not Prometheus text format ({e}):\n{text}"));
        let samples = scrape
            .samples
            .into_iter()
            .map(|s| {
                let key = (
                    s.metric.clone(),
                    s.labels.get("command").unwrap_or_default().to_string(),
                    s.labels.get("result").unwrap_or_default().to_string(),
                );
                (key, s.value)
            })
            .collect();
        Metrics { samples }
    }

    fn get(&self, metric: &str, command: &str) -> Option<f64> {
        self.get3(metric, command, "")
    }

    fn get3(&self, metric: &str, command: &str, result: &str) -> Option<f64> {
        match self
            .samples
            .get(&(metric.into(), command.into(), result.into()))?
        {
            Metric::Gauge(v) | Metric::Counter(v) | Metric::Untyped(v) => Some(*v),
            other => panic!("{metric} is not a number: {other:?}"),
        }
    }

    fn gauge(&self, metric: &str, command: &str) -> f64 {
        match self
            .samples
            .get(&(metric.into(), command.into(), String::new()))
        {
            Some(Metric::Gauge(v)) => *v,
            other => panic!("{metric}{{command={command:?}}} is not a gauge: {other:?}"),
        }
    }

    fn runs(&self, command: &str, result: &str) -> f64 {
        match self
            .samples
            .get(&("rbk_runs_total".into(), command.into(), result.into()))
        {
            Some(Metric::Counter(v)) => *v,
            None => 0.0,
            other => panic!("rbk_runs_total is not a counter: {other:?}"),
        }
    }
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

/// `promtool check metrics` (Debian's `prometheus` package) where it is installed: the
/// format's own linter, beside the parser crate.
fn promtool_accepts(path: &Path) {
    let Ok(file) = std::fs::File::open(path) else {
        panic!("open {}", path.display())
    };
    let Ok(out) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(file)
        .output()
    else {
        eprintln!("promtool is not installed: the metrics file was checked by the parser only");
        return;
    };
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(path).unwrap_or_default()
    );
}

#[test]
fn the_metrics_file_keeps_each_commands_last_run_and_last_success() {
    let env = Env::new();
    let data = env.write("data.bin", &random_bytes(3 * MIB, 41));
    let metrics = env.path("textfile/rbk.prom");
    std::fs::create_dir_all(metrics.parent().expect("dir")).expect("mkdir");
    let m = metrics.to_str().expect("utf-8");

    let before = now().floor();
    let snap = env.snapshot(&["--path", data.to_str().expect("utf-8"), "--metrics-file", m]);
    let after = now().ceil();
    let first = Metrics::read(&metrics);
    promtool_accepts(&metrics);
    assert_eq!(first.gauge("rbk_last_exit_code", "snapshot"), 0.0);
    assert_eq!(
        first.gauge("rbk_last_added_bytes", "snapshot"),
        u64_of(&snap, "bytes_added") as f64
    );
    assert_eq!(
        first.gauge("rbk_last_read_bytes", "snapshot"),
        (3 * MIB) as f64
    );
    assert_eq!(
        first.gauge("rbk_last_new_chunks", "snapshot"),
        u64_of(&snap, "new_chunks") as f64
    );
    let success = first.gauge("rbk_last_success_timestamp_seconds", "snapshot");
    assert!(
        (before..=after).contains(&success),
        "{success} not in {before}..{after}"
    );
    assert_eq!(
        first.get("rbk_last_failure_timestamp_seconds", "snapshot"),
        None
    );
    assert_eq!(first.runs("snapshot", "success"), 1.0);
    assert_eq!(first.gauge("rbk_snapshots", ""), 1.0);
    let packs: u64 = env
        .packs()
        .iter()
        .map(|p| std::fs::metadata(p).expect("pack").len())
        .sum();
    assert_eq!(first.gauge("rbk_repository_size_bytes", ""), packs as f64);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&metrics)
        .expect("file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644, "node_exporter's user must read it");

    // A failed night: its failure is recorded, the last success stays.
    let r = env.run(&[
        "snapshot",
        "--path",
        "/nonexistent/rbk-it",
        "--metrics-file",
        m,
    ]);
    assert_eq!(r.code, EXIT_FAILED, "{}", r.all());
    let failed = Metrics::read(&metrics);
    assert_eq!(failed.gauge("rbk_last_exit_code", "snapshot"), 1.0);
    assert_eq!(
        failed.gauge("rbk_last_success_timestamp_seconds", "snapshot"),
        success
    );
    assert!(failed.gauge("rbk_last_failure_timestamp_seconds", "snapshot") >= success);
    assert_eq!(
        failed.get("rbk_last_added_bytes", "snapshot"),
        None,
        "a failed run's figures are not the last success's"
    );
    assert_eq!(failed.runs("snapshot", "success"), 1.0);
    assert_eq!(failed.runs("snapshot", "failure"), 1.0);

    // Other commands share the file without erasing the snapshot's series.
    env.snapshot(&["--path", data.to_str().expect("utf-8")]);
    env.ok(&["prune", "--keep-last", "1", "--metrics-file", m]);
    env.ok(&["check", "--read-data", "--metrics-file", m]);
    let all = Metrics::read(&metrics);
    promtool_accepts(&metrics);
    assert_eq!(all.gauge("rbk_last_exit_code", "prune"), 0.0);
    assert!(all.get("rbk_last_freed_bytes", "prune").is_some());
    assert!(all.gauge("rbk_last_read_bytes", "check") > 0.0);
    assert_eq!(all.gauge("rbk_last_exit_code", "snapshot"), 1.0);
    assert_eq!(
        all.gauge("rbk_last_success_timestamp_seconds", "snapshot"),
        success
    );
    assert_eq!(all.gauge("rbk_snapshots", ""), 1.0, "after the prune");
    assert_eq!(all.get3("rbk_runs_total", "check", "success"), Some(1.0));
}

#[test]
fn a_metrics_file_that_cannot_be_written_is_a_warning_not_a_failure() {
    let env = Env::new();
    let data = env.write("data.bin", b"some bytes");
    let missing = env.path("no-such-dir/rbk.prom");
    let r = env.run(&[
        "snapshot",
        "--path",
        data.to_str().expect("utf-8"),
        "--metrics-file",
        missing.to_str().expect("utf-8"),
    ]);
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    assert!(
        r.stderr.contains("warning: cannot write the metrics file"),
        "{}",
        r.all()
    );
    assert_eq!(env.snapshots().len(), 1, "the snapshot is saved");
}

/// A request the test server received.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    body: String,
}

/// How the test server answers.
#[derive(Clone, Copy)]
enum Answer {
    Status(u16),
    /// Accepts the connection, reads the request, and never answers.
    Never,
}

/// A small HTTP/1.1 server on 127.0.0.1 that records what it is sent.
struct Server {
    port: u16,
    seen: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    fn start(answer: Answer) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let shared = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || serve(stream, answer, &shared));
            }
        });
        Server { port, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn seen(&self) -> Vec<Request> {
        self.seen.lock().expect("lock").clone()
    }
}

fn serve(stream: TcpStream, answer: Answer, seen: &Mutex<Vec<Request>>) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or_default().to_string(),
            parts.next().unwrap_or_default().to_string(),
        );
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = header.split_once(':')
                && k.trim().eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        seen.lock().expect("lock").push(Request {
            method,
            path,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        match answer {
            Answer::Status(code) => {
                let _ = write!(
                    writer,
                    "HTTP/1.1 {code} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK"
                );
                return;
            }
            Answer::Never => std::thread::sleep(Duration::from_secs(120)),
        }
    }
}

fn paths(seen: &[Request]) -> Vec<String> {
    seen.iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

#[test]
fn pings_say_start_then_success_or_failure_with_the_error() {
    let env = Env::new();
    let server = Server::start(Answer::Status(200));
    let url = server.url("/ping/5f0c");
    let data = env.write("data.bin", b"nightly bytes");
    env.ok(&[
        "snapshot",
        "--path",
        data.to_str().expect("utf-8"),
        "--ping-url",
        &url,
    ]);
    assert_eq!(
        paths(&server.seen()),
        ["POST /ping/5f0c/start", "POST /ping/5f0c"]
    );

    let r = env.run(&[
        "snapshot",
        "--path",
        "/nonexistent/rbk-it",
        "--ping-url",
        &url,
    ]);
    assert_eq!(r.code, EXIT_FAILED, "{}", r.all());
    let seen = server.seen();
    assert_eq!(
        paths(&seen[2..]),
        ["POST /ping/5f0c/start", "POST /ping/5f0c/fail"]
    );
    assert!(
        seen[3].body.contains("/nonexistent/rbk-it") && seen[3].body.contains("exit 1"),
        "the failure ping carries the error: {:?}",
        seen[3].body
    );

    // Commands that are not monitored do not ping, nor does a dry run, which did nothing.
    env.ok(&["snapshots", "--ping-url", &url]);
    env.ok(&["prune", "--keep-last", "1", "--dry-run", "--ping-url", &url]);
    assert_eq!(server.seen().len(), 4);
}

#[test]
fn rbk_toml_sets_the_metrics_file_and_the_ping_url() {
    let env = Env::new();
    let server = Server::start(Answer::Status(200));
    let metrics = env.path("rbk.prom");
    let config = env.write(
        "rbk.toml",
        format!(
            "[metrics]\nfile = {:?}\n\n[ping]\nurl = {:?}\n",
            metrics.to_str().expect("utf-8"),
            server.url("/hc")
        )
        .as_bytes(),
    );
    let data = env.write("data.bin", b"bytes");
    env.ok(&[
        "--config",
        config.to_str().expect("utf-8"),
        "snapshot",
        "--path",
        data.to_str().expect("utf-8"),
    ]);
    assert_eq!(paths(&server.seen()), ["POST /hc/start", "POST /hc"]);
    assert_eq!(
        Metrics::read(&metrics).gauge("rbk_last_exit_code", "snapshot"),
        0.0
    );
}

#[test]
fn a_ping_that_cannot_be_delivered_is_a_warning_never_a_failed_backup() {
    let env = Env::new();
    let data = env.write("data.bin", b"bytes");
    let path = data.to_str().expect("utf-8");
    // Nothing listens on a port just freed; a server that answers 500.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        format!(
            "http://127.0.0.1:{}/s3cr3t-uuid",
            l.local_addr().expect("addr").port()
        )
    };
    let failing = Server::start(Answer::Status(500));
    for url in [closed, failing.url("/s3cr3t-uuid")] {
        let r = env.run(&["snapshot", "--path", path, "--ping-url", &url, "--quiet"]);
        assert_eq!(r.code, EXIT_OK, "{}", r.all());
        assert!(
            r.stderr
                .contains("warning: the monitoring ping to http://127.0.0.1:"),
            "{}",
            r.all()
        );
        assert!(
            !r.stderr.contains("s3cr3t"),
            "the URL's path is not shown: {}",
            r.all()
        );
    }
    assert_eq!(env.snapshots().len(), 2, "both snapshots are saved");
}

#[test]
fn a_monitor_that_never_answers_holds_the_run_at_most_the_timeout_per_ping() {
    let env = Env::new();
    let data = env.write("data.bin", b"bytes");
    let server = Server::start(Answer::Never);
    let started = Instant::now();
    let child = env
        .cmd(&[
            "snapshot",
            "--path",
            data.to_str().expect("utf-8"),
            "--ping-url",
            &server.url("/hc"),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let r = wait_with_guard(
        child,
        Duration::from_secs(90),
        "snapshot with a hung monitor",
    );
    assert_eq!(r.code, EXIT_OK, "{}", r.all());
    assert_eq!(
        r.stderr.matches("no answer within 10 s").count(),
        2,
        "{}",
        r.all()
    );
    assert_eq!(paths(&server.seen()), ["POST /hc/start", "POST /hc"]);
    // Two pings of at most 10 s each, and the snapshot: not the server's two minutes.
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_eq!(env.snapshots().len(), 1);
}

#[test]
fn the_shipped_alert_rules_load_and_name_only_metrics_rbk_writes() {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/monitoring/rbk-alerts.yml");
    let text = std::fs::read_to_string(&rules).expect("rules");
    // The metric names a run writes, from a real file.
    let env = Env::new();
    let data = env.write("data.bin", b"bytes");
    let metrics = env.path("rbk.prom");
    env.ok(&[
        "snapshot",
        "--path",
        data.to_str().expect("utf-8"),
        "--metrics-file",
        metrics.to_str().expect("utf-8"),
    ]);
    let written: Vec<String> = Metrics::read(&metrics)
        .samples
        .keys()
        .map(|(name, _, _)| name.clone())
        .collect();
    let mut used: Vec<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("rbk_"))
        .collect();
    used.dedup();
    assert!(!used.is_empty());
    for name in used {
        assert!(
            written.iter().any(|w| w == name),
            "the rules use {name}, which rbk does not write ({written:?})"
        );
    }
    match std::process::Command::new("promtool")
        .args(["check", "rules"])
        .arg(&rules)
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "promtool check rules:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => eprintln!("promtool is not installed: only the metric names were checked"),
    }
}
