//! The composed `lineup` binary, run as a user would: zero-setup demo, restart, bad settings.

// A test may unwrap: a panic here is the failure report, not a production crash.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Server, free_listen_address, get, lineup, start};

fn sqlite_count(data_dir: &std::path::Path, sql: &str) -> i64 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let url = format!("sqlite://{}", data_dir.join("lineup.db").display());
        let lineup_core::store::Store::Sqlite(pool) =
            lineup_core::store::Store::connect(&url).await.unwrap()
        else {
            unreachable!()
        };
        let count: i64 = sqlx_count(&pool, sql).await;
        pool.close().await;
        count
    })
}

async fn sqlx_count(pool: &sqlx::SqlitePool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

/// Activation codes the demo database holds in clear (anything not `sealed:v1:`).
const CODES_IN_CLEAR: &str = "SELECT COUNT(*) FROM lines
     WHERE activation_code IS NOT NULL AND activation_code NOT LIKE 'sealed:v1:%'";

#[test]
fn demo_runs_with_no_setup_and_a_second_start_reuses_its_data() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let first = start(&["demo"], &[("LINEUP_DATA_DIR", dir)]);
    assert_eq!(first.get("/healthz"), (200, "ok".to_owned()));
    assert_eq!(first.get("/readyz"), (200, "ready".to_owned()));
    first.interrupt();

    let tenants = sqlite_count(data.path(), "SELECT COUNT(*) FROM tenants");
    let employees = sqlite_count(data.path(), "SELECT COUNT(*) FROM employees");
    let lines = sqlite_count(data.path(), "SELECT COUNT(*) FROM lines");
    assert_eq!(tenants, 1);
    assert_eq!(employees, 50);
    assert_eq!(lines, 48);
    assert_eq!(
        sqlite_count(
            data.path(),
            "SELECT COUNT(*) FROM requests WHERE state = 'pending'"
        ),
        2
    );
    for state in [
        "provisioning",
        "ready",
        "active",
        "suspended",
        "terminated",
        "failed",
    ] {
        let n = sqlite_count(
            data.path(),
            &format!("SELECT COUNT(*) FROM lines WHERE state = '{state}'"),
        );
        assert!(n > 0, "the demo has {state} lines");
    }
    assert!(sqlite_count(data.path(), "SELECT COUNT(*) FROM usage_daily") >= 30 * 20);
    // A policy at every scope with every action, which acted on the month's spend at once.
    for (kind, actions) in [
        ("tenant", 1),
        ("team", 1),
        ("cost_centre", 1),
        ("employee", 3),
    ] {
        let sql =
            format!("SELECT COUNT(DISTINCT action) FROM budget_caps WHERE scope_kind = '{kind}'");
        assert_eq!(sqlite_count(data.path(), &sql), actions, "{kind} caps");
    }
    assert_eq!(
        sqlite_count(
            data.path(),
            "SELECT COUNT(DISTINCT action) FROM budget_caps"
        ),
        3
    );
    assert!(
        sqlite_count(
            data.path(),
            "SELECT COUNT(*) FROM alerts WHERE kind IN ('budget_threshold', 'budget_cap_reached')"
        ) > 0
    );
    assert_eq!(
        sqlite_count(
            data.path(),
            "SELECT COUNT(DISTINCT action) FROM guardrail_actions WHERE state = 'applied'"
        ),
        2,
        "one line suspended and one slowed down by a cap"
    );
    assert_eq!(
        sqlite_count(data.path(), "SELECT COUNT(*) FROM roaming_presets"),
        4
    );
    assert!(
        sqlite_count(
            data.path(),
            "SELECT COUNT(*) FROM alerts WHERE kind = 'unused_line'"
        ) >= 2
    );
    // Lines to cancel and lines on the wrong plan size.
    let optimise = lineup(
        &["optimise", "--tenant", "demo"],
        &[("LINEUP_DATA_DIR", dir)],
    )
    .output()
    .unwrap();
    let report = String::from_utf8_lossy(&optimise.stdout);
    assert!(
        optimise.status.success(),
        "{report}{}",
        String::from_utf8_lossy(&optimise.stderr)
    );
    for change in [
        "cancel: no usage",
        "regular overage",
        "under half the allowance",
    ] {
        assert!(report.contains(change), "{change} not in {report}");
    }
    assert_eq!(sqlite_count(data.path(), CODES_IN_CLEAR), 0);
    assert!(
        sqlite_count(
            data.path(),
            "SELECT COUNT(*) FROM lines WHERE activation_code LIKE 'sealed:v1:%'"
        ) > 0
    );
    // A code left in clear by an older version is sealed by the next start.
    assert_eq!(
        sqlite_count(
            data.path(),
            "UPDATE lines SET activation_code = '1$rsp.sim.local$K2-FROM-BEFORE'
             WHERE id = (SELECT id FROM lines WHERE state = 'ready' LIMIT 1)
             RETURNING 1"
        ),
        1
    );
    assert_eq!(sqlite_count(data.path(), CODES_IN_CLEAR), 1);

    let second = start(&["demo"], &[("LINEUP_DATA_DIR", dir)]);
    assert_eq!(second.get("/healthz").0, 200);
    assert_eq!(sqlite_count(data.path(), CODES_IN_CLEAR), 0);
    assert_eq!(
        sqlite_count(data.path(), "SELECT COUNT(*) FROM tenants"),
        1,
        "no second seed"
    );
    assert_eq!(
        sqlite_count(data.path(), "SELECT COUNT(*) FROM lines"),
        lines
    );
    assert_eq!(
        sqlite_count(data.path(), "SELECT COUNT(*) FROM budget_caps"),
        6,
        "no second policy"
    );
    // The simulator kept its world too: every line we hold a subscription for still exists.
    let simulator = second
        .simulator_url
        .clone()
        .expect("the demo prints the simulator URL");
    let (status, stats) = get(&format!("{simulator}/_sim/stats"));
    assert_eq!(status, 200);
    let stats: serde_json::Value = serde_json::from_str(&stats).unwrap();
    let held = sqlite_count(
        data.path(),
        "SELECT COUNT(*) FROM lines WHERE provider_subscription_id IS NOT NULL",
    );
    // Beside the lines we hold, the simulator has the subscription the refused order
    // abandoned and the one whose slow order is still running.
    assert_eq!(
        stats["subscriptions"]["total"].as_i64().unwrap(),
        held + 2,
        "{stats}"
    );
    second.interrupt();
}

