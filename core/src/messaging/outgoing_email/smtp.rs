//! Delivery over SMTP with lettre, one message per connection: TLS from the start
//! (`smtps://`) or STARTTLS, then AUTH and the message. Nothing (neither a password nor a
//! message) is sent over a plain connection, except to a relay on this machine.

use std::time::Duration;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use super::{MailError, Mailer, OutgoingEmail, check_sender, message};

/// One exchange with the server (connect, a command and its reply) may take this long.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether a `smtp://` connection is upgraded with STARTTLS: the URL's `tls` parameter, in
/// lettre's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Starttls {
    /// `tls=required`, the default for a relay on another machine.
    Required,
    /// `tls=opportunistic`, the default for a relay on this machine: when the server offers it.
    WhenOffered,
    /// `tls=none`: never, for a relay on this machine whose certificate we cannot check.
    Never,
}

/// Where and how to send: parsed from `SMTP_URL` (`smtp://user:pass@host:587`,
/// `smtps://…:465`, `smtp://localhost:25?tls=none`) and `MAIL_FROM`.
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    /// TLS from the first byte (`smtps://`), rather than STARTTLS.
    pub implicit_tls: bool,
    pub starttls: Starttls,
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
            .field("starttls", &self.starttls)
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
        check_sender(from).map_err(|reason| format!("MAIL_FROM {reason}"))?;
        let loopback = host.trim_end_matches('.').eq_ignore_ascii_case("localhost")
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        let mut starttls = if loopback {
            Starttls::WhenOffered
        } else {
            Starttls::Required
        };
        for (key, value) in url.query_pairs() {
            starttls = match (key.as_ref(), value.as_ref()) {
                ("tls", _) if implicit_tls => {
                    return Err(
                        "has tls=…, which only smtp:// takes (smtps:// is TLS from the \
                                start)"
                            .into(),
                    );
                }
                ("tls", "required") => Starttls::Required,
                ("tls", "opportunistic") => Starttls::WhenOffered,
                ("tls", "none") => Starttls::Never,
                ("tls", other) => {
                    return Err(format!(
                        "tls={other:?} is not one of required, opportunistic, none"
                    ));
                }
                (other, _) => return Err(format!("has an unknown parameter {other:?}")),
            };
        }
        if !loopback && starttls != Starttls::Required {
            return Err(format!(
                "would let mail{} go in clear text to {host}, which is not on this machine: \
                 use smtps:// or smtp:// without tls=… (STARTTLS required)",
                if credentials.is_some() {
                    " and the SMTP password"
                } else {
                    ""
                }
            ));
        }
        Ok(Self {
            host,
            port,
            implicit_tls,
            starttls,
            credentials,
            from: from.to_owned(),
            plaintext_allowed: loopback,
        })
    }
}

pub struct SmtpMailer {
    settings: SmtpSettings,
}

impl SmtpMailer {
    pub fn new(settings: SmtpSettings) -> Self {
        Self { settings }
    }

