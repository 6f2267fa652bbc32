//! Alerts to finance: what happened, the numbers, and the actions finance can take.

use crate::notify::{Action, ActionStyle, Message};
use crate::tenant::Tenant;

pub const SUSPEND_LINE: &str = "alert.suspend_line";
pub const RAISE_CAP: &str = "alert.raise_cap";
pub const SNOOZE: &str = "alert.snooze";

/// A harmless alert an admin sends to check that finance's channel receives alerts with
/// their buttons. The buttons carry no subject, so clicking them changes nothing.
pub fn test_alert(tenant: &Tenant) -> Message {
    let button = |id: &str, label: &str, style| Action {
        id: id.into(),
        label: label.into(),
        style,
        value: "test".into(),
        confirm: None,
    };
    Message {
        title: Some("Test alert".into()),
        text: format!(
            "This is a test from Lineup for *{}*. Budget and usage alerts will arrive here with \
             buttons like these.",
            tenant.name
        ),
        actions: vec![
            button(SUSPEND_LINE, "Suspend line", ActionStyle::Danger),
            button(RAISE_CAP, "Raise cap", ActionStyle::Primary),
            button(SNOOZE, "Snooze 7 days", ActionStyle::Default),
        ],
        context: Some("No line was affected.".into()),
        ..Message::default()
    }
    .field("Organisation", tenant.name.clone())
    .field("Currency", tenant.currency.to_string())
}
