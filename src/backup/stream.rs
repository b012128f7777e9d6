//! A store kind's stream into the repository: a task on the runtime produces while this thread stores, or a reader is stored as it is read.

use anyhow::{Context, Result, anyhow};

use super::store_reader;
use crate::parts::CODEC_NEO4J_DUMP;
use crate::source::kind::{Source, Stream};
use crate::source::stream::byte_stream;
use crate::stack::names::PART_GRAPH;
use crate::store::manifest::{Part, Snapshot};
use crate::store::writer::SnapshotWriter;

/// Stores one stream as a part. The part is returned only when both the store and the
/// producer succeeded; a failure names the part.
pub(crate) fn store_stream(
    rt: &tokio::runtime::Handle,
    writer: &SnapshotWriter<'_>,
    stream: Stream,
) -> Result<Part> {
    let Stream {
        part: name,
        origin,
        size,
        raw,
        source,
    } = stream;
    let produce = match source {
        Source::Reader(reader) => {
            return store_reader(writer, &name, origin, reader, size, raw)
                .with_context(|| format!("part {name}"));
        }
        Source::Task(produce) => produce,
    };
    // The producer runs on the runtime and writes into the sender; this thread stores what
    // it writes, so neither waits for a temporary file.
    let (tx, reader) = byte_stream();
    let producer = rt.spawn(produce(tx));
    let stored = store_reader(writer, &name, origin, reader, size, raw);
    let produced = rt
        .block_on(producer)
        .map_err(|e| anyhow!("the task producing {name} failed: {e}"))?;
    let part = stored.with_context(|| format!("part {name}"))?;
    produced.with_context(|| format!("part {name}"))?;
    Ok(part)
}

/// Saved, but a graph that is not stored as a dump needs a person: it cannot be loaded as
/// one, nor deduplicated as one.
pub(crate) fn unrecognised_dump(snapshot: &Snapshot) -> Option<String> {
    snapshot
        .parts
        .iter()
        .any(|p| p.name == PART_GRAPH && p.codec != CODEC_NEO4J_DUMP)
        .then(|| {
            format!(
                "{PART_GRAPH}: the output of neo4j-admin was not recognised as a dump; stored as it is"
            )
        })
}
