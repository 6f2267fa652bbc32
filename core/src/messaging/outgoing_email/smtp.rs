//! A small SMTP client (RFC 5321) for one message per connection: EHLO, STARTTLS when the
//! server offers it (`smtps://` for TLS from the start), AUTH PLAIN, MAIL FROM, RCPT TO, and
//! DATA with dot-stuffing. Nothing (neither a password nor a message) is sent over a plain
//! connection, except to a relay on this machine.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, pki_types::ServerName};

use super::{MailError, Mailer, OutgoingEmail, to_rfc5322};

/// One exchange with the server (connect, a command and its reply) may take this long.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Where and how to send: parsed from `SMTP_URL` (`smtp://user:pass@host:587`,
/// `smtps://…:465`) and `MAIL_FROM`.
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    /// TLS from the first byte (`smtps://`), rather than STARTTLS.
    pub implicit_tls: bool,
    pub credentials: Option<(String, String)>,
    pub from: String,
    /// Talking without TLS (AUTH or mail): only to a relay on this machine (set from the
    /// host name), where nobody on the network can read or tamper with it.
    pub plaintext_allowed: bool,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("implicit_tls", &self.implicit_tls)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .field("from", &self.from)
            .field("plaintext_allowed", &self.plaintext_allowed)
            .finish()
    }
}

impl SmtpSettings {
    pub fn parse(smtp_url: &str, from: &str) -> Result<Self, String> {
        let url = url::Url::parse(smtp_url).map_err(|e| format!("is not a URL: {e}"))?;
        let implicit_tls = match url.scheme() {
            "smtp" => false,
            "smtps" => true,
            other => return Err(format!("scheme {other:?} is not smtp or smtps")),
        };
        let host = url.host_str().ok_or("has no host")?.to_owned();
        let port = url.port().unwrap_or(if implicit_tls { 465 } else { 587 });
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let credentials = (!url.username().is_empty()).then(|| {
            (
                decode(url.username()),
                decode(url.password().unwrap_or_default()),
            )
        });
        if !from.contains('@') || from.contains(['<', '>', '\r', '\n']) {
            return Err(format!(
                "MAIL_FROM {from:?} is not an address like lineup@example.com"
            ));
        }
        let loopback = host.trim_end_matches('.').eq_ignore_ascii_case("localhost")
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        Ok(Self {
            host,
            port,
            implicit_tls,
            credentials,
            from: from.to_owned(),
            plaintext_allowed: loopback,
        })
    }
}

pub struct SmtpMailer {
    settings: SmtpSettings,
    tls: TlsConnector,
}

impl SmtpMailer {
    pub fn new(settings: SmtpSettings) -> Self {
        let roots =
            rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        Self {
            settings,
            tls: TlsConnector::from(Arc::new(config)),
        }
    }

    async fn deliver(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        let s = &self.settings;
        let tcp = step(TcpStream::connect((s.host.as_str(), s.port))).await?;
        let mut conn = if s.implicit_tls {
            Conn::new(Box::new(self.start_tls(tcp).await?), true)
        } else {
            Conn::new(Box::new(tcp), false)
        };
        conn.expect(220).await?;
        let mut extensions = conn.ehlo().await?;
        if !conn.tls && has(&extensions, "STARTTLS") {
            conn.command("STARTTLS", 220).await?;
            let plain = conn.into_stream()?;
            // A plain TcpStream was boxed; upgrading needs it back by value.
            let tcp = plain.into_tcp().ok_or_else(|| {
                MailError::Temporary("cannot upgrade this connection to TLS".into())
            })?;
            conn = Conn::new(Box::new(self.start_tls(tcp).await?), true);
            extensions = conn.ehlo().await?;
        }
        // A relay that does not offer STARTTLS (or an attacker who stripped it from the EHLO
        // answer) would otherwise get the password and the mail, links and all, in clear text.
        if !conn.tls && !s.plaintext_allowed {
            let what = if s.credentials.is_some() {
                "the SMTP password and the mail"
            } else {
                "mail"
            };
            return Err(MailError::Permanent(format!(
                "{} offers no STARTTLS; refusing to send {what} in clear text to a relay on \
                 another machine (use smtps:// if it speaks TLS on connect)",
                s.host
            )));
        }
        if let Some((user, password)) = &s.credentials {
            if !has(&extensions, "AUTH") {
                return Err(MailError::Permanent(format!(
                    "{} does not offer AUTH, but SMTP_URL has credentials",
                    s.host
                )));
            }
            let token =
                base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{password}"));
            conn.command(&format!("AUTH PLAIN {token}"), 235).await?;
        }
        conn.command(&format!("MAIL FROM:<{}>", s.from), 250)
            .await?;
        conn.command(&format!("RCPT TO:<{}>", clean_address(&email.to)?), 250)
            .await?;
        conn.command("DATA", 354).await?;
        let message = to_rfc5322(email, &s.from, crate::store::now());
        conn.send_raw(&dot_stuff(&message)).await?;
        conn.expect(250).await?;
        // The message is accepted; a failed QUIT changes nothing.
        let _ = conn.command("QUIT", 221).await;
        Ok(())
    }

    async fn start_tls(
        &self,
        tcp: TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<TcpStream>, MailError> {
        let name = ServerName::try_from(self.settings.host.clone())
            .map_err(|e| MailError::Permanent(format!("SMTP host name: {e}")))?;
        step(self.tls.connect(name, tcp)).await
    }
}

#[async_trait::async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        self.deliver(email).await
    }
}