#[test]
fn serve_runs_on_postgres() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = runtime.block_on(lineup_testkit::fresh_postgres_url());
    let data = tempfile::tempdir().unwrap();
    let metrics_listen = free_listen_address();
    let server = start(
        &["serve"],
        &[
            ("DATABASE_URL", &url),
            ("LINEUP_DATA_DIR", data.path().to_str().unwrap()),
            ("LINEUP_METRICS_LISTEN", &metrics_listen),
        ],
    );
    assert_eq!(server.get("/readyz"), (200, "ready".to_owned()));
    // The scrape-time gauges read every tenant's rows through row-level security.
    let (status, metrics) = get(&format!("http://{metrics_listen}/metrics"));
    assert_eq!(status, 200);
    assert!(metrics.contains("\nlineup_backlog_up 1\n"), "{metrics}");
    assert!(
        metrics.contains("\nlineup_lines{state=\"active\"} "),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nlineup_outbox_pending{outbox=\"alerts\"} "),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nlineup_usage_staged_pages 0\n"),
        "{metrics}"
    );
    server.interrupt();
}

fn fails_naming(args: &[&str], env: &[(&str, &str)], setting: &str) {
    let data = tempfile::tempdir().unwrap();
    let mut env = env.to_vec();
    let dir = data.path().to_str().unwrap().to_owned();
    env.push(("LINEUP_DATA_DIR", &dir));
    let output = lineup(args, &env).output().unwrap();
    assert!(
        !output.status.success(),
        "{args:?} with {env:?} should fail"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("lineup: ") && last.contains(setting),
        "expected one line naming {setting}, got:\n{stderr}"
    );
}

#[test]
fn bad_configuration_stops_start_up_with_one_line_naming_the_setting() {
    fails_naming(
        &["serve"],
        &[("DATABASE_URL", "mysql://db/lineup")],
        "DATABASE_URL",
    );
    fails_naming(
        &["serve"],
        &[("DATABASE_URL", "postgres://u:p@localhost:notaport/db")],
        "DATABASE_URL",
    );
    fails_naming(
        &["serve"],
        &[("LINEUP_LISTEN", "everywhere")],
        "LINEUP_LISTEN",
    );
    fails_naming(
        &["serve"],
        &[
            ("PROVIDER_BASE_URL", "https://api.1global.com"),
            ("PROVIDER_CLIENT_ID", "x"),
            ("PROVIDER_ACCOUNT_ID", "acc"),
        ],
        "PROVIDER_CLIENT_SECRET",
    );
    fails_naming(
        &["serve"],
        &[
            ("PROVIDER_BASE_URL", "http://127.0.0.1:9"),
            ("PROVIDER_CLIENT_ID", "x"),
            ("PROVIDER_CLIENT_SECRET", "y"),
            ("PROVIDER_ACCOUNT_ID", "acc_1"),
        ],
        "PROVIDER_BASE_URL",
    );
}

