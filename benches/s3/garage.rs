//! One Garage node as a local process for the benchmark: its config, layout, key and bucket.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

pub const BUCKET: &str = "rbk-bench";
pub const REGION: &str = "garage";

pub struct Garage {
    bin: PathBuf,
    config: PathBuf,
    server: Child,
    pub s3_addr: String,
    pub key_id: String,
    pub secret: String,
}

impl Drop for Garage {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}

/// The garage binary: `RBK_GARAGE`, or where `.ci/run` installs it.
pub fn binary() -> Option<PathBuf> {
    std::env::var_os("RBK_GARAGE")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .map(|h| PathBuf::from(h).join(".cache/rbk-ci/garage/bin/garage"))
        })
        .filter(|p| p.is_file())
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Garage {
    /// Starts a node whose data lives in `dir` (emptied first), and sets it up.
    pub fn start(bin: PathBuf, dir: &Path) -> Result<Garage> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir)?;
        let (rpc, s3) = (free_port()?, free_port()?);
        let secret: String = (0..32)
            .map(|i| format!("{:02x}", (i * 37 + rpc as usize) % 256))
            .collect();
        let config = dir.join("garage.toml");
        std::fs::write(
            &config,
            format!(
                r#"metadata_dir = "{meta}"
data_dir = "{data}"
db_engine = "sqlite"
replication_factor = 1
# rbk's packs are compressed and encrypted already: zstd over them finds nothing and costs
# the server CPU that, on one machine, rbk would use (the README advises the same).
compression_level = "none"
rpc_bind_addr = "127.0.0.1:{rpc}"
rpc_public_addr = "127.0.0.1:{rpc}"
rpc_secret = "{secret}"

[s3_api]
s3_region = "{REGION}"
api_bind_addr = "127.0.0.1:{s3}"
root_domain = ".s3.garage.localhost"
"#,
                meta = dir.join("meta").display(),
                data = dir.join("data").display(),
            ),
        )?;
        let mut perms = std::fs::metadata(&config)?.permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
        std::fs::set_permissions(&config, perms)?;
        let server = Command::new(&bin)
            .args(["-c", config.to_str().context("utf-8 path")?, "server"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("server.log"))?)
            .spawn()
            .context("start garage")?;
        let mut g = Garage {
            bin,
            config,
            server,
            s3_addr: format!("127.0.0.1:{s3}"),
            key_id: String::new(),
            secret: String::new(),
        };
        let id = g.retry(&["node", "id", "-q"])?;
        let id = id.trim().split('@').next().unwrap_or_default().to_string();
        // `node id` answers from the config before the RPC port listens: retried too.
        g.retry(&["layout", "assign", "-z", "dc1", "-c", "10G", &id])?;
        g.run(&["layout", "apply", "--version", "1"])?;
        let key = g.retry(&["key", "create", "rbk-bench"])?;
        g.key_id = field(&key, "Key ID").context("no key id")?;
        g.secret = field(&key, "Secret key").context("no secret")?;
        g.retry(&["bucket", "create", BUCKET])?;
        g.run(&[
            "bucket",
            "allow",
            "--read",
            "--write",
            "--owner",
            BUCKET,
            "--key",
            "rbk-bench",
        ])?;
        Ok(g)
    }

    fn run(&self, args: &[&str]) -> Result<String> {
        let out = Command::new(&self.bin)
            .arg("-c")
            .arg(&self.config)
            .args(args)
            .output()
            .context("run garage")?;
        if !out.status.success() {
            bail!(
                "garage {args:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// `run`, again until it works or 60 s passed (the node is still starting).
    fn retry(&self, args: &[&str]) -> Result<String> {
        let started = Instant::now();
        loop {
            match self.run(args) {
                Ok(out) => return Ok(out),
                Err(e) if started.elapsed() > Duration::from_secs(60) => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(500)),
            }
        }
    }

    /// CPU seconds the server has used so far (user and system), from /proc: a step's
    /// share of the machine that went to serving rbk rather than to rbk.
    pub fn cpu_seconds(&self) -> f64 {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", self.server.id())) else {
            return 0.0;
        };
        // Fields after the command name (which may hold spaces) end with ')'.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
        let ticks: u64 = [11, 12]
            .iter()
            .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
            .sum();
        ticks as f64 / 100.0
    }

    /// The S3 settings rbk reads, for an endpoint at `port` on 127.0.0.1.
    pub fn env(&self, cmd: &mut Command, port: u16) {
        cmd.env("AWS_ACCESS_KEY_ID", &self.key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env("AWS_REGION", REGION)
            .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"));
    }
}

/// `Name: value` on a line of garage's output.
fn field(out: &str, name: &str) -> Option<String> {
    out.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == name).then(|| v.trim().to_string())
    })
}
