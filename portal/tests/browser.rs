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
