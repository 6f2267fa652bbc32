//! The portal in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`) drives the pages a new admin uses first. Screenshots are kept in
//! `target/browser-artifacts/` for people to look at.

use std::path::PathBuf;
use std::time::Duration;

use lineup_core::provider::ProviderError;
use lineup_testkit::fake_smtp::FakeSmtp;
use lineup_testkit::portal::{BASE_DOMAIN, PASSWORD, PortalWorld};
use lineup_testkit::sqlite_store;
use lineup_testkit::webdriver::Chrome;

fn artifacts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/browser-artifacts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_signs_in_and_changes_settings_in_a_real_browser() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let downloads = tempfile::tempdir().unwrap();
    let chrome = Chrome::start(BASE_DOMAIN, downloads.path()).await;
    let origin = format!("http://acme.{BASE_DOMAIN}:{}", w.addr.port());

    chrome.goto(&format!("{origin}/settings")).await;
    assert!(
        chrome
            .current_url()
            .await
            .contains("/login?next=%2Fsettings")
    );
    chrome
        .type_into("input[name=email]", "admin@example.com")
        .await;
    chrome.type_into("input[name=password]", PASSWORD).await;
    chrome.click("button[type=submit]").await;
    chrome
        .wait_for_text("Organisation settings", Duration::from_secs(10))
        .await;

    chrome.type_into("input[name=name]", "Acme Browsers").await;
    chrome.type_into("input[name=cap_raise_max]", "lots").await;
    chrome.click("form.stack button[type=submit]").await;
    chrome
        .wait_for_text("is not an amount in USD", Duration::from_secs(10))
        .await;
    chrome.type_into("input[name=cap_raise_max]", "750").await;
    chrome.click("form.stack button[type=submit]").await;
    chrome
        .wait_for_text("Settings saved", Duration::from_secs(10))
        .await;
    assert_eq!(
        w.lineup.tenant(w.tenant).await.unwrap().name,
        "Acme Browsers"
    );

    chrome.goto(&format!("{origin}/")).await;
    chrome
        .wait_for_text("Overview", Duration::from_secs(10))
        .await;
    chrome.screenshot(&artifacts().join("overview.png")).await;
}

/// The journey the portal exists for: sign in, import people from an HRIS export, issue one
/// of them an eSIM and see its QR code, look at spend and download the chargeback CSV.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_imports_people_issues_an_esim_and_downloads_chargeback_in_a_real_browser() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let downloads = tempfile::tempdir().unwrap();
    let chrome = Chrome::start(BASE_DOMAIN, downloads.path()).await;
    let origin = format!("http://acme.{BASE_DOMAIN}:{}", w.addr.port());

    chrome.goto(&format!("{origin}/login")).await;
    chrome
        .type_into("input[name=email]", "admin@example.com")
        .await;
    chrome.type_into("input[name=password]", PASSWORD).await;
    chrome.click("button[type=submit]").await;
    chrome
        .wait_for_text("Overview", Duration::from_secs(10))
        .await;

    // An HRIS export as people save it: BOM, CRLF, quoted names, a manager column.
    let csv = downloads.path().join("people.csv");
    std::fs::write(
        &csv,
        "\u{feff}Work Email,First Name,Last Name,Department,Cost Center,Manager Email\r\n\
         grace@example.com,Grace,Hopper,Engineering,CC-100,maria@example.com\r\n\
         \"linus@example.com\",\"Linus\",\"Torvalds, Jr\",Engineering,CC-100,grace@example.com\r\n",
    )
    .unwrap();
    chrome.goto(&format!("{origin}/employees/import")).await;
    chrome.attach("input[type=file]", &csv).await;
    chrome.click("form.stack button[type=submit]").await;
    chrome
        .wait_for_text("Import 2 new", Duration::from_secs(10))
        .await;
    chrome
        .click("form[action$='/commit'] button[type=submit]")
        .await;
    chrome
        .wait_for_text("Imported 2 rows: 2 created", Duration::from_secs(10))
        .await;
    let grace = w
        .lineup
        .employees(w.tenant)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.email.as_str() == "grace@example.com")
        .expect("Grace was imported");

    chrome.goto(&format!("{origin}/lines/new")).await;
    chrome
        .script(&format!(
            "document.querySelector('select[name=employee_id]').value = '{}'; \
             const plan = document.querySelector('select[name=plan_id]'); \
             plan.value = plan.options[1].value;",
            grace.id
        ))
        .await;
    chrome.click("form.stack button[type=submit]").await;
    chrome
        .wait_for_text("Reveal activation code", Duration::from_secs(30))
        .await;
    assert!(chrome.current_url().await.contains("/lines/"));
    chrome
        .click("form[action$='/reveal'] button[type=submit]")
        .await;
    chrome
        .wait_for_text("LPA:1$", Duration::from_secs(10))
        .await;
    chrome.screenshot(&artifacts().join("line.png")).await;

    chrome.goto(&format!("{origin}/dashboard")).await;
    chrome
        .wait_for_text("Chargeback", Duration::from_secs(10))
        .await;
    chrome.screenshot(&artifacts().join("dashboard.png")).await;
    chrome.click("a[href^='/exports/chargeback.csv']").await;
    let export = chrome.downloaded("lineup-chargeback").await;
    let text = std::fs::read_to_string(&export).unwrap();
    assert!(text.lines().next().unwrap().contains("cost"), "{text}");
}