fn has(extensions: &[String], name: &str) -> bool {
    extensions.iter().any(|e| {
        e.split_whitespace()
            .next()
            .is_some_and(|k| k.eq_ignore_ascii_case(name))
    })
}

fn clean_address(address: &str) -> Result<&str, MailError> {
    if address.contains(['<', '>', '\r', '\n', ' ']) {
        return Err(MailError::Permanent(format!(
            "{address:?} is not a plain address"
        )));
    }
    Ok(address)
}

/// DATA ends at a line holding a lone `.`, so every line starting with `.` gets another one
/// (RFC 5321 §4.5.2); then the terminator.
pub fn dot_stuff(message: &str) -> String {
    let mut out = String::with_capacity(message.len() + 8);
    for line in message.split_inclusive("\r\n") {
        if line.starts_with('.') {
            out.push('.');
        }
        out.push_str(line);
    }
    if !out.ends_with("\r\n") {
        out.push_str("\r\n");
    }
    out.push_str(".\r\n");
    out
}

async fn step<T>(future: impl Future<Output = std::io::Result<T>>) -> Result<T, MailError> {
    match tokio::time::timeout(STEP_TIMEOUT, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(MailError::Temporary(format!("SMTP connection: {e}"))),
        Err(_) => Err(MailError::Temporary(
            "SMTP server did not answer in time".into(),
        )),
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {
    fn into_tcp(self: Box<Self>) -> Option<TcpStream> {
        None
    }
}
impl Stream for TcpStream {
    fn into_tcp(self: Box<Self>) -> Option<TcpStream> {
        Some(*self)
    }
}
impl Stream for tokio_rustls::client::TlsStream<TcpStream> {}

struct Conn {
    stream: BufReader<Box<dyn Stream>>,
    tls: bool,
}

impl Conn {
    fn new(stream: Box<dyn Stream>, tls: bool) -> Self {
        Self {
            stream: BufReader::new(stream),
            tls,
        }
    }

    fn into_stream(self) -> Result<Box<dyn Stream>, MailError> {
        if !self.stream.buffer().is_empty() {
            // Bytes sent before the TLS handshake would be an injection attempt.
            return Err(MailError::Temporary(
                "SMTP server sent data ahead of the TLS handshake".into(),
            ));
        }
        Ok(self.stream.into_inner())
    }

    async fn ehlo(&mut self) -> Result<Vec<String>, MailError> {
        self.send_raw("EHLO lineup\r\n").await?;
        let lines = self.expect(250).await?;
        Ok(lines.into_iter().skip(1).collect())
    }

    async fn command(&mut self, line: &str, expected: u16) -> Result<Vec<String>, MailError> {
        self.send_raw(&format!("{line}\r\n")).await?;
        self.expect(expected).await.map_err(|e| match e {
            // Never echo credentials into logs.
            MailError::Permanent(m) if line.starts_with("AUTH") => {
                MailError::Permanent(format!("authentication refused: {m}"))
            }
            other => other,
        })
    }

    async fn send_raw(&mut self, text: &str) -> Result<(), MailError> {
        let stream = self.stream.get_mut();
        step(async {
            stream.write_all(text.as_bytes()).await?;
            stream.flush().await
        })
        .await
    }

    /// Read one (possibly multi-line) reply; anything but `expected` is an error, temporary
    /// for 4xx and permanent for 5xx.
    async fn expect(&mut self, expected: u16) -> Result<Vec<String>, MailError> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            let read = step(self.stream.read_line(&mut line)).await?;
            if read == 0 {
                return Err(MailError::Temporary(
                    "SMTP server closed the connection".into(),
                ));
            }
            let line = line.trim_end().to_owned();
            let code: u16 = line.get(..3).and_then(|c| c.parse().ok()).ok_or_else(|| {
                MailError::Temporary(format!("SMTP server sent a malformed reply: {line:?}"))
            })?;
            let last = line.as_bytes().get(3) != Some(&b'-');
            lines.push(line.get(4..).unwrap_or_default().to_owned());
            if last {
                return match code {
                    c if c == expected || (expected == 250 && c == 251) => Ok(lines),
                    400..=499 => Err(MailError::Temporary(format!("SMTP {line}"))),
                    _ => Err(MailError::Permanent(format!("SMTP {line}"))),
                };
            }
            if lines.len() > 100 {
                return Err(MailError::Temporary("SMTP reply too long".into()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_starting_with_a_dot_are_stuffed() {
        assert_eq!(dot_stuff("a\r\n.b\r\n..\r\n"), "a\r\n..b\r\n...\r\n.\r\n");
        assert_eq!(dot_stuff("no newline"), "no newline\r\n.\r\n");
    }

    #[test]
    fn settings_come_from_the_url() {
        let s =
            SmtpSettings::parse("smtp://ann%40x.com:p%3Ass@mail.example.com", "l@x.com").unwrap();
        assert_eq!(
            (s.host.as_str(), s.port, s.implicit_tls),
            ("mail.example.com", 587, false)
        );
        assert_eq!(s.credentials, Some(("ann@x.com".into(), "p:ss".into())));
        assert!(
            !format!("{s:?}").contains("p:ss"),
            "the password stays out of logs"
        );
        assert_eq!(
            SmtpSettings::parse("smtps://h", "l@x.com").unwrap().port,
            465
        );
        assert!(SmtpSettings::parse("http://h", "l@x.com").is_err());
        assert!(SmtpSettings::parse("smtp://h", "nobody").is_err());
    }
}
