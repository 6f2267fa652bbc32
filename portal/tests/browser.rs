//! The portal in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`) drives the pages a new admin uses first. Screenshots are kept in
//! `target/browser-artifacts/` for people to look at.

use std::path::PathBuf;
use std::time::Duration;

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
