//! The subcommands. Each file owns its clap arguments and its `run`.

pub mod audit;
pub mod scan;
