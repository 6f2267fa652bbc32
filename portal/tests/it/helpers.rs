//! What several areas' tests share: acme's host name and the world with spend to report on.

use lineup_testkit::TestStore;
use lineup_testkit::portal::PortalWorld;
use lineup_testkit::spend::{SpendFixture, seed_spend};

/// Acme's portal host.
pub const ACME: &str = "acme.lineup.test";

/// The portal world with three months of spend, some of it globex's (seen by Gina).
pub async fn spend_world(store: TestStore) -> (PortalWorld, SpendFixture) {
    let w = PortalWorld::new(store).await;
    let f = seed_spend(&w, Some((w.globex, &w.gina))).await;
    (w, f)
}
