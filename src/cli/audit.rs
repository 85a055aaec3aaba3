//! `mcp-pii-gateway audit verify|replay|search`: the compliance commands.
//!
//! Exit codes: 0 success (intact / nothing differs / search done), 1 the log is not intact or a
//! replayed decision differs, 2 usage, configuration or I/O errors.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use mcp_pii_gateway::audit::{self, Fingerprinter};
use mcp_pii_gateway::policy::Policy;

/// Arguments of `audit`.
#[derive(clap::Args, Debug)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(clap::Subcommand, Debug)]
enum AuditCommand {
    /// Check the hash chain: exit 0 when intact, 1 naming the first bad record's seq.
    Verify(VerifyArgs),
    /// Re-evaluate every recorded decision under the recorded policy or another one: exit 0 when
    /// nothing differs, 1 when something does.
    Replay(ReplayArgs),
    /// List the records that involve one value (found by its keyed fingerprint), showing
    /// nothing about other values.
    Search(SearchArgs),
}

#[derive(clap::Args, Debug)]
struct VerifyArgs {
    /// The log's files, rotated ones included, in any order; with replicas, every replica's
    /// chain (each is verified on its own; replay and search merge them by time).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// A record known to be in the log, as SEQ:HASH (the `head` an earlier verify printed, kept
    /// elsewhere): detects records cut off the end of the log. Repeatable.
    #[arg(long, value_name = "SEQ:HASH")]
    anchor: Vec<audit::Anchor>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct ReplayArgs {
    /// The log's files, rotated ones included, in any order; with replicas, every replica's
    /// chain (each is verified on its own; replay and search merge them by time).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Replay under this policy (a gateway.toml, a file it names, or a bare policy file) instead
    /// of the recorded ones.
    #[arg(long)]
    policy: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct SearchArgs {
    /// The log's files, rotated ones included, in any order; with replicas, every replica's
    /// chain (each is verified on its own; replay and search merge them by time).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// The value to look for (exact string). Prefer --value-stdin to keep it out of shell
    /// history and process lists.
    #[arg(long, conflicts_with = "value_stdin", required_unless_present = "value_stdin")]
    value: Option<String>,
    /// Read the value from the first line of stdin.
    #[arg(long)]
    value_stdin: bool,
    /// Environment variable holding the fingerprint key the log was written with.
    #[arg(long, default_value = "MCP_PII_AUDIT_KEY")]
    key_env: String,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `audit`.
pub fn run(args: AuditArgs) -> ExitCode {
    let files = match &args.command {
        AuditCommand::Verify(a) => &a.files,
        AuditCommand::Replay(a) => &a.files,
        AuditCommand::Search(a) => &a.files,
    };
    if let Err(code) = audit_logs_only(files) {
        return code;
    }
    match args.command {
        AuditCommand::Verify(a) => verify(a),
        AuditCommand::Replay(a) => replay(a),
        AuditCommand::Search(a) => search(a),
    }
}

/// Refuses (exit 2) a file that is not an audit log at all: one with lines but none of them
/// an audit record (an object with `seq`, `prev_hash` and `hash`). A log with a bad or torn
/// record is still a log: `verify` reports it (exit 1). Empty files are logs with no records.
fn audit_logs_only(files: &[PathBuf]) -> Result<(), ExitCode> {
    let is_record = |line: &[u8]| {
        serde_json::from_slice::<serde_json::Value>(line).is_ok_and(|v| {
            v.get("seq").is_some_and(serde_json::Value::is_u64)
                && v.get("prev_hash").is_some_and(serde_json::Value::is_string)
                && v.get("hash").is_some_and(serde_json::Value::is_string)
        })
    };
    for f in files {
        let file = match std::fs::File::open(f) {
            Ok(file) => file,
            Err(e) => return Err(fail(format!("{}: {e}", f.display()))),
        };
        let mut lines = 0u64;
        let mut found = false;
        for line in std::io::BufReader::new(file).split(b'\n') {
            let line = match line {
                Ok(l) => l,
                Err(e) => return Err(fail(format!("{}: {e}", f.display()))),
            };
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            lines += 1;
            if is_record(&line) {
                found = true;
                break;
            }
        }
        if lines > 0 && !found {
            return Err(fail(format!(
                "{}: not an audit log (none of its {lines} line(s) is an audit record)",
                f.display()
            )));
        }
    }
    Ok(())
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::from(2)
}

/// Prints `text` and a newline. A closed pipe (`| head`) is not an error; other write
/// failures are (exit 2).
fn emit(text: &str) -> Result<(), ExitCode> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(fail(format!("cannot write the output: {e}"))),
    }
}

/// Prints the report as pretty JSON (`json`) or in its human form.
fn print_report<R: serde::Serialize + std::fmt::Display>(report: &R, json: bool) -> Result<(), ExitCode> {
    if json {
        match serde_json::to_string_pretty(report) {
            Ok(s) => emit(&s),
            Err(e) => Err(fail(e)),
        }
    } else {
        emit(&report.to_string())
    }
}

fn verify(a: VerifyArgs) -> ExitCode {
    let chains = match audit::verify_chains(&a.files) {
        Ok(c) => c,
        Err(e) => return fail(e),
    };
    if chains.len() > 1 {
        // Several replicas' chains: each verified on its own.
        if !a.anchor.is_empty() {
            return fail(
                "--anchor checks one chain: verify each replica's files on their own to use anchors",
            );
        }
        let intact = chains.iter().all(|(_, r)| r.is_intact());
        let out = if a.json {
            let all: Vec<serde_json::Value> = chains
                .iter()
                .map(|(name, r)| serde_json::json!({"chain": name.display().to_string(), "report": r}))
                .collect();
            match serde_json::to_string_pretty(&all) {
                Ok(s) => s,
                Err(e) => return fail(e),
            }
        } else {
            chains
                .iter()
                .map(|(name, r)| format!("chain {}: {r}", name.display()))
                .collect::<Vec<_>>()
                .join("\n")
        };
        if let Err(code) = emit(&out) {
            return code;
        }
        return if intact {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        };
    }
    let report = match audit::verify_anchored(&a.files, &a.anchor) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    if let Err(code) = print_report(&report, a.json) {
        return code;
    }
    if report.is_intact() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn replay(a: ReplayArgs) -> ExitCode {
    let policy = match &a.policy {
        Some(p) => match Policy::from_file(p) {
            Ok(p) => Some(p),
            Err(e) => return fail(e),
        },
        None => None,
    };
    match audit::verify_chains(&a.files) {
        Ok(chains) => {
            for (name, v) in chains.into_iter().filter(|(_, v)| !v.is_intact()) {
                eprintln!(
                    "warning: {} does not verify; replaying it anyway ({})",
                    name.display(),
                    v.problem
                        .map(|p| format!("first bad seq {}", p.seq))
                        .unwrap_or_default()
                );
            }
        }
        Err(e) => return fail(e),
    }
    let report = match audit::replay(&a.files, policy.as_ref()) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    if let Err(code) = print_report(&report, a.json) {
        return code;
    }
    if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

fn search(a: SearchArgs) -> ExitCode {
    let fp = match Fingerprinter::from_env(&a.key_env) {
        Ok(fp) => fp,
        Err(e) => return fail(e),
    };
    let value = match a.value {
        Some(v) => v,
        None => {
            let mut line = String::new();
            if let Err(e) = std::io::stdin().lock().read_line(&mut line) {
                return fail(format!("cannot read the value from stdin: {e}"));
            }
            line.trim_end_matches(['\n', '\r']).to_owned()
        }
    };
    if value.is_empty() {
        return fail("the value to search for is empty");
    }
    let report = match audit::search(&a.files, &value, &fp) {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    if let Err(code) = print_report(&report, a.json) {
        return code;
    }
    ExitCode::SUCCESS
}