#[test]
fn slack_is_mounted_installable_and_verified() {
    use lineup_testkit::fake_slack::{FakeSlack, OAuthGrant, sign_slack_request};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let fake = runtime.block_on(FakeSlack::start());
    fake.accept_oauth_code(
        "code-1",
        OAuthGrant {
            team_id: "T0DEMO".into(),
            team_name: "Acme Demo".into(),
            bot_token: "xoxb-demo".into(),
            bot_user_id: "U0BOT".into(),
            authed_user_id: "U0ADMIN".into(),
            scopes: vec!["commands".into(), "chat:write".into()],
        },
    );
    fake.add_user("U0ADA", "ada.lovelace0@acme-demo.example");
    let data = tempfile::tempdir().unwrap();
    let api = fake.api_url();
    let env = [
        ("LINEUP_DATA_DIR", data.path().to_str().unwrap()),
        ("SLACK_SIGNING_SECRET", "demo-signing-secret"),
        ("SLACK_CLIENT_ID", "123.456"),
        ("SLACK_CLIENT_SECRET", "client-secret"),
        ("SLACK_API_BASE_URL", api.as_str()),
    ];
    let server = start(&["demo"], &env);
    let post = |body: &str, signed: bool| {
        let ts = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
        let client = reqwest::Client::new();
        let mut request = client
            .post(format!("{}/slack/commands", server.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_owned());
        if signed {
            request = request.header("x-slack-request-timestamp", &ts).header(
                "x-slack-signature",
                sign_slack_request("demo-signing-secret", &ts, body.as_bytes()),
            );
        }
        runtime.block_on(async {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        })
    };
    let command = |user: &str, text: &str| {
        serde_urlencoded::to_string([
            ("team_id", "T0DEMO"),
            ("user_id", user),
            ("user_name", "u"),
            ("channel_id", "C1"),
            ("command", "/esim"),
            ("text", text),
            ("trigger_id", "t1"),
            ("response_url", &fake.response_url("r1")),
        ])
        .unwrap()
    };
    assert_eq!(
        post(&command("U0ADA", "help"), false).0,
        401,
        "unsigned requests are refused"
    );
    let (status, body) = post(&command("U0ADA", "help"), true);
    assert_eq!(status, 200);
    assert!(
        body.contains("isn't connected"),
        "an uninstalled workspace is refused: {body}"
    );

    // Install through the printed link, as an admin would.
    let link = lineup(&["slack-install-link", "--tenant", "demo"], &env)
        .output()
        .unwrap();
    assert!(
        link.status.success(),
        "{}",
        String::from_utf8_lossy(&link.stderr)
    );
    let link = String::from_utf8(link.stdout).unwrap().trim().to_owned();
    let state = link.split("state=").nth(1).unwrap().to_owned();
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let callback = format!(
        "{}/slack/oauth/callback?code=code-1&state={state}",
        server.url
    );
    // Slack's redirect back, in a browser that did not open the link: refused, code unspent.
    let stranger = runtime
        .block_on(no_redirects.get(&callback).send())
        .unwrap();
    assert_eq!(stranger.status(), 400);
    // The admin's browser opens the link (marked with a cookie), then comes back from Slack.
    let install_path = &link[link.find("/slack/install").unwrap()..];
    let opened = runtime
        .block_on(
            no_redirects
                .get(format!("{}{install_path}", server.url))
                .send(),
        )
        .unwrap();
    assert_eq!(opened.status(), 302);
    let cookie = opened.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let installed = runtime
        .block_on(no_redirects.get(&callback).header("cookie", cookie).send())
        .unwrap();
    assert_eq!(
        installed.status(),
        302,
        "{:?}",
        runtime.block_on(installed.text())
    );

    let (status, body) = post(&command("U0ADA", "status"), true);
    assert_eq!(status, 200);
    assert!(
        body.contains("Your lines") || body.contains("no lines"),
        "{body}"
    );
    let alert = lineup(&["slack-test-alert", "--tenant", "demo"], &env)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&alert.stderr);
    assert!(
        !alert.status.success() && stderr.contains("no finance channel"),
        "{stderr}"
    );
    server.interrupt();
}

#[test]
fn provider_webhooks_are_verified_and_accepted() {
    let data = tempfile::tempdir().unwrap();
    let env = [
        ("LINEUP_DATA_DIR", data.path().to_str().unwrap()),
        ("PROVIDER_WEBHOOK_SECRET", "hook-secret"),
    ];
    let server = start(&["serve"], &env);
    let body = r#"{"id":"evt_1","type":"usage.threshold_reached","data":{"subscription_id":"sub_NOBODY","threshold_pct":80}}"#;
    let post_to = |path: &str, signature: Option<String>| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut request = reqwest::Client::new()
                .post(format!("{}{path}", server.url))
                .body(body);
            if let Some(signature) = signature {
                request = request.header("X-Sim-Signature", signature);
            }
            request.send().await.unwrap().status().as_u16()
        })
    };
    let post = |signature: Option<String>| post_to("/provider/webhooks", signature);
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    // A tenant connection's own URL: an unknown connection is not found, whatever it sends.
    let signed = lineup_simulator::signature_header("hook-secret", now, body);
    let unknown = format!("/provider/webhooks/{}", uuid::Uuid::now_v7());
    assert_eq!(post_to(&unknown, Some(signed.clone())), 404);
    assert_eq!(post_to("/provider/webhooks/not-an-id", Some(signed)), 404);
    assert_eq!(post(None), 401);
    assert_eq!(
        post(Some(lineup_simulator::signature_header("wrong", now, body))),
        401
    );
    assert_eq!(
        post(Some(lineup_simulator::signature_header(
            "hook-secret",
            now,
            body
        ))),
        200
    );
    server.interrupt();
}

