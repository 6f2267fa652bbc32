//! A fake SMTP server on a loopback port that records every message it accepts. It speaks
//! enough of RFC 5321 for [`lineup_core::messaging::outgoing_email::SmtpMailer`]: EHLO (offering AUTH PLAIN, no
//! STARTTLS), AUTH PLAIN against fixed credentials, MAIL FROM, RCPT TO, DATA with dot-stuffing
//! undone, RSET, QUIT. [`FakeSmtp::fail_next`] makes the next deliveries fail with a 451.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use lineup_core::messaging::outgoing_email::{SmtpMailer, SmtpSettings};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

pub const SMTP_USER: &str = "lineup";
pub const SMTP_PASSWORD: &str = "smtp secret";
pub const MAIL_FROM: &str = "lineup@lineup.test";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent (headers and body), dot-stuffing undone.
    pub data: String,
}

impl ReceivedMail {
    pub fn header(&self, name: &str) -> Option<&str> {
        let prefix = format!("{name}: ");
        self.data
            .split("\r\n")
            .take_while(|l| !l.is_empty())
            .find_map(|l| l.strip_prefix(&prefix))
    }

    /// The first link in the body.
    pub fn link(&self) -> Option<String> {
        let (_, body) = self.data.split_once("\r\n\r\n")?;
        body.split_whitespace()
            .find(|w| w.starts_with("http://") || w.starts_with("https://"))
            .map(str::to_owned)
    }
}

#[derive(Default)]
struct State {
    received: Mutex<Vec<ReceivedMail>>,
    fail_next: AtomicUsize,
}

pub struct FakeSmtp {
    pub port: u16,
    state: Arc<State>,
}

impl FakeSmtp {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(State::default());
        let shared = state.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(session(socket, shared.clone()));
            }
        });
        Self { port, state }
    }

    /// `SMTP_URL` for this server, with its credentials.
    pub fn url(&self) -> String {
        format!("smtp://{SMTP_USER}:smtp%20secret@127.0.0.1:{}", self.port)
    }

    pub fn mailer(&self) -> SmtpMailer {
        SmtpMailer::new(SmtpSettings::parse(&self.url(), MAIL_FROM).unwrap())
    }

    pub fn received(&self) -> Vec<ReceivedMail> {
        self.state.received.lock().unwrap().clone()
    }

    /// Messages to `to`, oldest first.
    pub fn to(&self, to: &str) -> Vec<ReceivedMail> {
        self.received()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t == to))
            .collect()
    }

    /// Wait (up to 10 s) for a message to `to` and return the newest.
    pub async fn wait_for(&self, to: &str) -> ReceivedMail {
        for _ in 0..500 {
            if let Some(mail) = self.to(to).pop() {
                return mail;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("no email to {to} arrived; got {:?}", self.received());
    }

    /// The next `n` messages are refused at DATA with a temporary error.
    pub fn fail_next(&self, n: usize) {
        self.state.fail_next.store(n, Ordering::SeqCst);
    }
}

async fn session(socket: tokio::net::TcpStream, state: Arc<State>) {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read);
    let mut reply = async |text: &str| write.write_all(format!("{text}\r\n").as_bytes()).await;
    if reply("220 fake-smtp ESMTP ready").await.is_err() {
        return;
    }
    let (mut from, mut to, mut authed) = (String::new(), Vec::new(), false);
    loop {
        let mut line = String::new();
        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        let upper = line.to_ascii_uppercase();
        let answer = if upper.starts_with("EHLO") {
            "250-fake-smtp\r\n250-8BITMIME\r\n250 AUTH PLAIN".to_owned()
        } else if let Some(token) = upper.strip_prefix("AUTH PLAIN ").map(|_| &line[11..]) {
            let expected = format!("\0{SMTP_USER}\0{SMTP_PASSWORD}");
            let given = base64::engine::general_purpose::STANDARD
                .decode(token)
                .unwrap_or_default();
            authed = given == expected.as_bytes();
            if authed {
                "235 2.7.0 accepted"
            } else {
                "535 5.7.8 bad credentials"
            }
            .to_owned()
        } else if upper.starts_with("MAIL FROM:") {
            from = address(line);
            if authed {
                "250 ok"
            } else {
                "530 5.7.0 authentication required"
            }
            .to_owned()
        } else if upper.starts_with("RCPT TO:") {
            to.push(address(line));
            "250 ok".to_owned()
        } else if upper == "DATA" {
            if reply("354 end with <CRLF>.<CRLF>").await.is_err() {
                return;
            }
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if lines.read_line(&mut l).await.unwrap_or(0) == 0 {
                    return;
                }
                if l == ".\r\n" {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
            }
            let failing = state
                .fail_next
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            if failing {
                "451 4.3.0 try again later".to_owned()
            } else {
                state.received.lock().unwrap().push(ReceivedMail {
                    from: std::mem::take(&mut from),
                    to: std::mem::take(&mut to),
                    data,
                });
                "250 2.0.0 queued".to_owned()
            }
        } else if upper == "RSET" {
            (from, to) = (String::new(), Vec::new());
            "250 ok".to_owned()
        } else if upper == "QUIT" {
            let _ = reply("221 bye").await;
            return;
        } else {
            "502 5.5.2 command not recognised".to_owned()
        };
        if reply(&answer).await.is_err() {
            return;
        }
    }
}

fn address(line: &str) -> String {
    line.split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(a, _)| a.to_owned())
        .unwrap_or_default()
}
