//! `mcp-pii-gateway`: the command-line entry. Each subcommand lives in `src/cli/`.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A PII-tokenizing gateway for the Model Context Protocol.
#[derive(Parser, Debug)]
#[command(name = "mcp-pii-gateway", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Find PII in text read from stdin (or tokenize it).
    Scan(cli::scan::ScanArgs),
    /// Compliance: verify the audit log, replay its decisions, search for one value.
    Audit(cli::audit::AuditArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Scan(args) => cli::scan::run(args),
        Command::Audit(args) => cli::audit::run(args),
    }
}
