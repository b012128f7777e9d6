//! A real Garage cluster for the S3 tests: three nodes with replication factor 3, each a container of the test image with its own data volume, on a private network; set up (layout, key, bucket) and torn down by this harness.
//!
//! The `garage` binary comes from `cargo install --locked garage` (`.ci/run` caches it
//! under `~/.cache/rbk-ci/garage`; `RBK_GARAGE` names another) and is mounted read-only
//! into the containers: the test image and this host are the same Debian release. The S3
//! API of every node is reached at its address on the network, from this host.
//! `RBK_SKIP_GARAGE=1` skips the tests on a machine without it; otherwise its absence fails.
//! One cluster runs at a time, beside the stack tests (`turn_of` with a lock of its own).

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::stack::{IMAGE, docker, docker_out, inspect, turn_of};

/// The S3 API port, RPC port and admin port inside each container.
const S3_PORT: u16 = 3900;
const RPC_PORT: u16 = 3901;
pub const BUCKET: &str = "rbk";
/// Garage's region name (it checks the one requests are signed for).
pub const REGION: &str = "garage";

pub struct Garage {
    name: String,
    pub nodes: Vec<String>,
    pub key_id: String,
    pub secret: String,
    /// The S3 endpoint of each node, `http://IP:3900`.
    pub endpoints: Vec<String>,
    /// Each node's `id@ip:port`, for reconnecting after a restart.
    peers: Vec<String>,
    _turn: std::sync::MutexGuard<'static, ()>,
}

/// The garage binary, or why there is none.
fn garage_bin() -> Result<PathBuf, String> {
    if let Ok(p) = std::env::var("RBK_GARAGE") {
        return Ok(PathBuf::from(p));
    }
    let cached = std::env::var("HOME")
        .map(|h| PathBuf::from(h).join(".cache/rbk-ci/garage/bin/garage"))
        .map_err(|_| "no HOME".to_string())?;
    if cached.is_file() {
        return Ok(cached);
    }
    Err(format!(
        "no garage binary at {} (cargo install --locked garage --no-default-features --features sqlite,bundled-libs --root ~/.cache/rbk-ci/garage, as .ci/run does; or set RBK_GARAGE)",
        cached.display()
    ))
}