    async fn deliver(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        let s = &self.settings;
        let message = message(email, &s.from, crate::store::now())?;
        // Certificates are checked against the Mozilla roots (webpki-roots) with ring.
        let tls = TlsParameters::new(s.host.clone())
            .map_err(|e| MailError::Permanent(format!("SMTP host name: {e}")))?;
        let hello = ClientId::Domain("lineup".into());
        let mut conn = step(AsyncSmtpConnection::connect_tokio1(
            (s.host.as_str(), s.port),
            Some(STEP_TIMEOUT),
            &hello,
            s.implicit_tls.then(|| tls.clone()),
            None,
        ))
        .await?;
        if conn.can_starttls() && s.starttls != Starttls::Never {
            step(conn.starttls(tls, &hello)).await?;
        }
        // A relay that does not offer STARTTLS (or an attacker who stripped it from the EHLO
        // answer) would otherwise get the password and the mail, links and all, in clear text.
        let must_encrypt = s.starttls == Starttls::Required || !s.plaintext_allowed;
        if !conn.is_encrypted() && must_encrypt {
            let what = if s.credentials.is_some() {
                "the SMTP password and the mail"
            } else {
                "mail"
            };
            let why = if s.plaintext_allowed {
                "as SMTP_URL's tls=required asks"
            } else {
                "to a relay on another machine"
            };
            return Err(MailError::Permanent(format!(
                "{} offers no STARTTLS; refusing to send {what} in clear text {why} (use \
                 smtps:// if it speaks TLS on connect)",
                s.host
            )));
        }
        if let Some((user, password)) = &s.credentials {
            let credentials = Credentials::new(user.clone(), password.clone());
            let mechanisms = [Mechanism::Plain, Mechanism::Login];
            if conn.server_info().get_auth_mechanism(&mechanisms).is_none() {
                return Err(MailError::Permanent(format!(
                    "{} offers no AUTH PLAIN or LOGIN, but SMTP_URL has credentials",
                    s.host
                )));
            }
            // lettre's errors quote the server's reply, never the credentials.
            step(conn.auth(&mechanisms, &credentials))
                .await
                .map_err(|e| match e {
                    MailError::Permanent(m) => {
                        MailError::Permanent(format!("authentication refused: {m}"))
                    }
                    temporary => temporary,
                })?;
        }
        step(conn.send(message.envelope(), &message.formatted())).await?;
        // The message is accepted; a failed QUIT changes nothing.
        let _ = step(conn.quit()).await;
        Ok(())
    }
}

#[async_trait::async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        self.deliver(email).await
    }
}

/// One step under [`STEP_TIMEOUT`]; a 5xx reply or a message the server cannot take is
/// permanent, anything else (4xx, network, TLS, timeout) worth retrying.
async fn step<T>(
    future: impl Future<Output = Result<T, lettre::transport::smtp::Error>>,
) -> Result<T, MailError> {
    match tokio::time::timeout(STEP_TIMEOUT, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) if e.is_permanent() || e.is_client() => {
            Err(MailError::Permanent(format!("SMTP {e}")))
        }
        Ok(Err(e)) if e.is_transient() => Err(MailError::Temporary(format!("SMTP {e}"))),
        Ok(Err(e)) => Err(MailError::Temporary(format!("SMTP connection: {e}"))),
        Err(_) => Err(MailError::Temporary(
            "SMTP server did not answer in time".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn starttls_is_required_unless_the_relay_is_on_this_machine() {
        let starttls = |url: &str| SmtpSettings::parse(url, "l@x.com").map(|s| s.starttls);
        assert_eq!(starttls("smtp://mail.example.com"), Ok(Starttls::Required));
        assert_eq!(
            starttls("smtp://mail.example.com?tls=required"),
            Ok(Starttls::Required)
        );
        assert_eq!(starttls("smtp://localhost:25"), Ok(Starttls::WhenOffered));
        assert_eq!(
            starttls("smtp://127.0.0.1:25?tls=none"),
            Ok(Starttls::Never)
        );
        assert_eq!(
            starttls("smtp://[::1]:25?tls=required"),
            Ok(Starttls::Required)
        );
        for refused in [
            "smtp://u:p@mail.example.com?tls=none",
            "smtp://10.0.0.5:25?tls=opportunistic",
            "smtp://localhost.example.com?tls=none",
        ] {
            let reason = starttls(refused).unwrap_err();
            assert!(reason.contains("in clear text"), "{refused}: {reason}");
            assert!(
                reason.contains("not on this machine"),
                "{refused}: {reason}"
            );
        }
        assert!(
            starttls("smtp://u:p@mail.example.com?tls=none")
                .unwrap_err()
                .contains("SMTP password")
        );
        assert!(starttls("smtp://localhost?tls=maybe").is_err());
        assert!(starttls("smtp://localhost?tsl=none").is_err());
        assert!(starttls("smtps://localhost?tls=none").is_err());
    }
}
