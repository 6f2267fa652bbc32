//! Shared test set-up: a throwaway PostgreSQL cluster started from the machine's own binaries,
//! and fresh stores on both backends so every store test runs on SQLite and PostgreSQL.

// A test harness may unwrap: a panic here is the failure report, not a production crash.
#![allow(clippy::unwrap_used)]

pub mod fake_discord;
pub mod fake_oidc;
pub mod fake_slack;
pub mod fake_smtp;
pub mod fake_teams;
pub mod portal;
mod postgres;
pub mod spend;
pub mod webdriver;
pub mod world;

pub use postgres::fresh_postgres_url;

use lineup_core::store::Store;

/// A migrated store plus whatever keeps it alive (the SQLite file's directory).
pub struct TestStore {
    pub store: Store,
    _dir: Option<tempfile::TempDir>,
}

impl std::ops::Deref for TestStore {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

pub async fn sqlite_store() -> TestStore {
    let dir = tempfile::tempdir().expect("create a temp dir for SQLite");
    let url = format!("sqlite://{}", dir.path().join("lineup.db").display());
    let store = Store::connect(&url).await.expect("open SQLite");
    store.migrate().await.expect("migrate SQLite");
    TestStore {
        store,
        _dir: Some(dir),
    }
}

pub async fn postgres_store() -> TestStore {
    let store = Store::connect(&fresh_postgres_url().await)
        .await
        .expect("connect to the throwaway PostgreSQL");
    store.migrate().await.expect("migrate PostgreSQL");
    TestStore { store, _dir: None }
}

/// Declares one test per backend running the same body:
/// `both_backends!(name, |store| async move { ... });` gives `name::sqlite` and
/// `name::postgres`. `store` is a `TestStore` (derefs to `Store`).
#[macro_export]
macro_rules! both_backends {
    ($name:ident, |$store:ident| $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $store = $crate::sqlite_store().await;
                $body.await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let $store = $crate::postgres_store().await;
                $body.await
            }
        }
    };
}
