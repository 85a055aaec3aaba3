//! TLS material from the configuration: PEM files read and checked at load, turned into rustls
//! configurations (the `ring` provider) so that a bad file is a startup problem naming its path,
//! never a failure at the first request.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;

use super::Problems;

/// TLS toward one `https://` upstream: the trusted roots (the system's, or only the CAs in
/// `ca_file`), an optional client certificate, hostname verification always on.
#[derive(Clone)]
pub struct UpstreamTls {
    /// `ca_file`, resolved: when set, only the CAs in it are trusted for this server.
    pub ca_file: Option<PathBuf>,
    /// `client_cert_file`, resolved: the certificate chain presented to the server (mTLS).
    pub client_cert_file: Option<PathBuf>,
    /// The client configuration built from them.
    pub config: Arc<rustls::ClientConfig>,
}

impl fmt::Debug for UpstreamTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamTls")
            .field("ca_file", &self.ca_file)
            .field("client_cert_file", &self.client_cert_file)
            .finish_non_exhaustive()
    }
}

/// `[tls]`: TLS on the front (HTTPS toward clients).
#[derive(Clone)]
pub struct FrontTls {
    /// `cert_file`, resolved: the certificate chain served to clients.
    pub cert_file: PathBuf,
    /// The server configuration (HTTP/1.1 by ALPN).
    pub config: Arc<rustls::ServerConfig>,
}

impl fmt::Debug for FrontTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FrontTls")
            .field("cert_file", &self.cert_file)
            .finish_non_exhaustive()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates in the PEM file at `path`; a problem (naming `field` and the path) when it
/// cannot be read or holds none.
fn certs(label: &str, field: &str, path: &Path, p: &mut Problems) -> Option<Vec<CertificateDer<'static>>> {
    let read = CertificateDer::pem_file_iter(path).and_then(|it| it.collect::<Result<Vec<_>, _>>());
    match read {
        Ok(c) if !c.is_empty() => Some(c),
        Ok(_) => {
            p.push(format!(
                "{label}{field}: {}: no PEM certificate (BEGIN CERTIFICATE) in it",
                path.display()
            ));
            None
        }
        Err(e) => {
            p.push(format!("{label}{field}: {}: {}", path.display(), pem_error(&e)));
            None
        }
    }
}

/// The private key in the PEM file at `path` (PKCS#8, PKCS#1 or SEC1).
fn key(label: &str, field: &str, path: &Path, p: &mut Problems) -> Option<PrivateKeyDer<'static>> {
    match PrivateKeyDer::from_pem_file(path) {
        Ok(k) => Some(k),
        Err(e) => {
            p.push(format!("{label}{field}: {}: {}", path.display(), pem_error(&e)));
            None
        }
    }
}

/// A short reason, never the file's content.
fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::Io(io) => format!("cannot read: {io}"),
        E::NoItemsFound => "no PEM item of the expected kind in it".into(),
        _ => "not a valid PEM file".into(),
    }
}

/// The system's root certificates, loaded once (`SSL_CERT_FILE` and `SSL_CERT_DIR` are honoured).
fn system_roots() -> Result<Arc<RootCertStore>, String> {
    static ROOTS: OnceLock<Result<Arc<RootCertStore>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                Err(
                    "no system root certificates could be loaded (install the system's CA \
                     certificates, or set ca_file)"
                        .into(),
                )
            } else {
                Ok(Arc::new(roots))
            }
        })
        .clone()
}

/// The TLS settings of an `https://` server `label` from its raw fields (paths relative to
/// `base_dir`); every problem is pushed, and `None` returned when there was one.
pub(super) fn upstream(
    label: &str,
    ca_file: Option<&str>,
    client_cert_file: Option<&str>,
    client_key_file: Option<&str>,
    base_dir: &Path,
    p: &mut Problems,
) -> Option<UpstreamTls> {
    let before = p.0.len();
    let label = format!("{label}: ");
    let ca_path = ca_file.map(|f| base_dir.join(f));
    let roots = match &ca_path {
        Some(path) => certs(&label, "ca_file", path, p).and_then(|cas| {
            let mut roots = RootCertStore::empty();
            for ca in cas {
                if roots.add(ca).is_err() {
                    p.push(format!(
                        "{label}ca_file: {}: holds a certificate that is not a valid CA certificate",
                        path.display()
                    ));
                    return None;
                }
            }
            Some(Arc::new(roots))
        }),
        None => match system_roots() {
            Ok(r) => Some(r),
            Err(e) => {
                p.push(format!("{label}{e}"));
                None
            }
        },
    };
    let cert_path = client_cert_file.map(|f| base_dir.join(f));
    let client = match (&cert_path, client_key_file) {
        (None, None) => None,
        (Some(c), Some(k)) => {
            let k = base_dir.join(k);
            let chain = certs(&label, "client_cert_file", c, p);
            let key = key(&label, "client_key_file", &k, p);
            chain.zip(key)
        }
        _ => {
            p.push(format!(
                "{label}client_cert_file and client_key_file go together: set both or neither"
            ));
            None
        }
    };
    if p.0.len() > before {
        return None;
    }
    let builder =
        match rustls::ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions() {
            Ok(b) => b.with_root_certificates(roots?),
            Err(e) => {
                p.push(format!("{label}TLS: {e}"));
                return None;
            }
        };
    let mut config = match client {
        Some((chain, key)) => match builder.with_client_auth_cert(chain, key) {
            Ok(c) => c,
            Err(e) => {
                p.push(format!(
                    "{label}client_key_file: {}: unusable with client_cert_file ({})",
                    cert_path.as_deref().unwrap_or(Path::new("")).display(),
                    e
                ));
                return None;
            }
        },
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Some(UpstreamTls {
        ca_file: ca_path,
        client_cert_file: cert_path,
        config: Arc::new(config),
    })
}

/// `[tls]`: the front's certificate chain and key (paths relative to `base_dir`).
pub(super) fn front(
    cert_file: Option<&str>,
    key_file: Option<&str>,
    base_dir: &Path,
    p: &mut Problems,
) -> Option<FrontTls> {
    let (Some(cert_file), Some(key_file)) = (cert_file, key_file) else {
        p.push("tls: set both cert_file and key_file (or remove [tls] to serve plain HTTP)");
        return None;
    };
    let cert_path = base_dir.join(cert_file);
    let key_path = base_dir.join(key_file);
    let chain = certs("tls.", "cert_file", &cert_path, p);
    let key = key("tls.", "key_file", &key_path, p);
    let (chain, key) = chain.zip(key)?;
    let built = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key));
    match built {
        Ok(mut config) => {
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Some(FrontTls {
                cert_file: cert_path,
                config: Arc::new(config),
            })
        }
        Err(e) => {
            p.push(format!(
                "tls.key_file: {}: unusable with tls.cert_file ({e})",
                key_path.display()
            ));
            None
        }
    }
}
