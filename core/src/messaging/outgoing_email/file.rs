//! The zero-setup mailer: each message becomes an `.eml` file in a folder (open it in any
//! mail program), and its link is logged so a demo user can follow it from the console.

use std::path::PathBuf;

use super::{MailError, Mailer, OutgoingEmail, message};

pub struct FileMailer {
    dir: PathBuf,
    from: String,
}

impl FileMailer {
    pub fn new(dir: impl Into<PathBuf>, from: &str) -> Self {
        Self {
            dir: dir.into(),
            from: from.to_owned(),
        }
    }
}

/// The first link in a message body, for the log line.
fn first_link(body: &str) -> Option<&str> {
    body.split_whitespace()
        .find(|w| w.starts_with("http://") || w.starts_with("https://"))
}

#[async_trait::async_trait]
impl Mailer for FileMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<(), MailError> {
        let text = message(email, &self.from, crate::store::now())?.formatted();
        let path = self.dir.join(format!("{}.eml", email.id));
        let write = async {
            tokio::fs::create_dir_all(&self.dir).await?;
            tokio::fs::write(&path, text).await
        };
        write
            .await
            .map_err(|e| MailError::Temporary(format!("writing {}: {e}", path.display())))?;
        tracing::info!(
            to = %email.to,
            subject = %email.subject,
            link = first_link(&email.body).unwrap_or("-"),
            file = %path.display(),
            "email written to the outbox folder (no SMTP_URL set)"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_one_eml_file_per_message() {
        let dir = tempfile::tempdir().unwrap();
        let mailer = FileMailer::new(dir.path().join("outbox"), "lineup@example.com");
        let email = OutgoingEmail {
            id: uuid::Uuid::now_v7(),
            to: "ada@example.com".into(),
            subject: "You are invited".into(),
            body: "Join here:\nhttp://acme.lineup.localhost/invite/abc\n".into(),
        };
        mailer.send(&email).await.unwrap();
        let text =
            std::fs::read_to_string(dir.path().join(format!("outbox/{}.eml", email.id))).unwrap();
        assert!(text.contains("To: ada@example.com\r\n"));
        assert!(text.contains(&format!("Message-ID: <{}@example.com>\r\n", email.id)));
        assert!(text.contains("Content-Transfer-Encoding: 8bit\r\n"));
        assert!(text.contains("\r\n\r\nJoin here:\r\nhttp://acme.lineup.localhost/invite/abc"));
        // A line break in a header value cannot start a header of its own, and a long link
        // stays whole on its line.
        let link = format!("https://acme.lineup.example/invite/{}", "x".repeat(100));
        let injected = OutgoingEmail {
            subject: "Hi\r\nBcc: eve@example.com".into(),
            body: format!("Join, Zoë:\n{link}\n"),
            ..email.clone()
        };
        let text = message(&injected, "l@example.com", crate::store::now()).unwrap();
        let text = String::from_utf8(text.formatted()).unwrap();
        assert!(!text.contains("\r\nBcc:"), "{text}");
        assert!(
            text.ends_with(&format!("\r\n\r\nJoin, Zoë:\r\n{link}\r\n")),
            "{text}"
        );
        assert_eq!(
            first_link(&email.body),
            Some("http://acme.lineup.localhost/invite/abc")
        );
    }
}
