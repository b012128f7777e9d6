//! rbk: deduplicating, encrypted backups of RushDB stacks (Neo4j + SQL metadata).
//!
//! Layers, dependencies pointing down: `cli` (the only code that prints) ->
//! `backup` / `restore` (where inputs meet the store) -> `store` (the
//! repository engine) and `codec` / `parts` (stream formats and inputs,
//! which never touch the store).

pub mod backup;
pub mod cancel;
pub mod cli;
pub mod codec;
pub mod partial;
pub mod parts;
pub mod process;
pub mod progress;
pub mod remote;
pub mod restore;
pub mod retention;
pub mod source;
pub mod stack;
pub mod status;
pub mod store;
pub mod usage;
pub mod verify;
