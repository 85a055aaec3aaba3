//! The subcommands. Each file owns its clap arguments and its `run`.

pub mod audit;
pub mod codegen;
pub mod log;
pub mod panic;
pub mod scan;
pub mod serve;