/// With no SMTP_URL, a password-reset email becomes an `.eml` file in the data directory's
/// outbox, with a working link to the tenant's portal.
#[test]
fn without_smtp_emails_are_written_to_the_outbox_folder() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();
    let server = start(&["demo"], &[("LINEUP_DATA_DIR", dir)]);
    let port = url::Url::parse(&server.url).unwrap().port().unwrap();
    let host = "demo.lineup.localhost";
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::builder()
            .resolve(host, ([127, 0, 0, 1], port).into())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let origin = format!("http://{host}:{port}");
        let form = client
            .get(format!("{origin}/password/forgot"))
            .send()
            .await
            .unwrap();
        let cookie = form.headers()["set-cookie"].to_str().unwrap().to_owned();
        let cookie = cookie.split(';').next().unwrap().to_owned();
        let html = form.text().await.unwrap();
        let marker = "name=\"_csrf\" value=\"";
        let start = html.find(marker).unwrap() + marker.len();
        let csrf = &html[start..start + 64];
        let answer = client
            .post(format!("{origin}/password/forgot"))
            .header("cookie", cookie)
            .form(&[("email", "admin@demo.lineup.localhost"), ("_csrf", csrf)])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
    });
    let outbox = data.path().join("outbox");
    let deadline = Instant::now() + Duration::from_secs(30);
    let message = loop {
        let found = std::fs::read_dir(&outbox)
            .into_iter()
            .flatten()
            .flatten()
            .find(|e| e.path().extension().is_some_and(|x| x == "eml"));
        if let Some(entry) = found {
            break std::fs::read_to_string(entry.path()).ok();
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    server.interrupt();
    let message = message.expect("an .eml file in the outbox folder");
    assert!(
        message.contains("To: admin@demo.lineup.localhost\r\n"),
        "{message}"
    );
    assert!(
        message.contains("Subject: Reset your Lineup password\r\n"),
        "{message}"
    );
    // The link's port is LINEUP_PORTAL_URL's (here the listen setting, port 0).
    assert!(message.contains(&format!("http://{host}:")), "{message}");
    assert!(message.contains("/password/reset/"), "{message}");
}

/// The issue's "done when": an admin adds Slack from Settings → Chat, the install completes
/// against the fake Slack in the browser that started it, the workspace shows as connected;
/// disconnecting revokes the token at Slack and leaves none in the database.
#[test]
fn slack_is_connected_and_disconnected_from_settings_chat() {
    use lineup_testkit::fake_slack::{FakeSlack, OAuthGrant};
    use lineup_testkit::portal::Browser;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let fake = runtime.block_on(FakeSlack::start());
    fake.accept_oauth_code(
        "code-1",
        OAuthGrant {
            team_id: "T0DEMO".into(),
            team_name: "Acme Demo".into(),
            bot_token: "xoxb-demo".into(),
            bot_user_id: "U0BOT".into(),
            authed_user_id: "U0ADMIN".into(),
            scopes: vec!["commands".into(), "chat:write".into()],
        },
    );
    let data = tempfile::tempdir().unwrap();
    let (api, listen) = (fake.api_url(), free_listen_address());
    let env = [
        ("LINEUP_DATA_DIR", data.path().to_str().unwrap()),
        ("SLACK_SIGNING_SECRET", "demo-signing-secret"),
        ("SLACK_CLIENT_ID", "123.456"),
        ("SLACK_CLIENT_SECRET", "client-secret"),
        ("SLACK_API_BASE_URL", api.as_str()),
        ("LINEUP_LISTEN", listen.as_str()),
    ];
    let server = start(&["demo"], &env);
    let addr: std::net::SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
    let admin = Browser::new("demo.lineup.localhost", addr);
    runtime.block_on(admin.sign_in("admin@demo.lineup.localhost", "lineup-demo-password"));

    let page = runtime.block_on(admin.get("/settings/chat"));
    page.assert_ok()
        .assert_contains("Add to Slack")
        .assert_contains("This server is not set up for Discord");
    let to_install = runtime.block_on(admin.post("/settings/chat/slack/connect", &[]));
    assert_eq!(to_install.status, 303, "{}", to_install.body);
    let install_url = to_install.location().unwrap().to_owned();
    assert!(
        install_url.starts_with(&format!("{}/slack/install?state=", server.url)),
        "{install_url}"
    );
    let state = install_url.split("state=").nth(1).unwrap().to_owned();

    // The admin's browser follows it: marked with a cookie, sent on to Slack.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let opened = runtime.block_on(browser.get(&install_url).send()).unwrap();
    assert_eq!(opened.status(), 302);
    assert!(
        opened.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("https://slack.com/oauth/v2/authorize?client_id=123.456"),
        "{:?}",
        opened.headers()["location"]
    );
    let cookie = opened.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    // Slack sends the browser back with a code. Another browser with the same URL is refused
    // and the code stays unspent.
    let callback = format!(
        "{}/slack/oauth/callback?code=code-1&state={state}",
        server.url
    );
    let stranger = runtime.block_on(browser.get(&callback).send()).unwrap();
    assert_eq!(stranger.status(), 400);
    assert!(fake.calls_to("oauth.v2.access").is_empty());
    let back = runtime
        .block_on(browser.get(&callback).header("cookie", cookie).send())
        .unwrap();
    assert_eq!(back.status(), 302);
    let landing = back.headers()["location"].to_str().unwrap().to_owned();
    let settings_chat = format!("{}/settings/chat?connected=slack", admin.origin());
    assert_eq!(
        landing, settings_chat,
        "back on the tenant's Settings → Chat"
    );

    let page = runtime.block_on(admin.get(&landing[admin.origin().len()..]));
    page.assert_ok()
        .assert_contains("Slack is connected")
        .assert_contains("Acme Demo")
        .assert_contains("T0DEMO")
        .assert_contains("by Demo Admin");
    let token_rows = "SELECT COUNT(*) FROM chat_installations
         WHERE platform = 'slack' AND bot_token_encrypted IS NOT NULL";
    assert_eq!(sqlite_count(data.path(), token_rows), 1);
    // The page names the admin ("by Demo Admin"); the audit log has a user as the actor.
    let by_admin = |action: &str| {
        sqlite_count(
            data.path(),
            &format!(
                "SELECT COUNT(*) FROM audit_events WHERE action = '{action}'
                 AND actor LIKE 'user:%'"
            ),
        )
    };
    assert_eq!(by_admin("chat.installed"), 1, "the install is the admin's");

    let page = runtime.block_on(admin.get("/settings/chat"));
    page.assert_contains("Disconnect");
    let gone = runtime.block_on(admin.post("/settings/chat/slack/disconnect", &[]));
    assert_eq!(gone.status, 303, "{}", gone.body);
    let page = runtime.block_on(admin.get("/settings/chat"));
    page.assert_contains("is disconnected")
        .assert_contains("Add to Slack");
    assert!(!page.body.contains("T0DEMO</code>"), "{}", page.body);
    assert_eq!(sqlite_count(data.path(), token_rows), 0, "no token is left");
    assert_eq!(by_admin("chat.disconnected"), 1);
    let revokes = fake.calls_to("auth.revoke");
    assert_eq!(revokes.len(), 1, "Slack is told");
    assert_eq!(revokes[0].token.as_deref(), Some("xoxb-demo"));
    server.interrupt();
}

/// "Add to Discord": the bot invite with the scopes and permissions the bot needs, bound to
/// the admin's browser; the server linked is the one Discord's token answer names.
#[test]
fn discord_is_added_and_removed_from_settings_chat() {
    use lineup_testkit::fake_discord::{FakeDiscord, test_public_key_hex};
    use lineup_testkit::portal::Browser;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let fake = runtime.block_on(FakeDiscord::start());
    fake.accept_invite_code("invite-1", "1300000000000000042", "Acme Guild");
    let data = tempfile::tempdir().unwrap();
    let (api, public_key) = (fake.api_base_url(), test_public_key_hex());
    let listen = free_listen_address();
    let env = [
        ("LINEUP_DATA_DIR", data.path().to_str().unwrap()),
        ("DISCORD_APPLICATION_ID", "1100000000000000007"),
        ("DISCORD_PUBLIC_KEY", public_key.as_str()),
        ("DISCORD_BOT_TOKEN", "discord-bot-token"),
        ("DISCORD_CLIENT_SECRET", "discord-client-secret"),
        ("DISCORD_API_BASE_URL", api.as_str()),
        ("LINEUP_LISTEN", listen.as_str()),
    ];
    let server = start(&["demo"], &env);
    let addr: std::net::SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
    let admin = Browser::new("demo.lineup.localhost", addr);
    runtime.block_on(admin.sign_in("admin@demo.lineup.localhost", "lineup-demo-password"));
    runtime
        .block_on(admin.get("/settings/chat"))
        .assert_contains("Add to Discord")
        .assert_contains("This server is not set up for Slack");
    let to_install = runtime.block_on(admin.post("/settings/chat/discord/connect", &[]));
    assert_eq!(to_install.status, 303, "{}", to_install.body);
    let install_url = to_install.location().unwrap().to_owned();
    assert!(install_url.starts_with(&format!("{}/discord/install?state=", server.url)));
    let state = install_url.split("state=").nth(1).unwrap().to_owned();

    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let opened = runtime.block_on(browser.get(&install_url).send()).unwrap();
    assert_eq!(opened.status(), 302);
    let authorize = url::Url::parse(opened.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(
        authorize.as_str().split('?').next().unwrap(),
        format!("http://{}/oauth2/authorize", fake.addr)
    );
    let query: std::collections::HashMap<_, _> = authorize.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], "1100000000000000007");
    assert_eq!(query["scope"], "bot applications.commands");
    // Send messages, embed links, read message history, use application commands.
    assert_eq!(query["permissions"], "2147567616");
    assert_eq!(query["response_type"], "code");
    assert_eq!(
        query["redirect_uri"],
        format!("{}/discord/oauth/callback", server.url)
    );
    assert_eq!(query["state"], state);
    let cookie = opened.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert!(cookie.starts_with("lineup_discord_install="), "{cookie}");

    // Discord sends the browser back; the guild_id in the address is not believed.
    let callback = format!(
        "{}/discord/oauth/callback?code=invite-1&state={state}&guild_id=1399999999999999999&permissions=8",
        server.url
    );
    let stranger = runtime.block_on(browser.get(&callback).send()).unwrap();
    assert_eq!(stranger.status(), 400);
    assert!(fake.calls_to("POST", "/oauth2/token").is_empty());
    let back = runtime
        .block_on(browser.get(&callback).header("cookie", cookie).send())
        .unwrap();
    assert_eq!(back.status(), 302);
    assert_eq!(
        back.headers()["location"].to_str().unwrap(),
        format!("{}/settings/chat?connected=discord", admin.origin())
    );
    let exchanged = fake.calls_to("POST", "/oauth2/token");
    assert_eq!(exchanged.len(), 1);
    assert_eq!(exchanged[0].body["grant_type"], "authorization_code");
    assert!(
        exchanged[0]
            .auth
            .as_deref()
            .is_some_and(|a| a.starts_with("Basic ")),
        "the exchange authenticates with the client secret"
    );
    runtime
        .block_on(admin.get("/settings/chat?connected=discord"))
        .assert_contains("Discord is connected")
        .assert_contains("Acme Guild")
        .assert_contains("1300000000000000042")
        .assert_contains("by Demo Admin");
    let linked = |guild: &str| {
        sqlite_count(
            data.path(),
            &format!(
                "SELECT COUNT(*) FROM chat_installations WHERE platform = 'discord'
                 AND workspace_id = '{guild}' AND revoked_at IS NULL"
            ),
        )
    };
    assert_eq!(linked("1300000000000000042"), 1);
    assert_eq!(linked("1399999999999999999"), 0);

    let gone = runtime.block_on(admin.post("/settings/chat/discord/disconnect", &[]));
    assert_eq!(gone.status, 303, "{}", gone.body);
    runtime
        .block_on(admin.get("/settings/chat"))
        .assert_contains("Discord 1300000000000000042 is disconnected")
        .assert_contains("Add to Discord");
    assert_eq!(linked("1300000000000000042"), 0);
    assert_eq!(
        fake.calls_to("DELETE", "/users/@me/guilds/1300000000000000042")
            .len(),
        1,
        "the bot leaves the server"
    );
    assert_eq!(
        sqlite_count(
            data.path(),
            "SELECT COUNT(*) FROM audit_events WHERE action = 'chat.disconnected'
             AND actor LIKE 'user:%'"
        ),
        1
    );
    server.interrupt();
}

