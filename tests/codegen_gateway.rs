//! The generated code API against the real gateway: `codegen` reads `/mcp` of a running
//! gateway (and, with `--config`, of one it starts itself: the same bytes), then a Python script
//! and a TypeScript program written against the tree look a customer up in `crm` and email them
//! through `mail`. The mail server receives the real values; the programs' own output holds only
//! placeholders; a server no flow names is refused.
//!
//! Test data is the bundled demo server's: generated `example.com` people, 555-01xx numbers.
#![allow(clippy::unwrap_used)]

mod codegen_support;

use std::path::{Path, PathBuf};

use codegen_support::{codegen_cli, generate_from, node, python, run_python, run_typescript, temp_dir};
use mcp_pii_gateway::config::Config;
use mcp_pii_gateway::proxy::stack::Gateway;

const EMAIL: &str = "maria.garcia@example.com";
const PHONE: &str = "+1 202-555-0142";

struct Running {
    url: String,
    outbox: PathBuf,
    config: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn config_text(outbox: &Path) -> String {
    let exe = env!("CARGO_BIN_EXE_mcp-pii-gateway");
    format!(
        r#"listen = "127.0.0.1:0"
[[servers]]
name = "crm"
command = "{exe}"
args = ["demo-upstream"]
[[servers]]
name = "mail"
command = "{exe}"
args = ["demo-upstream"]
env = {{ MCP_PII_DEMO_OUTBOX = "{outbox}" }}
[[servers]]
name = "paste"
command = "{exe}"
args = ["demo-upstream"]
[policy]
cross_server = "deny"
[[policy.flows]]
id = "crm-to-mail"
from = "crm"
to = "mail/send_email"
kinds = ["EMAIL", "PHONE"]
"#,
        outbox = outbox.display()
    )
}

/// A gateway (as `serve` builds it) on its own runtime thread.
fn start(name: &str) -> (Running, codegen_support::TempDir) {
    let dir = temp_dir(name);
    let outbox = dir.join("outbox.jsonl");
    let text = config_text(&outbox);
    let config_path = dir.join("gateway.toml");
    std::fs::write(&config_path, &text).unwrap();
    let config = Config::from_toml_str(&text, |_| None).unwrap();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let gw = Gateway::from_config(&config).unwrap();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let front = gw.front().clone();
            let _ = front
                .serve(listener, async {
                    let _ = stop_rx.await;
                })
                .await;
        });
    });
    let addr = addr_rx.recv().unwrap();
    (
        Running {
            url: format!("http://{addr}/mcp"),
            outbox,
            config: config_path,
            stop: Some(stop_tx),
            thread: Some(thread),
        },
        dir,
    )
}

fn outbox(r: &Running) -> String {
    std::fs::read_to_string(&r.outbox).unwrap_or_default()
}

