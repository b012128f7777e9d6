//! One-off containers: a service's image and volumes run once for a dump, a load or a volume archive (as `docker compose run` would), then removed; and the removal of those a crash left behind.

use std::collections::HashMap;

use anyhow::{Context, Result, bail};
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountType};
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, WaitContainerOptions,
};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::streams::{feed, finish_stream, pump_output};
use super::{
    ContainerInfo, Engine, Finished, LABEL_DRILL, LABEL_PROJECT, LABEL_RBK, LABEL_RBK_PROJECT,
    VolumeMount,
};
use crate::process::{ExitError, ExitStatusKind, StderrTail};
use crate::source::stream::ByteSender;

impl Engine {
    /// Runs a one-off container from `like`'s image with `like`'s volumes
    /// (the way `docker compose run` would), streaming stdout to `out`
    /// and, when given, `input` to stdin. The container is removed afterwards.
    pub async fn run_oneoff(
        &self,
        like: &ContainerInfo,
        cmd: Vec<String>,
        env: Vec<String>,
        out: Option<ByteSender>,
        input: Option<mpsc::Receiver<Bytes>>,
    ) -> Result<Finished> {
        let mut full_env = like.env.clone();
        full_env.extend(env);
        let spec = OneOff {
            mounts: like.mounts.iter().map(|m| (m.clone(), false)).collect(),
            entrypoint: None,
            cmd,
            env: full_env,
            user: None,
        };
        self.run_spec(like, spec, out, input).await
    }

    /// Runs `script` (`sh -c`, with the mount point as `$1`) as root in a one-off container
    /// from `owner`'s image with only `volume` mounted, at the place `owner` mounts it (read
    /// only when asked). The image's entrypoint and user are bypassed: an application image
    /// may start its program from the entrypoint, or run as a user that cannot read every
    /// file of the volume.
    pub async fn run_on_volume(
        &self,
        owner: &ContainerInfo,
        volume: &VolumeMount,
        read_only: bool,
        script: &str,
        out: Option<ByteSender>,
        input: Option<mpsc::Receiver<Bytes>>,
    ) -> Result<Finished> {
        let spec = OneOff {
            mounts: vec![(volume.clone(), read_only)],
            entrypoint: Some(vec![
                "/bin/sh".into(),
                "-c".into(),
                script.into(),
                "rbk".into(),
                volume.target.clone(),
            ]),
            cmd: Vec::new(),
            env: Vec::new(),
            user: Some("0:0".into()),
        };
        self.run_spec(owner, spec, out, input).await
    }

