//! `mcp-pii-gateway scan`.

use std::process::ExitCode;

/// Arguments of `scan`.
#[derive(clap::Args, Debug)]
pub struct ScanArgs {
    /// Each input line is a JSON object with a "text" field; print one {"spans":[...]} line each.
    #[arg(long)]
    pub jsonl: bool,
    /// Print the text with placeholders instead of the spans.
    #[arg(long)]
    pub tokenize: bool,
}

/// Runs `scan`.
pub fn run(args: ScanArgs) -> ExitCode {
    let _ = args;
    ExitCode::from(2)
}
