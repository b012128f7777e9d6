//! A named volume as a store kind (`snapshot --volumes`): a tar of its contents from a one-off container that mounts it read-only, unpacked into it again on restore.

use anyhow::{Context, Result, anyhow};

use super::{PartFeed, RestoreSteps, Role, Source, StoreKind, Stream};
use crate::source::docker::{ContainerInfo, Engine, VolumeMount};
use crate::source::stream::byte_sink;

/// Archives a volume's contents as a tar of `./` and everything under it (owners, modes,
/// empty directories), from inside a one-off container that mounts it read-only.
const VOLUME_TAR: &str = "cd \"$1\" && exec tar -cf - .";

/// Empties the volume, then unpacks the part's tar into it, in a one-off container that
/// mounts only that volume (its owner is stopped). As root, GNU and BusyBox tar both restore
/// the recorded owners and modes.
const VOLUME_UNTAR: &str = "find \"$1\" -mindepth 1 -delete && exec tar -xf - -C \"$1\"";

/// The part holding a volume's tar archive: `volume.<name>.tar`. Part names are file names
/// (no `/`), so the prefix is joined by a dot.
pub fn part_of(name: &str) -> String {
    format!("volume.{name}.tar")
}

/// The volume name of a volume part, or `None` for any other part.
pub fn volume_of_part(part: &str) -> Option<&str> {
    part.strip_prefix("volume.")?
        .strip_suffix(".tar")
        .filter(|n| !n.is_empty())
}

pub struct VolumeTar {
    pub engine: Engine,
    /// The volume's Compose name (else its engine name): stable across project names.
    pub name: String,
    /// The container that mounts it, stopped while it is replaced.
    pub owner: ContainerInfo,
    pub mount: VolumeMount,
}

impl StoreKind for VolumeTar {
    fn role(&self) -> Role {
        Role::Volume
    }

    fn parts(&self) -> Vec<String> {
        vec![part_of(&self.name)]
    }

    fn labels(&self) -> Vec<(String, String)> {
        // The stack writes one label for all of them (`volumes`).
        Vec::new()
    }

    fn plan(&self) -> String {
        format!(
            "volume {} ({}:{})",
            self.mount.source, self.owner.name, self.mount.target
        )
    }

    fn holder(&self) -> Option<&ContainerInfo> {
        Some(&self.owner)
    }

    fn streams(&self, _rt: &tokio::runtime::Handle) -> Result<(Vec<Stream>, Vec<String>)> {
        let (engine, owner, mount) = (self.engine.clone(), self.owner.clone(), self.mount.clone());
        let stream = Stream {
            part: part_of(&self.name),
            origin: format!("docker:{}", self.plan()),
            size: None,
            // A tar deduplicates as it is.
            raw: true,
            source: Source::task(move |tx| async move {
                engine
                    .run_on_volume(&owner, &mount, true, VOLUME_TAR, Some(tx), None)
                    .await
                    .map(|_| ())
            }),
        };
        Ok((vec![stream], Vec::new()))
    }

    fn restore_steps(&self, _feed: &dyn PartFeed) -> RestoreSteps {
        RestoreSteps {
            before: Vec::new(),
            during: vec![format!(
                "empty {} and unpack {} into it",
                self.plan(),
                part_of(&self.name)
            )],
        }
    }

    fn consume(&self, rt: &tokio::runtime::Handle, feed: &dyn PartFeed) -> Result<Vec<String>> {
        let part = part_of(&self.name);
        unpack(rt, &self.engine, &self.owner, &self.mount, feed, &part)?;
        Ok(vec![part])
    }
}

/// Empties the volume `mount` of `owner` (stopped) and unpacks the tar `part` into it.
pub(super) fn unpack(
    rt: &tokio::runtime::Handle,
    engine: &Engine,
    owner: &ContainerInfo,
    mount: &VolumeMount,
    feed: &dyn PartFeed,
    part: &str,
) -> Result<()> {
    let (mut sink, rx) = byte_sink();
    let task = {
        let (engine, owner, mount) = (engine.clone(), owner.clone(), mount.clone());
        rt.spawn(async move {
            engine
                .run_on_volume(&owner, &mount, false, VOLUME_UNTAR, None, Some(rx))
                .await
        })
    };
    let fed = feed
        .write(part, &mut sink)
        .and_then(|()| sink.close().map_err(super::FeedError::from_io));
    rt.block_on(task)
        .map_err(|e| anyhow!("{e}"))?
        .with_context(|| format!("restoring {part} into volume {}", mount.source))?;
    fed.map_err(|e| e.error)
        .with_context(|| format!("restoring {part}"))
}