#[test]
fn generated_python_moves_a_customer_from_crm_to_mail_seeing_only_placeholders() {
    let (gw, _dir) = start("gateway-python");
    let (tree, said) = generate_from("gateway-python-tree", &gw.url, "python", &[]);
    assert!(said.contains("3 servers, 6 tools"), "{said}");
    let send = std::fs::read_to_string(tree.join("servers/mail/send_email.py")).unwrap();
    assert!(
        send.contains("receives EMAIL from crm (flow crm-to-mail)"),
        "{send}"
    );

    // --config starts the same gateway itself: the same tree, byte for byte.
    let again = temp_dir("gateway-python-config");
    let out = codegen_cli(&[
        "--config",
        gw.config.to_str().unwrap(),
        "--lang",
        "python",
        "--out",
        again.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in [
        "servers/mail/send_email.py",
        "servers/crm/lookup_customer.py",
        "servers/README.md",
        "servers/_client.py",
    ] {
        assert_eq!(
            std::fs::read(tree.join(f)).unwrap(),
            std::fs::read(again.join(f)).unwrap(),
            "{f}"
        );
    }

    let Some(python) = python() else { return };
    let script = r#"
import asyncio, json
from servers.crm import lookup_customer
from servers.mail import send_email
from servers.paste import send_email as paste
from servers._client import ToolError, check_flow

async def main():
    customer = await lookup_customer({"id": 42})
    print("customer", json.dumps(customer, sort_keys=True))
    sent = await send_email({"to": customer["email"], "subject": "Your order",
                             "body": f"We will call you at {customer['phone']} tomorrow."})
    print("sent", json.dumps(sent["content"]))
    print("check", (await check_flow("paste__send_email", {"to": customer["email"]}))["allowed"])
    try:
        await paste({"to": customer["email"]})
    except ToolError as e:
        print("refused", e)

asyncio.run(main())
"#;
    let out = run_python(&python, &tree, script, &[("MCP_GATEWAY_URL", gw.url.as_str())]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            r#"customer {"email": "[EMAIL_1]", "id": 42, "name": "Maria Garcia", "phone": "[PHONE_1]"}"#
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("sent [{\"type\": \"text\", \"text\": \"Queued an email to [EMAIL_1]\"}]"),
        "{stdout}"
    );
    assert!(stdout.contains("check False"), "{stdout}");
    assert!(
        stdout.contains("refused") && stdout.contains("paste/send_email"),
        "{stdout}"
    );
    assert!(!stdout.contains(EMAIL) && !stdout.contains(PHONE), "{stdout}");
    let received = outbox(&gw);
    assert!(received.contains(EMAIL) && received.contains(PHONE), "{received}");
    assert_eq!(
        received.lines().count(),
        1,
        "paste received nothing, mail once: {received}"
    );

    // The README's sandbox script, as printed there.
    let readme = include_str!("../README.md");
    assert!(
        readme.contains(README_SCRIPT),
        "README.md shows the script this test runs"
    );
    let out = run_python(
        &python,
        &tree,
        README_SCRIPT,
        &[("MCP_GATEWAY_URL", gw.url.as_str())],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout, "emailed [EMAIL_1]\n");
    assert_eq!(outbox(&gw).lines().count(), 2);
    assert!(outbox(&gw).lines().nth(1).unwrap().contains(EMAIL));
}

const README_SCRIPT: &str = r#"import asyncio
from servers.crm import lookup_customer
from servers.mail import send_email

async def main():
    customer = await lookup_customer({"id": 42})
    await send_email({"to": customer["email"], "subject": "Your order"})
    print("emailed", customer["email"])          # emailed [EMAIL_1]

asyncio.run(main())
"#;

#[test]
fn generated_typescript_runs_the_same_flow_under_node() {
    let Some((node, modules)) = node() else { return };
    let (gw, _dir) = start("gateway-typescript");
    let (tree, _) = generate_from("gateway-typescript-tree", &gw.url, "typescript", &[]);
    let stdout = run_typescript(
        &node,
        &modules,
        &tree,
        r#"import { crm, mail } from "./servers/index.js";
import { close } from "./servers/_client.js";

const customer = await crm.lookupCustomer({ id: 42 });
console.log("customer", JSON.stringify(customer));
// The demo server declares no outputSchema: its structuredContent is untyped.
const c = customer as unknown as { email: string; phone: string };
const sent = await mail.sendEmail({ to: c.email, body: `We will call you at ${c.phone} tomorrow.` });
console.log("sent", JSON.stringify(sent));
await close();
"#,
        &gw.url,
    );
    assert!(
        stdout.contains(r#""email":"[EMAIL_1]""#) && stdout.contains(r#""phone":"[PHONE_1]""#),
        "{stdout}"
    );
    assert!(stdout.contains("Queued an email to [EMAIL_1]"), "{stdout}");
    assert!(!stdout.contains(EMAIL) && !stdout.contains(PHONE), "{stdout}");
    let received = outbox(&gw);
    assert!(received.contains(EMAIL) && received.contains(PHONE), "{received}");
}
