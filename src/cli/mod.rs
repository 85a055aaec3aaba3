//! The subcommands. Each file owns its clap arguments and its `run`.

pub mod scan;
pub mod serve;