/// Teams: the app package names this server, and a one-time code sent from Teams links the
/// Microsoft 365 organisation the Bot Framework vouches for, not one anybody types in.
#[test]
fn teams_app_package_and_link_code_connect_the_microsoft_365_organisation() {
    use lineup_testkit::fake_teams::{
        ActivityCtx, FakeTeams, TokenClaims, message_activity, sign_activity_token,
    };
    use lineup_testkit::portal::Browser;
    const APP_ID: &str = "6f1f2c1e-0000-4000-8000-00000000b07a";
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let fake = runtime.block_on(FakeTeams::start(APP_ID, "teams-password"));
    let data = tempfile::tempdir().unwrap();
    let (openid, token, listen) = (
        fake.openid_metadata_url(),
        fake.token_url(),
        free_listen_address(),
    );
    let env = [
        ("LINEUP_DATA_DIR", data.path().to_str().unwrap()),
        ("TEAMS_APP_ID", APP_ID),
        ("TEAMS_APP_PASSWORD", "teams-password"),
        ("TEAMS_OPENID_METADATA_URL", openid.as_str()),
        ("TEAMS_TOKEN_URL", token.as_str()),
        ("LINEUP_LISTEN", listen.as_str()),
    ];
    let server = start(&["demo"], &env);
    let addr: std::net::SocketAddr = server.url.trim_start_matches("http://").parse().unwrap();
    let admin = Browser::new("demo.lineup.localhost", addr);
    runtime.block_on(admin.sign_in("admin@demo.lineup.localhost", "lineup-demo-password"));
    runtime
        .block_on(admin.get("/settings/chat"))
        .assert_contains("Download the Teams app")
        .assert_contains("Make a link code");
    let package = runtime.block_on(admin.get("/settings/chat/teams/app.zip"));
    assert_eq!(package.status, 200);
    assert_eq!(package.headers["content-type"], "application/zip");
    let made = runtime.block_on(admin.post("/settings/chat/teams/code", &[]));
    made.assert_ok().assert_contains("within the hour");
    let marker = "Send <code>link ";
    let start_at = made.body.find(marker).unwrap() + marker.len();
    let code = made.body[start_at..start_at + 14].to_owned();
    assert_eq!(code.matches('-').count(), 2, "{code}");

    let send = |tenant: &str, text: &str, signed: bool| {
        let ctx = ActivityCtx::personal(&fake.service_url(), tenant, APP_ID, "29:ann");
        let activity = message_activity(&ctx, text);
        let mut request = reqwest::Client::new()
            .post(format!("{}/teams/messages", server.url))
            .json(&activity);
        if signed {
            let jwt = sign_activity_token(&TokenClaims::new(APP_ID, &fake.service_url()));
            request = request.header("authorization", format!("Bearer {jwt}"));
        }
        runtime.block_on(request.send()).unwrap().status().as_u16()
    };
    let last_reply = || {
        fake.posts()
            .last()
            .map(|c| c.body["text"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_default()
    };
    let connected = |tenant: &str| {
        sqlite_count(
            data.path(),
            &format!(
                "SELECT COUNT(*) FROM chat_installations WHERE platform = 'teams'
                 AND workspace_id = '{tenant}' AND revoked_at IS NULL"
            ),
        )
    };
    // Without the Bot Framework's signature the code is not even looked at.
    assert_eq!(send("aad-acme", &format!("link {code}"), false), 401);
    assert_eq!(send("aad-acme", "link AAAA-BBBB-CCCC", true), 200);
    assert!(last_reply().contains("couldn't link"), "{}", last_reply());
    assert_eq!(connected("aad-acme"), 0);
    assert_eq!(
        send("aad-acme", &format!("link {}", code.to_lowercase()), true),
        200
    );
    assert!(
        last_reply().contains("now connected to"),
        "{}",
        last_reply()
    );
    assert_eq!(connected("aad-acme"), 1);
    // Single use: the same code from another organisation links nothing.
    assert_eq!(send("aad-other", &format!("link {code}"), true), 200);
    assert!(last_reply().contains("used"), "{}", last_reply());
    assert_eq!(connected("aad-other"), 0);
    runtime
        .block_on(admin.get("/settings/chat"))
        .assert_contains("<code>aad-acme</code>")
        .assert_contains("by Demo Admin");
    server.interrupt();
}

/// `/metrics` is served on LINEUP_METRICS_LISTEN only: requests are counted by route pattern
/// (never a token or slug from the path) and status, chat requests as acknowledgements of
/// their platform, provider calls by operation and outcome, and the database gauges are
/// read at scrape time. `lineup healthcheck` (the container's probe) finds the server.
#[test]
fn metrics_are_scraped_from_their_own_listener_only() {
    use lineup_testkit::fake_slack::{FakeSlack, sign_slack_request};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let fake = runtime.block_on(FakeSlack::start());
    let data = tempfile::tempdir().unwrap();
    let (listen, metrics_listen) = (free_listen_address(), free_listen_address());
    let api = fake.api_url();
    let env = [
        ("LINEUP_DATA_DIR", data.path().to_str().unwrap()),
        ("LINEUP_LISTEN", listen.as_str()),
        ("LINEUP_METRICS_LISTEN", metrics_listen.as_str()),
        ("SLACK_SIGNING_SECRET", "demo-signing-secret"),
        ("SLACK_CLIENT_ID", "123.456"),
        ("SLACK_CLIENT_SECRET", "client-secret"),
        ("SLACK_API_BASE_URL", api.as_str()),
    ];
    let server = start(&["demo"], &env);
    let healthcheck = lineup(&["healthcheck"], &env).output().unwrap();
    assert!(
        healthcheck.status.success(),
        "{}",
        String::from_utf8_lossy(&healthcheck.stderr)
    );
    assert_eq!(server.get("/readyz"), (200, "ready".to_owned()));
    let client = reqwest::Client::new();
    let send = |request: reqwest::RequestBuilder| {
        runtime.block_on(async {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        })
    };
    // A tenant page whose path carries a token.
    let port = listen.rsplit(':').next().unwrap();
    let page = client
        .get(format!("{}/verify-email/secret-token-123", server.url))
        .header("host", format!("demo.lineup.localhost:{port}"));
    send(page);
    // One refused and one acknowledged slash command.
    let body = serde_urlencoded::to_string([
        ("team_id", "T0NONE"),
        ("user_id", "U1"),
        ("user_name", "u"),
        ("channel_id", "C1"),
        ("command", "/esim"),
        ("text", "help"),
        ("trigger_id", "t1"),
        ("response_url", &fake.response_url("r1")),
    ])
    .unwrap();
    let slash = || {
        client
            .post(format!("{}/slack/commands", server.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
    };
    assert_eq!(send(slash()).0, 401);
    let ts = time::OffsetDateTime::now_utc().unix_timestamp().to_string();
    let signed = slash().header("x-slack-request-timestamp", &ts).header(
        "x-slack-signature",
        sign_slack_request("demo-signing-secret", &ts, body.as_bytes()),
    );
    assert_eq!(send(signed).0, 200);

    // Not on the public port, whatever the host.
    let (status, public) = server.get("/metrics");
    assert_ne!(status, 200, "{public}");
    assert!(!public.contains("lineup_http_requests_total"), "{public}");

    let (status, metrics) = get(&format!("http://{metrics_listen}/metrics"));
    assert_eq!(status, 200);
    let has = |name: &str, labels: &[&str]| {
        metrics.lines().any(|line| {
            line.starts_with(&format!("{name}{{"))
                && labels.iter().all(|label| line.contains(label))
        })
    };
    for (name, labels) in [
        (
            "lineup_http_requests_total",
            &["route=\"/readyz\"", "method=\"GET\"", "status=\"200\""][..],
        ),
        (
            "lineup_http_requests_total",
            &["route=\"/verify-email/{token}\""],
        ),
        (
            "lineup_http_request_duration_seconds_bucket",
            &["route=\"/readyz\"", "le=\"0.1\""],
        ),
        (
            "lineup_chat_acks_total",
            &["platform=\"slack\"", "status=\"401\""],
        ),
        (
            "lineup_chat_acks_total",
            &["platform=\"slack\"", "status=\"200\""],
        ),
        (
            "lineup_chat_ack_duration_seconds_count",
            &["platform=\"slack\""],
        ),
        (
            "lineup_provider_requests_total",
            &["operation=\"get_account\"", "outcome=\"ok\""],
        ),
        (
            "lineup_provider_request_duration_seconds_bucket",
            &["operation=\"order activate_subscription\""],
        ),
        ("lineup_lines", &["state=\"active\""]),
        ("lineup_outbox_pending", &["outbox=\"alerts\""]),
    ] {
        assert!(
            has(name, labels),
            "no {name} with {labels:?} in:\n{metrics}"
        );
    }
    assert!(metrics.contains("\nlineup_backlog_up 1\n"), "{metrics}");
    assert!(!metrics.contains("secret-token-123"), "{metrics}");
    server.interrupt();

    let stopped = lineup(&["healthcheck"], &env).output().unwrap();
    let stderr = String::from_utf8_lossy(&stopped.stderr);
    assert!(
        !stopped.status.success() && stderr.contains("LINEUP_LISTEN"),
        "{stderr}"
    );
}

/// Makes the built-in simulator answer the account check (the provider half of `/readyz`)
/// only after `delay_ms`, once.
fn slow_account_check(server: &Server, delay_ms: u64) {
    let simulator = server.simulator_url.clone().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let fault = serde_json::json!({
            "match": {"method": "GET", "path_prefix": "/enterprise/accounts"},
            "action": {"delay_ms": delay_ms},
            "times": 1
        });
        let answer = reqwest::Client::new()
            .post(format!("{simulator}/_sim/faults"))
            .json(&fault)
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success(), "{answer:?}");
    });
}

/// SIGTERM, then how long the process took to exit, and how.
fn terminate(server: &mut Server, within: Duration) -> (Duration, std::process::ExitStatus) {
    let sent = Instant::now();
    server.signal("-TERM");
    loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            return (sent.elapsed(), status);
        }
        assert!(
            sent.elapsed() < within,
            "lineup still runs {within:?} after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// SIGTERM while a request waits on a slow provider: no new connection is accepted, the
/// request still gets its answer, and the process exits 0 within the grace period, saying
/// it shut down cleanly with no job left to hand back.
#[test]
fn sigterm_finishes_the_request_in_flight_refuses_new_ones_and_exits_within_the_grace() {
    let data = tempfile::tempdir().unwrap();
    let mut server = start(
        &["serve"],
        &[
            ("LINEUP_DATA_DIR", data.path().to_str().unwrap()),
            ("LINEUP_SHUTDOWN_GRACE_SECS", "5"),
            ("LINEUP_LOG_FORMAT", "json"),
            ("RUST_LOG", "info"),
        ],
    );
    slow_account_check(&server, 1_500);
    let url = server.url.clone();
    let in_flight = std::thread::spawn(move || get(&format!("{url}/readyz")));
    std::thread::sleep(Duration::from_millis(400));
    server.signal("-TERM");
    std::thread::sleep(Duration::from_millis(300));
    let address = server.url.trim_start_matches("http://").to_owned();
    let refused = std::net::TcpStream::connect(&address).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    assert_eq!(in_flight.join().unwrap(), (200, "ready".to_owned()));
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "not stopped within the grace");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    // The reader thread has the last lines once the pipe closes.
    std::thread::sleep(Duration::from_millis(200));
    let output = server.output.lock().unwrap().join("\n");
    let last = output
        .lines()
        .rev()
        .find(|l| l.contains("shut down cleanly"));
    assert!(
        last.is_some_and(|line| line.contains("\"released_jobs\":0")),
        "{output}"
    );
}

/// A request slower than LINEUP_SHUTDOWN_GRACE_SECS does not hold the process: it is cut at
/// the deadline and the process exits 0 (Kubernetes would otherwise kill it mid-cleanup).
#[test]
fn a_request_slower_than_the_grace_is_cut_at_the_deadline() {
    let data = tempfile::tempdir().unwrap();
    let mut server = start(
        &["serve"],
        &[
            ("LINEUP_DATA_DIR", data.path().to_str().unwrap()),
            ("LINEUP_SHUTDOWN_GRACE_SECS", "1"),
        ],
    );
    // Longer than the grace; /readyz gives up on the provider after 3 s.
    slow_account_check(&server, 2_900);
    let url = server.url.clone();
    let in_flight = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async { reqwest::get(format!("{url}/readyz")).await.is_err() })
    });
    std::thread::sleep(Duration::from_millis(200));
    let (took, status) = terminate(&mut server, Duration::from_secs(10));
    assert!(status.success(), "{status}");
    assert!(
        took < Duration::from_millis(2_200),
        "exited {took:?} after SIGTERM: it waited for the request instead of the 1 s grace"
    );
    assert!(in_flight.join().unwrap(), "the cut request got no answer");
}

