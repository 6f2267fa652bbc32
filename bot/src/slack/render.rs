//! `lineup_core::messaging::chat_message::Message` → Block Kit JSON, and the modals `/esim` opens.
//!
//! Everything is a `serde_json::Value` in Slack's wire shape, so what the limits checker sees is
//! exactly what is sent. Texts are cut to Slack's limits here (with "…") rather than rejected;
//! the message's image is not rendered as a block: the delivery code uploads it with
//! [`crate::slack::SlackClient::upload_png`] (an `image` block needs a public URL).

use crate::text::truncate;
use lineup_core::messaging::chat_message::{ActionStyle, Message};
use serde_json::{Value, json};

use super::limits;

/// `callback_id` of the modal opened by `/esim request`.
pub const REQUEST_CALLBACK_ID: &str = "esim.request";
/// `callback_id` of the modal asking an approver why they deny.
pub const DENY_CALLBACK_ID: &str = "esim.deny_reason";
/// Keys of [`crate::slack::ViewSubmission::values`] (`block_id.action_id`).
pub const REQUEST_PLAN_KEY: &str = "plan.plan";
pub const REQUEST_REASON_KEY: &str = "reason.reason";
pub const REQUEST_DATE_KEY: &str = "wanted_date.wanted_date";
pub const DENY_REASON_KEY: &str = "deny_reason.deny_reason";

