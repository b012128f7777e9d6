//! Where `--repo` points: a local directory, or `s3://BUCKET/PREFIX` with the endpoint and credentials from the usual AWS variables or rbk.toml.

use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};

use super::s3::S3Config;

/// A repository location as the user gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Local(PathBuf),
    /// Bucket and key prefix (no leading or trailing `/`; may be empty).
    S3 {
        bucket: String,
        prefix: String,
    },
}

impl Location {
    /// `s3://BUCKET[/PREFIX]`, anything else a path. Another scheme (`sftp://`,
    /// `rest:`) is refused rather than taken for a relative directory.
    pub fn parse(repo: &std::path::Path) -> Result<Location> {
        let s = repo.to_string_lossy();
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                bail!("{s}: no bucket (s3://BUCKET/PREFIX)");
            }
            let prefix = prefix.trim_matches('/');
            if prefix.split('/').any(|c| c == "." || c == "..") {
                bail!("{s}: the prefix may not hold `.` or `..`");
            }
            return Ok(Location::S3 {
                bucket: bucket.to_string(),
                prefix: prefix.to_string(),
            });
        }
        if let Some((scheme, _)) = s.split_once("://") {
            bail!("{s}: rbk knows local paths and s3:// URLs, not {scheme}://");
        }
        Ok(Location::Local(repo.to_path_buf()))
    }
}

/// Settings from rbk.toml's `[s3]`, under the environment's (which win, as for every
/// AWS tool).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// `true`: `https://BUCKET.host/` (AWS); the default is path style,
    /// `https://host/BUCKET/`, which self-hosted servers (Garage, MinIO) expect.
    #[serde(default)]
    pub virtual_host_style: bool,
    pub access_key_id: Option<String>,
    /// A file whose first line is the secret key: not in rbk.toml itself, which is often
    /// world-readable and copied around.
    pub secret_access_key_file: Option<PathBuf>,
}

/// The S3 configuration for `bucket`/`prefix`: `AWS_ENDPOINT_URL`, `AWS_REGION` (or
/// `AWS_DEFAULT_REGION`), `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, each over rbk.toml.
pub fn s3_config(bucket: &str, prefix: &str, settings: &S3Settings) -> Result<S3Config> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let access_key_id = env("AWS_ACCESS_KEY_ID")
        .or_else(|| settings.access_key_id.clone())
        .ok_or_else(|| anyhow!("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or access_key_id and secret_access_key_file under [s3] in rbk.toml)"))?;
    let secret_access_key = match (
        env("AWS_SECRET_ACCESS_KEY"),
        &settings.secret_access_key_file,
    ) {
        (Some(s), _) => s,
        (None, Some(file)) => std::fs::read_to_string(file)
            .map_err(|e| anyhow!("cannot read secret_access_key_file {}: {e}", file.display()))?
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
        (None, None) => bail!(
            "AWS_ACCESS_KEY_ID is set but not AWS_SECRET_ACCESS_KEY (nor [s3] secret_access_key_file)"
        ),
    };
    Ok(S3Config {
        bucket: bucket.to_string(),
        prefix: prefix.to_string(),
        endpoint: env("AWS_ENDPOINT_URL")
            .or_else(|| env("AWS_ENDPOINT_URL_S3"))
            .or_else(|| settings.endpoint.clone()),
        region: env("AWS_REGION")
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .or_else(|| settings.region.clone())
            .unwrap_or_else(|| "us-east-1".into()),
        virtual_host_style: settings.virtual_host_style,
        access_key_id,
        secret_access_key: zeroize::Zeroizing::new(secret_access_key),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn locations_are_paths_or_s3_urls() {
        assert_eq!(
            Location::parse(Path::new("s3://bucket/rbk/nas/")).unwrap(),
            Location::S3 {
                bucket: "bucket".into(),
                prefix: "rbk/nas".into()
            }
        );
        assert_eq!(
            Location::parse(Path::new("s3://b")).unwrap(),
            Location::S3 {
                bucket: "b".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            Location::parse(Path::new("/mnt/nas/rbk")).unwrap(),
            Location::Local("/mnt/nas/rbk".into())
        );
        for bad in ["s3://", "s3:///x", "s3://b/../x", "sftp://host/x"] {
            assert!(Location::parse(Path::new(bad)).is_err(), "{bad}");
        }
    }
}
