//! `mcp-pii-gateway scan`: find (or tokenize) PII in text read from stdin.
//!
//! Modes:
//! - default: the whole of stdin is one text (UTF-8); prints one line per match,
//!   `KIND<TAB>START..END<TAB>line L, column C` with UTF-8 byte offsets (`START` inclusive,
//!   `END` exclusive) and a 1-based line and column (in characters). The matched text itself is
//!   never printed.
//! - `--jsonl`: each input line is a JSON object with a string `"text"` field; each output line
//!   is `{"spans":[{"start":S,"end":E,"kind":"EMAIL"}]}` with UTF-8 byte offsets into that
//!   text, one output line per input line, in order. Input is streamed: lines are processed as
//!   they arrive, and output is flushed whenever no more input is buffered.
//! - `--tokenize`: prints the text with placeholders instead (`[EMAIL_1]`, ...). All input of
//!   one run shares one scope, so the same value gets the same placeholder everywhere in the
//!   run; placeholder-shaped text already in the input is vaulted like any value, as the
//!   gateway does. With `--jsonl`, each output line is `{"text":"...tokenized..."}`; other
//!   members of the input object are not copied (they were not scanned, so copying them could
//!   leak).
//!
//! `--rules FILE` (repeatable) adds the custom rules of a TOML rule file to the built-in ones;
//! their matches are reported (and tokenized) with the rule's KIND. A bad rule file exits
//! with code 2 before any input is read.
//!
//! Bad input stops the run at the first bad line (not JSON, not an object, no string `text`;
//! or, without `--jsonl`, stdin that is not UTF-8) with an error on stderr naming the line
//! number and exit code 2; output for the lines before it has been written. The error never
//! echoes input content. I/O errors exit with 1; a closed stdout ends the run quietly.

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use mcp_pii_gateway::detect::{Detector, Span};
use mcp_pii_gateway::rewrite::Rewriter;
use mcp_pii_gateway::vault::{MemoryVault, ScopeId};
use serde_json::Value;

/// Arguments of `scan`.
#[derive(clap::Args, Debug)]
pub struct ScanArgs {
    /// Each input line is a JSON object with a "text" field; print one {"spans":[...]} line each.
    #[arg(long)]
    pub jsonl: bool,
    /// Print the text with placeholders instead of the spans.
    #[arg(long)]
    pub tokenize: bool,
    /// A TOML file of custom rules to use besides the built-in ones (see `rules/`); repeatable.
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
}

/// Why a run failed; decides the exit code.
enum Fail {
    /// Bad input: exit 2.
    Input(String),
    /// I/O or internal failure: exit 1.
    Io(String),
    /// Stdout was closed (e.g. `| head`): stop quietly.
    Closed,
}

impl From<io::Error> for Fail {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::BrokenPipe {
            Fail::Closed
        } else {
            Fail::Io(format!("I/O error: {e}"))
        }
    }
}

/// Runs `scan`.
pub fn run(args: ScanArgs) -> ExitCode {
    // Our own buffer (larger than stdin's, so reads bypass stdin's) lets the JSONL loop see
    // whether more input is already buffered.
    let mut input = BufReader::with_capacity(64 * 1024, io::stdin().lock());
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(64 * 1024, stdout.lock());
    let result = scan(&args, &mut input, &mut out).and_then(|()| out.flush().map_err(Fail::from));
    match result {
        Ok(()) | Err(Fail::Closed) => ExitCode::SUCCESS,
        Err(Fail::Input(msg)) => {
            let _ = out.flush();
            eprintln!("mcp-pii-gateway scan: {msg}");
            ExitCode::from(2)
        }
        Err(Fail::Io(msg)) => {
            let _ = out.flush();
            eprintln!("mcp-pii-gateway scan: {msg}");
            ExitCode::from(1)
        }
    }
}

/// What to do with each text.
struct Scanner {
    detector: Arc<Detector>,
    rewriter: Option<Rewriter>,
    scope: ScopeId,
    spans: Vec<Span>,
}

impl Scanner {
    fn new(tokenize: bool, rules: &[PathBuf]) -> Result<Scanner, Fail> {
        let mut builder = Detector::builder();
        for path in rules {
            builder = builder.rules_file(path).map_err(|e| Fail::Input(e.to_string()))?;
        }
        let detector = Arc::new(builder.build().map_err(|e| Fail::Input(e.to_string()))?);
        let rewriter = tokenize.then(|| {
            // One run is one scope; its size is bounded by the input, not by a cap.
            let vault = MemoryVault::builder()
                .max_entries_per_scope(usize::MAX)
                .idle_ttl(std::time::Duration::from_secs(u64::from(u32::MAX)))
                .build();
            Rewriter::new(detector.clone(), Arc::new(vault))
        });
        Ok(Scanner {
            detector,
            rewriter,
            scope: ScopeId::new("scan", "stdin"),
            spans: Vec::new(),
        })
    }