impl Garage {
    /// The cluster, up with a bucket and a key, or `None` when Docker or Garage tests are
    /// switched off.
    pub fn start(test: &str) -> Option<Garage> {
        let name = format!("s3::{test}");
        let bin = match garage_bin() {
            Ok(b) => b,
            Err(why) if std::env::var("RBK_SKIP_GARAGE").as_deref() == Ok("1") => {
                eprintln!("{name}: skipped (RBK_SKIP_GARAGE=1): {why}");
                return None;
            }
            Err(why) => panic!("{name} needs Garage: {why}; or set RBK_SKIP_GARAGE=1 to skip"),
        };
        // One cluster at a time (two would share the machine's two cores), but beside the
        // stack tests: a cluster is its own containers on its own network, and no stack test
        // looks at either.
        static CLUSTERS: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let turn = turn_of(&CLUSTERS, &name)?;
        remove_stale();
        let id = format!("rbkgarage_{}_{}", test, std::process::id());
        let mut g = Garage {
            name: id.clone(),
            nodes: Vec::new(),
            key_id: String::new(),
            secret: String::new(),
            endpoints: Vec::new(),
            peers: Vec::new(),
            _turn: turn,
        };
        let config = std::env::temp_dir().join(format!("{id}.toml"));
        let secret: String = (0..32)
            .map(|i| format!("{:02x}", (std::process::id() as u64 * 31 + i * 7919) % 251))
            .collect();
        std::fs::write(&config, config_text(&secret)).expect("write the garage config");
        // Garage refuses a configuration holding its RPC secret that others may read.
        std::fs::set_permissions(&config, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("chmod the garage config");
        // Fixed addresses: a stopped container gives its address back, and a node that came
        // back elsewhere would be lost to its peers (and to the tests' endpoints).
        let subnet = create_network(&id);
        for n in 1..=3 {
            let node = format!("{id}_n{n}");
            let ip = format!("{subnet}.{}", 10 + n);
            docker(&["volume", "create", "--label", "io.rbk.test-garage=1", &node]);
            docker(&[
                "run",
                "-d",
                "--name",
                &node,
                "--label",
                "io.rbk.test-garage=1",
                "--network",
                &id,
                "--ip",
                &ip,
                "-v",
                &format!("{node}:/var/lib/garage"),
                "-v",
                &format!("{}:/usr/local/bin/garage:ro", bin.display()),
                "-v",
                &format!("{}:/etc/garage.toml:ro", config.display()),
                "--entrypoint",
                "/usr/local/bin/garage",
                IMAGE,
                "-c",
                "/etc/garage.toml",
                "server",
            ]);
            g.nodes.push(node);
        }
        g.endpoints = g
            .nodes
            .iter()
            .map(|n| format!("http://{}:{S3_PORT}", g.ip(n)))
            .collect();
        // Each node knows its own id; the first one is told where the others are.
        let ids: Vec<String> = g
            .nodes
            .iter()
            .map(|n| {
                let out = g.garage_retry(n, &["node", "id", "-q"]);
                out.trim().split('@').next().unwrap_or_default().to_string()
            })
            .collect();
        g.peers = g
            .nodes
            .iter()
            .zip(&ids)
            .map(|(node, id)| format!("{id}@{}:{RPC_PORT}", g.ip(node)))
            .collect();
        g.connect();
        for (i, node_id) in ids.iter().enumerate() {
            g.garage(
                &g.nodes[0],
                &[
                    "layout",
                    "assign",
                    "-z",
                    &format!("dc{}", i + 1),
                    "-c",
                    "1G",
                    node_id,
                ],
            );
        }
        g.garage(&g.nodes[0], &["layout", "apply", "--version", "1"]);
        let key = g.garage_retry(&g.nodes[0], &["key", "create", "rbk-test"]);
        g.key_id = field(&key, "Key ID").unwrap_or_else(|| panic!("no key id in:\n{key}"));
        g.secret = field(&key, "Secret key").unwrap_or_else(|| panic!("no secret in:\n{key}"));
        g.garage_retry(&g.nodes[0], &["bucket", "create", BUCKET]);
        g.garage(
            &g.nodes[0],
            &[
                "bucket", "allow", "--read", "--write", "--owner", BUCKET, "--key", "rbk-test",
            ],
        );
        Some(g)
    }

    /// `garage ARGS` in a node's container; panics on failure.
    pub fn garage(&self, node: &str, args: &[&str]) -> String {
        let mut all = vec!["exec", node, "garage", "-c", "/etc/garage.toml"];
        all.extend_from_slice(args);
        docker(&all)
    }

    /// The same, retried for up to a minute: just after the start, the node may not answer
    /// its RPC yet, and the cluster may not have converged on the layout.
    fn garage_retry(&self, node: &str, args: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut all = vec!["exec", node, "garage", "-c", "/etc/garage.toml"];
        all.extend_from_slice(args);
        loop {
            let out = docker_out(&all);
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).into_owned();
            }
            if Instant::now() > deadline {
                panic!(
                    "garage {args:?} in {node} kept failing:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    pub fn ip(&self, node: &str) -> String {
        inspect(
            node,
            &format!(
                "{{{{(index .NetworkSettings.Networks \"{}\").IPAddress}}}}",
                self.name
            ),
        )
    }

    pub fn stop(&self, node: &str) {
        docker(&["stop", "-t", "5", node]);
    }

    /// Starts a stopped node and has the first node connect to every other (a node
    /// that was down with the others may not find them again by itself).
    pub fn start_node(&self, node: &str) {
        docker(&["start", node]);
        self.connect();
    }

    /// The first node connects to each other node that runs (when it runs itself).
    fn connect(&self) {
        if !crate::stack::is_running(&self.nodes[0]) {
            return;
        }
        for (node, peer) in self.nodes.iter().zip(&self.peers).skip(1) {
            if crate::stack::is_running(node) {
                self.garage_retry(&self.nodes[0], &["node", "connect", peer]);
            }
        }
    }

    /// Waits until `rbk snapshots` of `s3://rbk/PREFIX` answers through `endpoint` (nodes
    /// just started reconnect and sync their layout first); on timeout, says what the last
    /// try and the cluster said.
    pub fn wait_serving(&self, endpoint: &str, prefix: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let mut c = crate::util::cmd_for(
                std::path::Path::new(&format!("s3://{BUCKET}/{prefix}")),
                crate::util::PASSWORD,
                &["snapshots"],
            );
            self.env(&mut c, endpoint);
            let r = crate::util::run(c);
            if r.code == crate::util::EXIT_OK {
                return;
            }
            if Instant::now() > deadline {
                let status = docker_out(&[
                    "exec",
                    &self.nodes[0],
                    "garage",
                    "-c",
                    "/etc/garage.toml",
                    "status",
                ]);
                panic!(
                    "the cluster did not serve again within 120 s; the last try:\n{}\ngarage status:\n{}{}",
                    r.all(),
                    String::from_utf8_lossy(&status.stdout),
                    String::from_utf8_lossy(&status.stderr)
                );
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    /// The environment an rbk command needs to reach the bucket through `endpoint`.
    pub fn env(&self, c: &mut Command, endpoint: &str) {
        c.env("AWS_ACCESS_KEY_ID", &self.key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env("AWS_REGION", REGION)
            .env("AWS_ENDPOINT_URL", endpoint);
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        for n in &self.nodes {
            let _ = docker_out(&["rm", "-f", "-v", n]);
            let _ = docker_out(&["volume", "rm", "-f", n]);
        }
        let _ = docker_out(&["network", "rm", &self.name]);
        let _ = std::fs::remove_file(std::env::temp_dir().join(format!("{}.toml", self.name)));
    }
}

/// Clusters an earlier test process left when it was killed before its Drop ran.
fn remove_stale() {
    let mine = format!("_{}_n", std::process::id());
    let left = docker(&[
        "ps",
        "-a",
        "--filter",
        "label=io.rbk.test-garage=1",
        "--format",
        "{{.Names}}",
    ]);
    for c in left
        .lines()
        .map(str::trim)
        .filter(|c| !c.is_empty() && !c.contains(&mine))
    {
        let _ = docker_out(&["rm", "-f", "-v", c]);
        let _ = docker_out(&["volume", "rm", "-f", c]);
    }
    let nets = docker(&[
        "network",
        "ls",
        "--filter",
        "label=io.rbk.test-garage=1",
        "--format",
        "{{.Name}}",
    ]);
    for n in nets
        .lines()
        .map(str::trim)
        .filter(|n| !n.is_empty() && !n.ends_with(&format!("_{}", std::process::id())))
    {
        let _ = docker_out(&["network", "rm", n]);
    }
}

/// A private network on a /24 of 10.0.0.0/8 that no other network holds; its first three
/// octets.
fn create_network(id: &str) -> String {
    let pid = std::process::id();
    for attempt in 0..20u32 {
        let n = pid.wrapping_mul(2654435761).wrapping_add(attempt * 7919);
        let prefix = format!("10.{}.{}", 100 + n % 100, (n >> 8) % 250 + 1);
        let out = docker_out(&[
            "network",
            "create",
            "--label",
            "io.rbk.test-garage=1",
            "--subnet",
            &format!("{prefix}.0/24"),
            id,
        ]);
        if out.status.success() {
            return prefix;
        }
    }
    panic!("no free /24 in 10.100.0.0/9 for the garage network");
}

/// `Name: value` on a line of garage's output.
fn field(out: &str, name: &str) -> Option<String> {
    out.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == name).then(|| v.trim().to_string())
    })
}

fn config_text(secret: &str) -> String {
    format!(
        r#"metadata_dir = "/var/lib/garage/meta"
data_dir = "/var/lib/garage/data"
db_engine = "sqlite"
replication_factor = 3
rpc_bind_addr = "[::]:{RPC_PORT}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "[::]:{S3_PORT}"
root_domain = ".s3.garage.localhost"
"#
    )
}