/// With OTEL_EXPORTER_OTLP_ENDPOINT set, core commands' spans reach the collector over OTLP/HTTP
/// (protobuf) under the service name: here the demo's seeding creates its tenant.
#[test]
fn spans_reach_an_otlp_collector_when_one_is_configured() {
    use std::sync::{Arc, Mutex};
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // Each export's content type and body.
    type Exports = Arc<Mutex<Vec<(String, Vec<u8>)>>>;
    let exports: Exports = Arc::default();
    let collector = runtime.block_on(async {
        let exports = exports.clone();
        let app = axum::Router::new().route(
            "/v1/traces",
            axum::routing::post(
                move |headers: axum::http::HeaderMap, body: axum::body::Bytes| async move {
                    let kind = headers
                        .get("content-type")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    exports.lock().unwrap().push((kind, body.to_vec()));
                    axum::http::StatusCode::OK
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    });
    let data = tempfile::tempdir().unwrap();
    let endpoint = format!("http://{collector}");
    let server = start(
        &["demo"],
        &[
            ("LINEUP_DATA_DIR", data.path().to_str().unwrap()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_SERVICE_NAME", "lineup-otlp-test"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let contains = |body: &[u8], text: &str| body.windows(text.len()).any(|w| w == text.as_bytes());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen =
            exports.lock().unwrap().iter().any(|(_, body)| {
                contains(body, "lineup-otlp-test") && contains(body, "create_tenant")
            });
        if seen {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no create_tenant span reached the collector in 30 s ({} exports)",
            exports.lock().unwrap().len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server.interrupt();
    assert!(
        exports
            .lock()
            .unwrap()
            .iter()
            .all(|(kind, _)| kind == "application/x-protobuf")
    );
    fails_naming(
        &["serve"],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")],
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    );
}