    async fn run_spec(
        &self,
        like: &ContainerInfo,
        spec: OneOff,
        out: Option<ByteSender>,
        input: Option<mpsc::Receiver<Bytes>>,
    ) -> Result<Finished> {
        let mounts = spec
            .mounts
            .iter()
            .map(|(m, read_only)| Mount {
                target: Some(m.target.clone()),
                source: Some(m.source.clone()),
                typ: Some(if m.kind == "bind" {
                    MountType::BIND
                } else {
                    MountType::VOLUME
                }),
                read_only: Some(*read_only),
                ..Default::default()
            })
            .collect();
        let mut labels = HashMap::new();
        labels.insert(LABEL_RBK.to_string(), like.name.clone());
        labels.insert(
            LABEL_RBK_PROJECT.to_string(),
            like.project.clone().unwrap_or_default(),
        );
        // A drill's one-off is the drill's: its teardown removes it, even mid-load.
        if let Some(drill) = &like.drill {
            labels.extend(drill.labels());
        }
        // What the error messages show: the command as the one-off runs it.
        let shown: Vec<String> = match &spec.entrypoint {
            Some(e) => e.iter().chain(&spec.cmd).cloned().collect(),
            None => spec.cmd.clone(),
        };
        let created = self
            .docker
            .create_container(
                None::<CreateContainerOptions>,
                ContainerCreateBody {
                    image: Some(like.image_id.clone()),
                    entrypoint: spec.entrypoint,
                    cmd: (!spec.cmd.is_empty()).then_some(spec.cmd),
                    env: Some(spec.env),
                    user: spec.user,
                    labels: Some(labels),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    attach_stdin: Some(input.is_some()),
                    open_stdin: Some(input.is_some()),
                    stdin_once: Some(input.is_some()),
                    host_config: Some(HostConfig {
                        mounts: Some(mounts),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )
            .await
            .with_context(|| format!("creating a one-off container from {}", like.image))?;
        let id = created.id;
        let result = self.drive_oneoff(&id, &shown, out, input).await;
        self.force_remove(&id).await;
        result
    }

    async fn drive_oneoff(
        &self,
        id: &str,
        cmd: &[String],
        out: Option<ByteSender>,
        input: Option<mpsc::Receiver<Bytes>>,
    ) -> Result<Finished> {
        // Attach before start, or the first output could be lost.
        let attached = self
            .docker
            .attach_container(
                id,
                Some(AttachContainerOptions {
                    stream: true,
                    stdout: true,
                    stderr: true,
                    stdin: input.is_some(),
                    ..Default::default()
                }),
            )
            .await?;
        self.docker
            .start_container(id, None)
            .await
            .context("starting the one-off container")?;
        let tail = StderrTail::default();
        let (fed, pumped) = tokio::join!(
            async {
                match input {
                    Some(rx) => feed(attached.input, rx).await,
                    None => Ok(()),
                }
            },
            pump_output(attached.output, out.as_ref(), &tail)
        );
        let consumer_gone = pumped?;
        let mut wait = self.docker.wait_container(id, None::<WaitContainerOptions>);
        let code = match wait.next().await {
            Some(Ok(r)) => r.status_code,
            // bollard reports a non-zero exit as an error carrying the code.
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
            Some(Err(e)) => return Err(e.into()),
            None => -1,
        };
        if let Err(e) = fed {
            let msg = format!("{e}; its stderr ended with:\n{}", tail.text());
            bail!("feeding {:?}: {msg}", cmd.first());
        }
        match out {
            Some(out) => finish_stream(cmd, code, &tail, &out, consumer_gone).await,
            // No stream to carry the failure: a non-zero exit is the error itself, so no
            // caller can take a failed load or check for a done one.
            None if code != 0 => {
                Err(
                    ExitError::command(&cmd.join(" "), ExitStatusKind::Code(code), tail.text())
                        .into(),
                )
            }
            None => Ok(Finished {
                exit_code: code,
                stderr: tail.text(),
            }),
        }
    }

    /// One-off containers rbk left behind for `project` (a crash mid-dump): removed before
    /// new work. Only that project's: another stack on the same engine may have a dump of
    /// its own in flight. One-offs made before rbk labelled the project are recognised by
    /// the container they copy (the `io.rbk.oneoff` value) being one of the project's.
    pub async fn remove_leftovers(&self, project: &str) -> Result<usize> {
        let oneoffs = self.list_with_labels(&[LABEL_RBK.to_string()]).await?;
        let mut names: Option<Vec<String>> = None;
        let mut removed = 0;
        for c in oneoffs {
            let labels = c.labels.unwrap_or_default();
            // A drill's one-offs go with its teardown (or its leftovers), never with the
            // stack's: the drill may be running in another rbk process.
            if labels.contains_key(LABEL_DRILL) {
                continue;
            }
            let mine = match labels.get(LABEL_RBK_PROJECT) {
                Some(p) => p == project,
                None => {
                    if names.is_none() {
                        let in_project = self
                            .list_with_labels(&[format!("{LABEL_PROJECT}={project}")])
                            .await?;
                        names = Some(
                            in_project
                                .into_iter()
                                .flat_map(|c| c.names.unwrap_or_default())
                                .map(|n| n.trim_start_matches('/').to_string())
                                .collect(),
                        );
                    }
                    let copied = labels.get(LABEL_RBK).map(String::as_str).unwrap_or("");
                    names
                        .as_ref()
                        .is_some_and(|n| n.iter().any(|n| n == copied))
                }
            };
            if let (true, Some(id)) = (mine, c.id) {
                self.force_remove(&id).await;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// How a one-off container differs from the container whose image it runs.
struct OneOff {
    /// Each mount, and whether it is read-only.
    mounts: Vec<(VolumeMount, bool)>,
    /// `None`: the image's entrypoint.
    entrypoint: Option<Vec<String>>,
    cmd: Vec<String>,
    env: Vec<String>,
    /// `None`: the image's user.
    user: Option<String>,
}
