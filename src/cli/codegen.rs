//! `mcp-pii-gateway codegen`: the `/mcp` catalog as a `servers/` code API (see
//! `mcp_pii_gateway::codegen`).

use std::path::PathBuf;
use std::process::ExitCode;

use mcp_pii_gateway::codegen::{self, fetch, Catalog, Lang, Options};
use mcp_pii_gateway::config::Config;

/// Arguments of `codegen`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["config", "url"])))]
pub struct CodegenArgs {
    /// Start the gateway of this configuration in this process and read its catalog.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Read the catalog of a running gateway's aggregated endpoint (`http://host:port/mcp`).
    #[arg(long)]
    pub url: Option<String>,
    /// The language of the generated code.
    #[arg(long, value_enum)]
    pub lang: LangArg,
    /// The directory to write `servers/` into (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// The client's bearer token.
    #[arg(long, env = "MCP_GATEWAY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// An extra request header, `Name: value` (repeatable).
    #[arg(long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
}

/// `--lang`.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
pub enum LangArg {
    /// TypeScript on `@modelcontextprotocol/sdk`.
    Typescript,
    /// Python on the `mcp` package.
    Python,
}

/// Runs `codegen`. Exits 2 on any problem (flags, source, catalog, output directory).
pub fn run(args: CodegenArgs) -> ExitCode {
    match generate(args) {
        Ok(summary) => {
            eprintln!("{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("codegen: {e}");
            ExitCode::from(2)
        }
    }
}

fn generate(args: CodegenArgs) -> Result<String, String> {
    let mut headers = Vec::new();
    for h in &args.headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| format!("--header {h:?}: expected `Name: value`"))?;
        let (name, value) = (name.trim(), value.trim());
        if http::HeaderName::from_bytes(name.as_bytes()).is_err()
            || http::HeaderValue::from_str(value).is_err()
        {
            return Err(format!("--header {name:?}: not a valid HTTP header"));
        }
        headers.push((name.to_string(), value.to_string()));
    }
    if let Some(t) = &args.token {
        let value = format!("Bearer {t}");
        if http::HeaderValue::from_str(&value).is_err() {
            return Err("--token: not usable in an HTTP header".into());
        }
        headers.push(("authorization".into(), value));
    }
    let lang = match args.lang {
        LangArg::Typescript => Lang::TypeScript,
        LangArg::Python => Lang::Python,
    };
    let mut options = Options::new(lang);
    let config = match &args.config {
        Some(path) => Some(Config::load(path).map_err(|e| format!("{}: {e}", path.display()))?),
        None => None,
    };
    if let Some(h) = config.as_ref().and_then(|c| c.scope.header.as_ref()) {
        options = options.scope_header(h.as_str());
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let catalog: Catalog = rt
        .block_on(async {
            match (&config, &args.url) {
                (Some(config), _) => fetch::catalog_from_config(config, &headers).await,
                (None, Some(url)) => fetch::catalog_from_url(url, &headers).await,
                (None, None) => Err(mcp_pii_gateway::Error::bad_input("--config or --url is required")),
            }
        })
        .map_err(|e| e.to_string())?;
    let files = codegen::generate(&catalog, &options);
    let written = codegen::write(&args.out, &files).map_err(|e| e.to_string())?;
    Ok(format!(
        "codegen: {} servers, {} tools into {}: {} written, {} unchanged, {} removed",
        catalog.servers.len(),
        catalog.tools().count(),
        args.out.join("servers").display(),
        written.written.len(),
        written.unchanged,
        written.removed.len()
    ))
}