/// A company nobody set up: it signs up on the bare domain, confirms its email, connects its
/// own provider account (a wrong secret first), imports its people, takes the starter policy
/// and issues its first eSIM — every step in the browser, none on a command line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_company_signs_up_connects_its_provider_and_issues_its_first_esim_in_a_real_browser() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let smtp = FakeSmtp::start().await;
    let downloads = tempfile::tempdir().unwrap();
    let chrome = Chrome::start(BASE_DOMAIN, downloads.path()).await;
    let shots = artifacts().join("first-day");
    let port = w.addr.port();
    let wait = Duration::from_secs(15);

    chrome.goto(&format!("http://{BASE_DOMAIN}:{port}/")).await;
    chrome.wait_for_text("Create organisation", wait).await;
    for (field, value) in [
        ("organisation", "Initech"),
        ("slug", "initech"),
        ("currency", "USD"),
        ("name", "Bill Lumbergh"),
        ("email", "bill@initech.example"),
        ("password", "yeah if you could sign in"),
    ] {
        chrome
            .type_into(&format!("input[name={field}]"), value)
            .await;
    }
    chrome.click("button[type=submit]").await;
    chrome.wait_for_text("Check your email", wait).await;
    w.deliver_mail(&smtp).await;
    let link = smtp.wait_for("bill@initech.example").await.link().unwrap();
    let link = link.replacen("http://", "", 1);
    let (host, path) = link.split_once('/').unwrap();
    let host = host.split(':').next().unwrap();
    let origin = format!("http://{host}:{port}");
    assert_eq!(origin, format!("http://initech.{BASE_DOMAIN}:{port}"));
    chrome.goto(&format!("{origin}/{path}")).await;
    chrome.wait_for_text("Email confirmed", wait).await;
    chrome
        .type_into("input[name=email]", "bill@initech.example")
        .await;
    chrome
        .type_into("input[name=password]", "yeah if you could sign in")
        .await;
    chrome.click("button[type=submit]").await;
    chrome.wait_for_text("Getting started", wait).await;
    chrome.screenshot(&shots.join("1-checklist.png")).await;

    // The checklist's first step leads to the provider page; a wrong secret is named.
    chrome.click("a[href='/settings/provider']").await;
    chrome.wait_for_text("API credentials", wait).await;
    let trial = w.sim.trial_account();
    let connect = |secret: String| {
        let (chrome, trial) = (&chrome, &trial);
        async move {
            chrome
                .type_into("input[name=client_id]", &trial.client_id)
                .await;
            chrome.type_into("input[name=client_secret]", &secret).await;
            chrome
                .type_into("input[name=account_id]", &trial.account_id)
                .await;
            chrome.click("form.stack button[type=submit]").await;
        }
    };
    connect("not-the-secret".into()).await;
    chrome
        .wait_for_text("client id or secret is wrong", wait)
        .await;
    chrome.screenshot(&shots.join("2-wrong-secret.png")).await;
    connect(trial.client_secret.clone()).await;
    let tenant = w
        .lineup
        .tenant_by_slug(&lineup_core::organisation::tenant::Slug::parse("initech").unwrap())
        .await
        .unwrap()
        .unwrap()
        .id;
    // The click only sends the form: wait for the connection's answer, which syncs the plans.
    let synced_by = tokio::time::Instant::now() + wait;
    let plans = loop {
        let plans = w.lineup.plans(tenant).await.unwrap();
        if !plans.is_empty() {
            break plans;
        }
        assert!(
            tokio::time::Instant::now() < synced_by,
            "plans synced when the provider was connected"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    chrome.wait_for_text(&plans[0].name, wait).await;
    chrome.screenshot(&shots.join("3-plans.png")).await;

    let csv = downloads.path().join("people.csv");
    std::fs::write(
        &csv,
        "Work Email,First Name,Last Name,Department,Cost Center,Manager Email\r\n\
         bill@initech.example,Bill,Lumbergh,Management,CC-1,\r\n\
         peter@initech.example,Peter,Gibbons,Software,CC-7,bill@initech.example\r\n\
         milton@initech.example,Milton,Waddams,Basement,CC-9,peter@initech.example\r\n",
    )
    .unwrap();
    chrome.goto(&format!("{origin}/employees/import")).await;
    chrome.attach("input[type=file]", &csv).await;
    chrome.click("form.stack button[type=submit]").await;
    chrome.wait_for_text("Import 3 new", wait).await;
    chrome
        .click("form[action$='/commit'] button[type=submit]")
        .await;
    chrome.wait_for_text("Imported 3 rows", wait).await;

    chrome.goto(&format!("{origin}/policies")).await;
    chrome
        .click("form[action='/policies/starter'] button[type=submit]")
        .await;
    chrome.wait_for_text("Starter policy applied", wait).await;

    let peter = w
        .lineup
        .employees(tenant)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.email.as_str() == "peter@initech.example")
        .expect("Peter was imported");
    chrome.goto(&format!("{origin}/lines/new")).await;
    chrome
        .script(&format!(
            "document.querySelector('select[name=employee_id]').value = '{}'; \
             document.querySelector('select[name=plan_id]').value = '{}';",
            peter.id, plans[0].id
        ))
        .await;
    chrome.click("form.stack button[type=submit]").await;
    chrome
        .wait_for_text("Reveal activation code", Duration::from_secs(30))
        .await;
    chrome
        .click("form[action$='/reveal'] button[type=submit]")
        .await;
    chrome.wait_for_text("LPA:1$", wait).await;
    let qr_width = chrome
        .script("return document.querySelector('img[alt^=\"eSIM QR code\"]').naturalWidth;")
        .await;
    assert!(
        qr_width.as_u64().unwrap_or(0) > 100,
        "the QR code image decodes: {qr_width}"
    );
    chrome.screenshot(&shots.join("4-first-line.png")).await;

    // The line was ordered in Initech's own provider account, not the server's.
    let line = w.lineup.lines(tenant).await.unwrap().pop().expect("a line");
    let subscription = line.provider_subscription_id.expect("ordered");
    let own = w.lineup.provider_for(tenant).await.unwrap();
    own.get_subscription(&subscription).await.unwrap();
    assert!(matches!(
        w.lineup
            .shared_provider()
            .get_subscription(&subscription)
            .await,
        Err(ProviderError::NotFound(_))
    ));

    // Every step done: the checklist steps aside.
    chrome.goto(&format!("{origin}/")).await;
    chrome.wait_for_text("Live lines", wait).await;
    let overview = chrome.page_text().await;
    assert!(
        overview.contains("Getting started"),
        "chat is still to connect"
    );
    assert!(overview.contains("Connect Slack, Teams or Discord"));
}
