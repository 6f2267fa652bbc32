//! SQLite has one writer at a time, and a usage sync holds the write lock for a batch at a
//! time. Viewing a page only reads, so no page may queue behind that writer: not the host
//! and session look-ups every page starts with, and not the page's own lists.

use lineup_portal::{Permission, ROUTES, SiteKind};
use lineup_testkit::portal::PortalWorld;
use lineup_testkit::sqlite_store;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_answers_while_another_connection_holds_the_write_lock() {
    let w = PortalWorld::new(sqlite_store().await).await;
    let owner = w.signed_in(&w.olivia.email.to_string()).await;
    let pages: Vec<&str> = ROUTES
        .iter()
        .filter(|r| {
            r.site == SiteKind::Tenant
                && r.method == "GET"
                && r.permission != Permission::Public
                && !r.path.contains('{')
        })
        .map(|r| r.path)
        .collect();
    assert!(
        pages.len() > 20,
        "the route table lists the pages: {pages:?}"
    );

    let writer = w.store.tenant(w.tenant).await.unwrap();
    let mut slow = Vec::new();
    for page in &pages {
        let started = Instant::now();
        let answer = tokio::time::timeout(Duration::from_secs(3), owner.get(page)).await;
        match answer {
            // Answered is what counts; some pages answer 409 in this tenant (no Teams app).
            Ok(answer) => assert!(
                !answer.status.is_server_error(),
                "{page}: {} {}",
                answer.status,
                answer.body
            ),
            Err(_) => slow.push(format!("{page} (waited {:?})", started.elapsed())),
        }
    }
    drop(writer);
    assert!(
        slow.is_empty(),
        "these pages queued behind the writer: {slow:?}"
    );
}
