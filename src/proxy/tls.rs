//! TLS on the wire: a stream that is plain TCP or TLS over TCP (for the front and for upstream
//! connections), the front's handshake, and how a TLS failure is told to a client.
//!
//! The rustls configurations themselves are built (and their PEM files checked) when the
//! configuration is loaded: see [`UpstreamTls`](crate::config::UpstreamTls) and
//! [`FrontTls`](crate::config::FrontTls).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Plain TCP, or TLS over TCP (`S` is tokio-rustls' client or server stream, boxed: it is large).
#[derive(Debug)]
pub enum MaybeTls<S> {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP.
    Tls(Box<S>),
}

impl<S: AsyncRead + Unpin> AsyncRead for MaybeTls<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for MaybeTls<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            MaybeTls::Tls(s) => Pin::new(&mut **s).poll_write_vectored(cx, bufs),
        }
    }
    fn is_write_vectored(&self) -> bool {
        match self {
            MaybeTls::Plain(s) => s.is_write_vectored(),
            MaybeTls::Tls(s) => s.is_write_vectored(),
        }
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }
}

/// A client connection to the front, TLS or not.
pub type FrontStream = MaybeTls<tokio_rustls::server::TlsStream<TcpStream>>;

/// How long a client may take to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// The front's TLS acceptor for `config` (from [`FrontTls`](crate::config::FrontTls)).
pub fn acceptor(config: Arc<rustls::ServerConfig>) -> tokio_rustls::TlsAcceptor {
    tokio_rustls::TlsAcceptor::from(config)
}

/// Completes the TLS handshake on an accepted connection when `tls` is set (within 30 s);
/// otherwise passes the connection through.
pub async fn accept(tls: Option<&tokio_rustls::TlsAcceptor>, stream: TcpStream) -> io::Result<FrontStream> {
    let Some(acceptor) = tls else {
        return Ok(MaybeTls::Plain(stream));
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(s)) => Ok(MaybeTls::Tls(Box::new(s))),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "TLS handshake timed out")),
    }
}

/// What went wrong in a TLS exchange with an upstream, in words fit for a client: a fixed
/// phrase per cause, never text from the peer's certificate. `None` when `e` (or any error in
/// its source chain) is not a TLS error.
pub fn failure(e: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    use rustls::{AlertDescription as A, CertificateError as C, Error as R};
    let tls = find_rustls(e)?;
    Some(match tls {
        R::InvalidCertificate(c) => match c {
            C::UnknownIssuer => {
                "its TLS certificate is not signed by a trusted CA (set ca_file for a private CA)"
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "its TLS certificate is not valid for the host name in its url"
            }
            C::Expired | C::ExpiredContext { .. } => "its TLS certificate has expired",
            C::NotValidYet | C::NotValidYetContext { .. } => "its TLS certificate is not valid yet",
            C::Revoked => "its TLS certificate is revoked",
            _ => "its TLS certificate was rejected",
        },
        R::AlertReceived(A::CertificateRequired) => {
            "it requires a TLS client certificate (set client_cert_file and client_key_file)"
        }
        R::AlertReceived(
            A::BadCertificate | A::UnknownCA | A::CertificateUnknown | A::AccessDenied | A::DecryptError,
        ) => "it rejected the gateway's TLS client certificate",
        R::AlertReceived(_) => "it ended the TLS handshake with an alert",
        R::NoApplicationProtocol => "it does not speak HTTP/1.1 over TLS",
        _ => "the TLS handshake with it failed",
    })
}

/// The rustls error in `e`'s source chain, looking inside `io::Error`s (whose `source()` skips
/// the error they wrap).
fn find_rustls<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur: Option<&'a (dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(inner) = err.downcast_ref::<io::Error>().and_then(|io| io.get_ref()) {
            if let Some(r) = find_rustls(inner) {
                return Some(r);
            }
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_found_inside_io_errors_and_say_no_names() {
        let e = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        );
        assert!(failure(&e).is_some_and(|m| m.contains("ca_file")));
        let e = io::Error::other(rustls::Error::AlertReceived(
            rustls::AlertDescription::CertificateRequired,
        ));
        assert!(failure(&e).is_some_and(|m| m.contains("client certificate")));
        assert_eq!(failure(&io::Error::other("connection refused")), None);
    }
}
