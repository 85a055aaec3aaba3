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
    /// Serve the gateway over HTTP in front of the configured upstreams.
    Serve(cli::serve::ServeArgs),
    /// Speak MCP on stdin/stdout, relaying to one configured upstream.
    Stdio(cli::serve::StdioArgs),
    /// Start the gateway in front of bundled demo servers and show what a client sees on /mcp.
    Demo(cli::serve::DemoArgs),
    /// The bundled demo MCP server (stdio), used by `demo`.
    #[command(hide = true)]
    DemoUpstream,
    /// Compliance: verify the audit log, replay its decisions, search for one value.
    Audit(cli::audit::AuditArgs),
    /// Write the gateway's catalog as a typed `servers/` code API (TypeScript or Python).
    Codegen(cli::codegen::CodegenArgs),
}

fn main() -> ExitCode {
    // Before anything reads input: a panic's message may quote it.
    cli::panic::install();
    let cli = Cli::parse();
    match cli.command {
        Command::Scan(args) => cli::scan::run(args),
        Command::Serve(args) => cli::serve::run(args),
        Command::Stdio(args) => cli::serve::run_stdio(args),
        Command::Demo(args) => cli::serve::run_demo(args),
        Command::DemoUpstream => cli::serve::run_demo_upstream(),
        Command::Audit(args) => cli::audit::run(args),
        Command::Codegen(args) => cli::codegen::run(args),
    }
}
