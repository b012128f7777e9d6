//! Where a volume's files lie on this host, when rbk can read them there rather than through a one-off container's output stream (which the engine delivers at about 60-90 MB/s here).

use std::path::PathBuf;

use super::{Engine, VolumeMount};

impl Engine {
    /// The directory holding `mount`'s files on this host, when rbk can read them there:
    /// the engine is reached over its Unix socket (so its paths are this host's), the volume
    /// is the `local` driver's without options (an NFS or other device volume is mounted
    /// there only while a container uses it) or a bind mount, and the directory can be
    /// listed. `None` means: read it through a one-off container.
    pub async fn host_path(&self, mount: &VolumeMount) -> Option<PathBuf> {
        if !self.local {
            return None;
        }
        let path = if mount.kind == "bind" {
            PathBuf::from(&mount.source)
        } else {
            let volume = self.docker.inspect_volume(&mount.source).await.ok()?;
            let plain = volume.driver == "local" && volume.options.is_empty();
            if !plain || volume.mountpoint.is_empty() {
                return None;
            }
            PathBuf::from(volume.mountpoint)
        };
        std::fs::read_dir(&path).ok()?;
        Some(path)
    }
}
