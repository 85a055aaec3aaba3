//! HTTPS with real TLS: certificates made here with rcgen, HTTPS MCP upstreams (hyper over
//! tokio-rustls, one of them requiring a client certificate) and the `serve` binary with TLS on
//! its front. A trusted upstream works, with values restored toward it and tokenized away from
//! it; an untrusted CA, a wrong host name and a missing or unknown client certificate each give
//! a 502 JSON-RPC error naming the server; plain HTTP to the TLS front gets nothing.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use mcp_pii_gateway::proxy::tls::MaybeTls;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A CA that signs leaf certificates.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ca {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }
    fn pem(&self) -> String {
        self.issuer.pem()
    }
    /// A leaf for `names` (DNS names or IPs): (certificate PEM, key PEM).
    fn leaf(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params.distinguished_name.push(DnType::CommonName, "leaf");
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

fn chain(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap()
}

fn key(pem: &str) -> PrivateKeyDer<'static> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).unwrap()
}

/// What an upstream received (request bodies, in order).
type Seen = Arc<Mutex<Vec<Value>>>;

/// An HTTPS MCP server on 127.0.0.1 serving `leaf`; with `client_ca`, it requires a client
/// certificate signed by it. `tools/call` answers with an email and echoes its arguments.
async fn https_upstream(leaf: &(String, String), client_ca: Option<&Ca>) -> (u16, Seen) {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(ca.issuer.der().clone()).unwrap();
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                    .build()
                    .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder.with_single_cert(chain(&leaf.0), key(&leaf.1)).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let seen2 = seen.clone();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            let seen = seen2.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                    let seen = seen.clone();
                    async move {
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let msg: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        seen.lock().unwrap().push(msg.clone());
                        Ok::<_, std::convert::Infallible>(answer(&msg))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (port, seen)
}

fn answer(msg: &Value) -> Response<Full<Bytes>> {
    let Some(id) = msg.get("id") else {
        return Response::builder()
            .status(StatusCode::ACCEPTED)
            .body(Full::default())
            .unwrap();
    };
    let result = match msg["method"].as_str() {
        Some("initialize") => json!({"protocolVersion": "2025-11-25", "capabilities": {"tools": {}},
            "serverInfo": {"name": "tls-upstream", "version": "1"}}),
        Some("tools/call") => json!({"content": [{"type": "text",
            "text": format!("owner ana.lima@example.org; got {}", msg["params"]["arguments"])}]}),
        _ => json!({}),
    };
    Response::builder()
        .header("content-type", "application/json")
        .header("mcp-session-id", "upstream-session-1")
        .body(Full::new(Bytes::from(
            json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string(),
        )))
        .unwrap()
}

/// The `serve` binary on `config`; stops when dropped.
struct Gateway {
    child: Child,
    /// `https://127.0.0.1:PORT`.
    base: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_gateway(config: &Path, untrusted_roots: &Path) -> Gateway {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcp-pii-gateway"))
        .args(["serve", "--config"])
        .arg(config)
        // The "system" roots: a CA that signed nothing here, so that only ca_file can make an
        // upstream trusted, whatever this machine trusts.
        .env("SSL_CERT_FILE", untrusted_roots)
        .env_remove("SSL_CERT_DIR")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let base = loop {
        line.clear();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "serve exited before listening"
        );
        if let Some(i) = line.find("listening on ") {
            let rest = &line[i + "listening on ".len()..];
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    std::thread::spawn(move || {
        let mut sink = String::new();
        while err.read_line(&mut sink).unwrap_or(0) > 0 {
            eprint!("{sink}");
            sink.clear();
        }
    });
    Gateway { child, base }
}

/// POSTs one JSON-RPC message over HTTPS (trusting `ca`) to `base` + `path`; returns the
/// status, the session id and the JSON body.
async fn post(
    base: &str,
    ca: &Ca,
    path: &str,
    session: Option<&str>,
    msg: Value,
) -> (StatusCode, Option<String>, Value) {
    let addr = base.strip_prefix("https://").unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.issuer.der().clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    let io: MaybeTls<_> = MaybeTls::Tls(Box::new(tls));
    let (mut tx, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = Request::post(path)
        .header("host", addr)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream");
    if let Some(s) = session {
        req = req
            .header("mcp-session-id", s)
            .header("mcp-protocol-version", "2025-11-25");
    }
    let req = req.body(Full::new(Bytes::from(msg.to_string()))).unwrap();
    let res = tx.send_request(req).await.unwrap();
    let status = res.status();
    let session = res
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap_or_else(|_| panic!("not JSON: {body:?}"))
    };
    (status, session, value)
}

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-11-25",
        "capabilities": {}, "clientInfo": {"name": "tls-test", "version": "1"}}})
}

