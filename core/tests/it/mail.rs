//! The SMTP client against a fake server: the message arrives whole (dot-stuffing undone),
//! refusals are told apart (retry later or give up), credentials are checked, and nothing is
//! sent in clear text to a relay elsewhere.

use lineup_core::messaging::outgoing_email::{
    MailError, Mailer, OutgoingEmail, SmtpMailer, SmtpSettings,
};
use lineup_testkit::fake_smtp::{FakeSmtp, MAIL_FROM};

fn email(body: &str) -> OutgoingEmail {
    OutgoingEmail {
        id: uuid::Uuid::now_v7(),
        to: "ada@example.com".into(),
        subject: "Join acme on Lineup".into(),
        body: body.into(),
    }
}

#[tokio::test]
async fn a_message_arrives_whole_with_its_headers() {
    let smtp = FakeSmtp::start().await;
    let body = "Hello\n.a line starting with a dot\n.\nlast line";
    smtp.mailer().send(&email(body)).await.unwrap();
    let got = smtp.wait_for("ada@example.com").await;
    assert_eq!(got.from, MAIL_FROM);
    assert_eq!(got.header("Subject"), Some("Join acme on Lineup"));
    assert!(got.header("Message-ID").unwrap().contains('@'));
    let (_, received_body) = got.data.split_once("\r\n\r\n").unwrap();
    assert_eq!(received_body, body.replace('\n', "\r\n") + "\r\n");
}

#[tokio::test]
async fn a_temporary_refusal_is_retryable_and_bad_credentials_are_not() {
    let smtp = FakeSmtp::start().await;
    smtp.fail_next(1);
    let refused = smtp.mailer().send(&email("x")).await;
    assert!(
        matches!(refused, Err(MailError::Temporary(ref m)) if m.contains("451")),
        "{refused:?}"
    );
    let wrong = SmtpSettings::parse(
        &format!("smtp://lineup:wrong@127.0.0.1:{}", smtp.port),
        MAIL_FROM,
    )
    .unwrap();
    let refused = SmtpMailer::new(wrong).send(&email("x")).await;
    match refused {
        Err(MailError::Permanent(m)) => {
            assert!(m.contains("authentication refused"), "{m}");
            assert!(!m.contains("wrong"), "the password stays out of errors");
        }
        other => panic!("{other:?}"),
    }
    assert!(smtp.received().is_empty());
    // Nobody listening: worth retrying later.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let nobody = SmtpSettings::parse(&format!("smtp://127.0.0.1:{port}"), MAIL_FROM).unwrap();
    let refused = SmtpMailer::new(nobody).send(&email("x")).await;
    assert!(
        matches!(refused, Err(MailError::Temporary(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_password_is_not_sent_in_clear_to_a_remote_server() {
    let smtp = FakeSmtp::start().await;
    let mut settings = SmtpSettings::parse(&smtp.url(), MAIL_FROM).unwrap();
    assert!(settings.plaintext_allowed, "the fake is on this machine");
    // As for any relay elsewhere that offers no STARTTLS:
    settings.plaintext_allowed = false;
    let refused = SmtpMailer::new(settings).send(&email("x")).await;
    match refused {
        Err(MailError::Permanent(m)) => {
            assert!(m.contains("refusing to send the SMTP password"), "{m}")
        }
        other => panic!("{other:?}"),
    }
    assert!(
        !SmtpSettings::parse("smtp://u:p@mail.example.com", MAIL_FROM)
            .unwrap()
            .plaintext_allowed
    );
    assert!(smtp.received().is_empty());
}

#[tokio::test]
async fn mail_is_not_sent_in_clear_to_a_remote_relay_without_starttls_even_without_a_password() {
    let smtp = FakeSmtp::start().await;
    let mut settings =
        SmtpSettings::parse(&format!("smtp://127.0.0.1:{}", smtp.port), MAIL_FROM).unwrap();
    assert!(settings.credentials.is_none());
    assert!(settings.plaintext_allowed, "the fake is on this machine");
    // As for any relay elsewhere that offers no STARTTLS (or had it stripped on the way):
    settings.plaintext_allowed = false;
    let refused = SmtpMailer::new(settings).send(&email("x")).await;
    match refused {
        Err(MailError::Permanent(m)) => {
            assert!(m.contains("offers no STARTTLS"), "{m}");
            assert!(m.contains("refusing to send mail in clear text"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    assert!(smtp.received().is_empty());

    // Relays on this machine, however spelled, may be spoken to in clear text; others not.
    for (url, local) in [
        ("smtp://localhost:25", true),
        ("smtp://LOCALHOST.:25", true),
        ("smtp://127.0.0.1", true),
        ("smtp://127.8.9.10", true),
        ("smtp://[::1]:25", true),
        ("smtp://mail.example.com", false),
        ("smtp://10.0.0.5", false),
        ("smtp://localhost.example.com", false),
    ] {
        let parsed = SmtpSettings::parse(url, MAIL_FROM).unwrap();
        assert_eq!(parsed.plaintext_allowed, local, "{url}");
    }
}

#[tokio::test]
async fn smtp_url_can_require_starttls_of_a_relay_on_this_machine_or_forgo_it() {
    let smtp = FakeSmtp::start().await;
    let url = |tls: &str| format!("{}?tls={tls}", smtp.url());
    let required = SmtpSettings::parse(&url("required"), MAIL_FROM).unwrap();
    match SmtpMailer::new(required).send(&email("x")).await {
        Err(MailError::Permanent(m)) => assert!(m.contains("tls=required"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(smtp.received().is_empty());
    let none = SmtpSettings::parse(&url("none"), MAIL_FROM).unwrap();
    SmtpMailer::new(none).send(&email("sent")).await.unwrap();
    assert_eq!(smtp.wait_for("ada@example.com").await.from, MAIL_FROM);
}