    fn tokenize(&self, rw: &Rewriter, text: &str) -> Result<String, Fail> {
        rw.tokenize_text(text, &self.scope, "stdin")
            .map(|(t, _)| t)
            .map_err(|e| Fail::Io(e.to_string()))
    }
}

fn scan<R: Read>(args: &ScanArgs, input: &mut BufReader<R>, out: &mut dyn Write) -> Result<(), Fail> {
    let mut scanner = Scanner::new(args.tokenize, &args.rules)?;
    if args.jsonl {
        scan_jsonl(&mut scanner, input, out)
    } else {
        scan_whole(&mut scanner, input, out)
    }
}

fn scan_whole(sc: &mut Scanner, input: &mut dyn Read, out: &mut dyn Write) -> Result<(), Fail> {
    let mut bytes = Vec::new();
    input.read_to_end(&mut bytes)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = 1 + e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count();
        Fail::Input(format!(
            "line {line}: stdin is not valid UTF-8 (byte offset {at})"
        ))
    })?;
    if let Some(rw) = &sc.rewriter {
        let t = sc.tokenize(rw, &text)?;
        out.write_all(t.as_bytes())?;
        return Ok(());
    }
    sc.detector.find_into(&text, &mut sc.spans);
    // Line and column by one forward walk over the sorted spans.
    let (mut line, mut line_start, mut pos) = (1usize, 0usize, 0usize);
    for sp in &sc.spans {
        if sp.start < pos || sp.start > text.len() {
            // Not sorted (the detector promises it is): count from the start again.
            (line, line_start, pos) = (1, 0, 0);
        }
        let start = sp.start.min(text.len());
        for (i, b) in text.as_bytes()[pos..start].iter().enumerate() {
            if *b == b'\n' {
                line += 1;
                line_start = pos + i + 1;
            }
        }
        pos = start;
        let column = 1 + String::from_utf8_lossy(&text.as_bytes()[line_start..start])
            .chars()
            .count();
        writeln!(
            out,
            "{}\t{}..{}\tline {line}, column {column}",
            sp.kind, sp.start, sp.end
        )?;
    }
    Ok(())
}

fn scan_jsonl<R: Read>(sc: &mut Scanner, input: &mut BufReader<R>, out: &mut dyn Write) -> Result<(), Fail> {
    let mut buf = Vec::new();
    let mut n = 0usize;
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        n += 1;
        let mut line = buf.as_slice();
        line = line.strip_suffix(b"\n").unwrap_or(line);
        line = line.strip_suffix(b"\r").unwrap_or(line);
        let text =
            text_of(line).map_err(|why| Fail::Input(format!("line {n}: {why}; stopped at this line")))?;
        match &sc.rewriter {
            Some(rw) => {
                let t = sc.tokenize(rw, &text)?;
                let line = serde_json::json!({ "text": t }).to_string();
                out.write_all(line.as_bytes())?;
                out.write_all(b"\n")?;
            }
            None => {
                sc.detector.find_into(&text, &mut sc.spans);
                out.write_all(b"{\"spans\":[")?;
                for (i, sp) in sc.spans.iter().enumerate() {
                    let sep = if i == 0 { "" } else { "," };
                    // Kinds are [A-Z0-9_]: no JSON escaping needed.
                    write!(
                        out,
                        "{sep}{{\"start\":{},\"end\":{},\"kind\":\"{}\"}}",
                        sp.start, sp.end, sp.kind
                    )?;
                }
                out.write_all(b"]}\n")?;
            }
        }
        // Stream: flush when the next read may block, batch otherwise.
        if input.buffer().is_empty() {
            out.flush()?;
        }
    }
}

/// The `text` of one JSONL line, or why the line is bad (never quoting the line).
fn text_of(line: &[u8]) -> Result<String, String> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Err("empty line, expected a JSON object with a string \"text\" field".to_owned());
    }
    let v: Value = serde_json::from_slice(line).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Io => "I/O error",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "invalid data",
            serde_json::error::Category::Eof => "unexpected end of line",
        };
        format!("not valid JSON ({what} at column {})", e.column())
    })?;
    let Value::Object(mut m) = v else {
        return Err(format!(
            "expected a JSON object with a string \"text\" field, found {}",
            type_name(&v)
        ));
    };
    match m.remove("text") {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!("\"text\" must be a string, found {}", type_name(&other))),
        None => Err("the object has no \"text\" field".to_owned()),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