struct Dir(PathBuf);
impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    std::fs::write(dir.join(name), text).unwrap();
    name.to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_upstreams_and_front() {
    let dir = std::env::temp_dir().join(format!("tls-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _cleanup = Dir(dir.clone());

    let ca = Ca::new("test ca");
    let client_ca = Ca::new("test client ca");
    let stranger = Ca::new("stranger ca");
    let plain = https_upstream(&ca.leaf(&["localhost", "127.0.0.1"]), None).await;
    let misnamed = https_upstream(&ca.leaf(&["wrong.example"]), None).await;
    let mutual = https_upstream(&ca.leaf(&["localhost", "127.0.0.1"]), Some(&client_ca)).await;

    write(&dir, "ca.pem", &ca.pem());
    let untrusted = dir.join(write(&dir, "stranger.pem", &stranger.pem()));
    let (c, k) = client_ca.leaf(&["gateway.example"]);
    write(&dir, "client.pem", &c);
    write(&dir, "client.key", &k);
    let (c, k) = stranger.leaf(&["gateway.example"]);
    write(&dir, "stranger-client.pem", &c);
    write(&dir, "stranger-client.key", &k);
    let (c, k) = ca.leaf(&["localhost", "127.0.0.1"]);
    write(&dir, "front.pem", &c);
    write(&dir, "front.key", &k);

    let config = format!(
        r#"listen = "127.0.0.1:0"
[tls]
cert_file = "front.pem"
key_file = "front.key"

[[servers]]
name = "good"
url = "https://localhost:{p}/mcp"
ca_file = "ca.pem"

[[servers]]
name = "noca"
url = "https://localhost:{p}/mcp"

[[servers]]
name = "misnamed"
url = "https://localhost:{m}/mcp"
ca_file = "ca.pem"

[[servers]]
name = "mutual"
url = "https://127.0.0.1:{u}/mcp"
ca_file = "ca.pem"
client_cert_file = "client.pem"
client_key_file = "client.key"

[[servers]]
name = "nocert"
url = "https://127.0.0.1:{u}/mcp"
ca_file = "ca.pem"

[[servers]]
name = "badcert"
url = "https://127.0.0.1:{u}/mcp"
ca_file = "ca.pem"
client_cert_file = "stranger-client.pem"
client_key_file = "stranger-client.key"
"#,
        p = plain.0,
        m = misnamed.0,
        u = mutual.0,
    );
    let config_path = dir.join("gateway.toml");
    std::fs::write(&config_path, config).unwrap();
    let gw = tokio::task::spawn_blocking(move || start_gateway(&config_path, &untrusted))
        .await
        .unwrap();
    assert!(gw.base.starts_with("https://"), "{}", gw.base);

    // Trusted through ca_file, and with a client certificate: a whole exchange over TLS on both
    // sides, values tokenized toward the client and restored toward the server.
    for (server, seen) in [("good", &plain.1), ("mutual", &mutual.1)] {
        let path = format!("/servers/{server}/mcp");
        let (status, session, init) = post(&gw.base, &ca, &path, None, initialize()).await;
        assert_eq!(status, StatusCode::OK, "{server}: {init}");
        assert_eq!(init["result"]["serverInfo"]["name"], "tls-upstream", "{server}");
        let session = session.unwrap();
        let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "whoami", "arguments": {}}});
        let (status, _, first) = post(&gw.base, &ca, &path, Some(&session), call).await;
        assert_eq!(status, StatusCode::OK, "{server}: {first}");
        let text = first["result"]["content"][0]["text"].as_str().unwrap();
        assert!(
            text.contains("[EMAIL_1]") && !text.contains("ana.lima"),
            "{server}: {text}"
        );
        let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
            "params": {"name": "echo", "arguments": {"to": "[EMAIL_1]"}}});
        let (status, _, _) = post(&gw.base, &ca, &path, Some(&session), call).await;
        assert_eq!(status, StatusCode::OK, "{server}");
        let last = seen.lock().unwrap().last().cloned().unwrap();
        assert_eq!(
            last["params"]["arguments"]["to"], "ana.lima@example.org",
            "{server}"
        );
    }

    // Every TLS failure is a 502 JSON-RPC error naming the server and the cause, and nothing is
    // relayed.
    let before = (plain.1.lock().unwrap().len(), mutual.1.lock().unwrap().len());
    for (server, cause) in [
        ("noca", "not signed by a trusted CA"),
        ("misnamed", "not valid for the host name"),
        ("nocert", "requires a TLS client certificate"),
        ("badcert", "rejected the gateway's TLS client certificate"),
    ] {
        let path = format!("/servers/{server}/mcp");
        let (status, _, body) = post(&gw.base, &ca, &path, None, initialize()).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{server}: {body}");
        assert_eq!(body["id"], 1, "{server}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("upstream {server}")),
            "{server}: {message}"
        );
        assert!(message.contains(cause), "{server}: {message}");
    }
    assert_eq!(
        before,
        (plain.1.lock().unwrap().len(), mutual.1.lock().unwrap().len()),
        "a failed handshake relays nothing"
    );

    // The TLS front serves no plain HTTP.
    let addr = gw.base.strip_prefix("https://").unwrap().to_owned();
    let plain_answer = tokio::time::timeout(Duration::from_secs(10), async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = TcpStream::connect(addr).await.unwrap();
        let _ = s
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n")
            .await;
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf).await;
        buf
    })
    .await
    .unwrap();
    assert!(
        !String::from_utf8_lossy(&plain_answer).contains("ok"),
        "{plain_answer:?}"
    );
}
