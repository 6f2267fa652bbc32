//! The same behaviour table on every chat platform: each scenario in `harness/mod.rs` runs
//! against each platform's real routes and its fake API.

mod slack {
    crate::scenarios!(crate::harness::slack::slack);
}

mod discord {
    crate::scenarios!(crate::harness::discord::discord);
}

mod teams {
    crate::scenarios!(crate::harness::teams::teams);
}
