//! Files in a container, running or stopped: their size and owner, their bytes copied out, a tar copied in.

use std::io;

use anyhow::{Context, Result, bail};
use bollard::query_parameters::{DownloadFromContainerOptions, UploadToContainerOptions};
use bytes::Bytes;
use futures_util::StreamExt;

use super::{ContainerInfo, Engine};
use crate::source::stream::ByteSender;

impl Engine {
    /// The size of a file in a container (running or stopped), or `None` if
    /// there is no such file.
    pub async fn file_size(&self, c: &ContainerInfo, path: &str) -> Result<Option<u64>> {
        let options = bollard::query_parameters::ContainerArchiveInfoOptions {
            path: path.to_string(),
        };
        match self
            .docker
            .get_container_archive_info(&c.id, Some(options))
            .await
        {
            Ok(stat) => Ok(Some(stat.size.max(0) as u64)),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(None),
            Err(e) => Err(anyhow::anyhow!("looking for {path} in {}: {e}", c.name)),
        }
    }

    /// The mode and numeric owner of a file in a container, from the first
    /// header block of the engine's archive of it (the rest is not read).
    /// `None` if there is no such file.
    pub async fn file_owner(
        &self,
        c: &ContainerInfo,
        path: &str,
    ) -> Result<Option<crate::codec::tar::Owner>> {
        if self.file_size(c, path).await?.is_none() {
            return Ok(None);
        }
        let mut stream = self.docker.download_from_container(
            &c.id,
            Some(DownloadFromContainerOptions {
                path: path.to_string(),
            }),
        );
        let mut head: Vec<u8> = Vec::with_capacity(crate::codec::tar::BLOCK_SIZE);
        while head.len() < crate::codec::tar::BLOCK_SIZE {
            match stream.next().await {
                Some(Ok(b)) => head.extend_from_slice(&b),
                Some(Err(e)) => bail!("reading {path} in {}: {e}", c.name),
                None => break,
            }
        }
        let block: Option<&[u8; crate::codec::tar::BLOCK_SIZE]> = head
            .get(..crate::codec::tar::BLOCK_SIZE)
            .and_then(|b| b.try_into().ok());
        // Only a regular file's owner and mode say anything: the engine archives a link as a
        // link (mode 0777), and whoever can write the directory may have planted one there.
        Ok(block
            .filter(|b| matches!(b[156], b'0' | 0))
            .and_then(crate::codec::tar::parse_owner))
    }

    /// The bytes of one file from a container (running or stopped, volume
    /// or container layer), streamed to `out`.
    pub async fn download_file(
        &self,
        c: &ContainerInfo,
        path: &str,
        out: ByteSender,
    ) -> Result<()> {
        let mut stream = self.docker.download_from_container(
            &c.id,
            Some(DownloadFromContainerOptions {
                path: path.to_string(),
            }),
        );
        // The engine sends a tar of the path; unpack its one regular file.
        let (tar_tx, tar_rx) = crate::source::stream::byte_stream();
        let unpack = tokio::task::spawn_blocking({
            let out = out.clone();
            move || crate::source::sqlite::untar_single_file(tar_rx, &out)
        });
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(b) => {
                    if tar_tx.send(Ok(b)).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tar_tx
                        .send(Err(io::Error::other(format!("downloading {path}: {e}"))))
                        .await;
                    break;
                }
            }
        }
        drop(tar_tx);
        unpack.await.context("the unpacking task failed")?
    }

    /// Puts a file into a container (running or stopped) from a tar stream.
    pub async fn upload_tar(&self, c: &ContainerInfo, dir: &str, tar: Bytes) -> Result<()> {
        self.docker
            .upload_to_container(
                &c.id,
                Some(UploadToContainerOptions {
                    path: dir.to_string(),
                    ..Default::default()
                }),
                bollard::body_full(tar),
            )
            .await
            .with_context(|| format!("copying into {}:{dir}", c.name))
    }
}