/// Escapes the three characters Slack's mrkdwn treats as control characters. `*bold*` (the only
/// markup core emits) passes through.
pub fn escape_mrkdwn(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

fn plain(text: &str, max: usize) -> Value {
    json!({"type": "plain_text", "text": truncate(text, max), "emoji": true})
}

fn mrkdwn(text: &str) -> Value {
    json!({"type": "mrkdwn", "text": text})
}

/// Splits escaped mrkdwn into chunks of at most `max` characters, preferring line breaks, without
/// cutting an escape sequence in half.
fn chunks(text: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest: Vec<char> = text.chars().collect();
    while rest.len() > max {
        let window = &rest[..max];
        let mut cut = window
            .iter()
            .rposition(|c| *c == '\n')
            .filter(|p| *p > max / 2)
            .map(|p| p + 1)
            .unwrap_or(max);
        // Do not split "&amp;" and friends.
        if let Some(amp) = window[..cut].iter().rposition(|c| *c == '&')
            && cut - amp < 5
            && !window[amp..cut].contains(&';')
        {
            cut = amp.max(1);
        }
        out.push(rest[..cut].iter().collect());
        rest.drain(..cut);
    }
    if !rest.is_empty() || out.is_empty() {
        out.push(rest.into_iter().collect());
    }
    out
}

/// The plain-text fallback Slack shows in notifications (`text` beside `blocks`).
pub fn fallback_text(message: &Message) -> String {
    let text = match &message.title {
        Some(t) if !message.text.is_empty() => format!("{t}: {}", message.text),
        Some(t) => t.clone(),
        None => message.text.clone(),
    };
    truncate(&escape_mrkdwn(&text), limits::MAX_MESSAGE_TEXT)
}

/// The Block Kit blocks for a message.
pub fn message_blocks(message: &Message) -> Vec<Value> {
    let mut blocks = Vec::new();
    if let Some(title) = &message.title {
        blocks.push(json!({"type": "header", "text": plain(title, limits::MAX_HEADER_TEXT)}));
    }
    if !message.text.is_empty() {
        for chunk in chunks(&escape_mrkdwn(&message.text), limits::MAX_SECTION_TEXT) {
            blocks.push(json!({"type": "section", "text": mrkdwn(&chunk)}));
        }
    }
    for group in message.fields.chunks(limits::MAX_FIELDS) {
        let fields: Vec<Value> = group
            .iter()
            .map(|f| {
                let text = format!("*{}*\n{}", escape_mrkdwn(&f.label), escape_mrkdwn(&f.value));
                mrkdwn(&truncate(&text, limits::MAX_FIELD_TEXT))
            })
            .collect();
        blocks.push(json!({"type": "section", "fields": fields}));
    }
    for group in message.actions.chunks(limits::MAX_ACTIONS_ELEMENTS) {
        let elements: Vec<Value> = group
            .iter()
            .map(|a| {
                let mut b = json!({
                    "type": "button",
                    "action_id": a.id,
                    "text": plain(&a.label, limits::MAX_BUTTON_TEXT),
                    "value": a.value,
                });
                match a.style {
                    ActionStyle::Default => {}
                    ActionStyle::Primary => b["style"] = json!("primary"),
                    ActionStyle::Danger => b["style"] = json!("danger"),
                }
                if let Some(question) = &a.confirm {
                    let mut c = json!({
                        "title": plain("Are you sure?", limits::MAX_CONFIRM_TITLE),
                        "text": mrkdwn(&truncate(&escape_mrkdwn(question), limits::MAX_CONFIRM_TEXT)),
                        "confirm": plain(&a.label, limits::MAX_CONFIRM_BUTTON),
                        "deny": plain("Cancel", limits::MAX_CONFIRM_BUTTON),
                    });
                    if a.style == ActionStyle::Danger {
                        c["style"] = json!("danger");
                    }
                    b["confirm"] = c;
                }
                b
            })
            .collect();
        blocks.push(json!({"type": "actions", "elements": elements}));
    }
    if let Some(context) = &message.context {
        blocks.push(json!({
            "type": "context",
            "elements": [mrkdwn(&truncate(&escape_mrkdwn(context), limits::MAX_SECTION_TEXT))],
        }));
    }
    blocks
}

/// `{"text": fallback, "blocks": [...]}`: the body for `chat.postMessage` (add `channel`), a
/// `response_url` or a slash command's reply.
pub fn message_payload(message: &Message) -> Value {
    json!({"text": fallback_text(message), "blocks": message_blocks(message)})
}

/// The modal `/esim request` opens: plan, reason, wanted date.
pub fn request_modal(plans: &[(String, String)], private_metadata: &str) -> Value {
    let options: Vec<Value> = plans
        .iter()
        .take(limits::MAX_SELECT_OPTIONS)
        .map(|(id, label)| json!({"text": plain(label, limits::MAX_OPTION_TEXT), "value": id}))
        .collect();
    json!({
        "type": "modal",
        "callback_id": REQUEST_CALLBACK_ID,
        "title": plain("Request an eSIM line", limits::MAX_VIEW_TITLE),
        "submit": plain("Send request", limits::MAX_VIEW_BUTTON),
        "close": plain("Cancel", limits::MAX_VIEW_BUTTON),
        "private_metadata": private_metadata,
        "blocks": [
            {
                "type": "input",
                "block_id": "plan",
                "label": plain("Plan", limits::MAX_INPUT_LABEL),
                "element": {
                    "type": "static_select",
                    "action_id": "plan",
                    "placeholder": plain("Choose a plan", limits::MAX_PLACEHOLDER),
                    "options": options,
                },
            },
            {
                "type": "input",
                "block_id": "reason",
                "label": plain("Why do you need it?", limits::MAX_INPUT_LABEL),
                "element": {
                    "type": "plain_text_input",
                    "action_id": "reason",
                    "multiline": true,
                    "max_length": 1000,
                    "placeholder": plain("e.g. on-call phone for the field team", limits::MAX_PLACEHOLDER),
                },
            },
            {
                "type": "input",
                "block_id": "wanted_date",
                "optional": true,
                "label": plain("Wanted by", limits::MAX_INPUT_LABEL),
                "element": {"type": "datepicker", "action_id": "wanted_date"},
            },
        ],
    })
}

/// The modal asking an approver for the reason of a denial.
pub fn deny_reason_modal(private_metadata: &str) -> Value {
    json!({
        "type": "modal",
        "callback_id": DENY_CALLBACK_ID,
        "title": plain("Deny request", limits::MAX_VIEW_TITLE),
        "submit": plain("Deny", limits::MAX_VIEW_BUTTON),
        "close": plain("Cancel", limits::MAX_VIEW_BUTTON),
        "private_metadata": private_metadata,
        "blocks": [
            {
                "type": "input",
                "block_id": "deny_reason",
                "label": plain("Reason (shown to the requester)", limits::MAX_INPUT_LABEL),
                "element": {
                    "type": "plain_text_input",
                    "action_id": "deny_reason",
                    "multiline": true,
                    "max_length": 1000,
                },
            },
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_chunks() {
        assert_eq!(escape_mrkdwn("a<b>&c *d*"), "a&lt;b&gt;&amp;c *d*");
        let long = "x&y ".repeat(2000);
        for c in chunks(&escape_mrkdwn(&long), 3000) {
            assert!(c.chars().count() <= 3000);
            assert!(!c.ends_with("&am") && !c.ends_with('&'));
        }
        assert_eq!(chunks("", 10), vec![String::new()]);
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
