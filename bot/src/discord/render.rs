//! [`Message`] → Discord message JSON (one embed + action rows of buttons), the interaction
//! responses Lineup sends, and its two modals.
//!
//! The request form: Discord modals hold text inputs only (no selects in the API version
//! serenity 0.12 speaks), so `/esim request` answers with an ephemeral message holding a string
//! select of plans ([`plan_select`], `custom_id` [`PLAN_SELECT_ID`]); choosing a plan opens the
//! modal [`request_modal`] (reason, wanted date) whose `custom_id` carries the plan id. The
//! plan is therefore picked from a real list, never typed.
//!
//! Everything is clipped to Discord's limits (see [`super::limits`]) except `custom_id`s, which
//! cannot be shortened without breaking them: an over-long one is left for the limits check to
//! refuse.

use crate::text::{markdown, truncate};
use lineup_core::messaging::chat_message::{ActionStyle, Message};
use serde_json::{Value, json};

use super::limits;

/// `flags` bit of an ephemeral message.
pub const EPHEMERAL: u64 = 1 << 6;
/// Interaction callback types.
pub const PONG: u64 = 1;
pub const CHANNEL_MESSAGE: u64 = 4;
pub const DEFERRED_CHANNEL_MESSAGE: u64 = 5;
pub const DEFERRED_UPDATE_MESSAGE: u64 = 6;
pub const UPDATE_MESSAGE: u64 = 7;
pub const MODAL: u64 = 9;

pub const PLAN_SELECT_ID: &str = "~plan";
pub const DENY_PREFIX: &str = "~deny|";
pub const REQUEST_PREFIX: &str = "~request|";
/// Text-input `custom_id`s, the same names as [`crate::chat::FormAnswer::FieldError`] fields.
pub const FIELD_REASON: &str = "reason";
pub const FIELD_WANTED_DATE: &str = "wanted_date";
pub const FIELD_DENY_REASON: &str = "deny_reason";

fn button_style(style: ActionStyle) -> u64 {
    match style {
        ActionStyle::Primary => 1,
        ActionStyle::Default => 2,
        ActionStyle::Danger => 4,
    }
}

/// The `custom_id` of a core action: `<action_id>|<value>`, prefixed `@<guild>|` in DMs and
/// `?` when it asks before acting.
pub fn action_custom_id(
    dm_guild: Option<&str>,
    action_id: &str,
    value: &str,
    confirm: bool,
) -> String {
    let mut id = String::new();
    if confirm {
        id.push('?');
    }
    if let Some(g) = dm_guild {
        id.push('@');
        id.push_str(g);
        id.push('|');
    }
    id.push_str(action_id);
    id.push('|');
    id.push_str(value);
    id
}

/// The embed of a message (title, description with `**bold**`, inline fields, footer).
pub fn embed(m: &Message) -> Value {
    let mut e = serde_json::Map::new();
    let mut budget = limits::MAX_EMBED_TOTAL;
    if let Some(title) = m.title.as_deref().filter(|t| !t.is_empty()) {
        let t = truncate(title, limits::MAX_EMBED_TITLE);
        budget -= t.chars().count();
        e.insert("title".into(), json!(t));
    }
    let footer = m
        .context
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(|c| truncate(c, limits::MAX_EMBED_FOOTER));
    if let Some(f) = &footer {
        budget = budget.saturating_sub(f.chars().count());
    }
    let mut fields = Vec::new();
    for f in m.fields.iter().take(limits::MAX_EMBED_FIELDS) {
        let name = truncate(
            if f.label.is_empty() {
                "\u{200b}"
            } else {
                &f.label
            },
            limits::MAX_FIELD_NAME,
        );
        let value = truncate(
            &markdown(if f.value.is_empty() { "—" } else { &f.value }),
            limits::MAX_FIELD_VALUE,
        );
        let size = name.chars().count() + value.chars().count();
        if size > budget {
            break;
        }
        budget -= size;
        fields.push(json!({"name": name, "value": value, "inline": true}));
    }
    let description = markdown(&m.text);
    if !description.trim().is_empty() {
        e.insert(
            "description".into(),
            json!(truncate(
                &description,
                limits::MAX_EMBED_DESCRIPTION.min(budget)
            )),
        );
    }
    if !fields.is_empty() {
        e.insert("fields".into(), Value::Array(fields));
    }
    if let Some(f) = footer {
        e.insert("footer".into(), json!({"text": f}));
    }
    if let Some(img) = &m.image {
        e.insert(
            "image".into(),
            json!({"url": format!("attachment://{}", img.filename)}),
        );
    }
    Value::Object(e)
}

/// Action rows of up to five buttons each, at most five rows.
pub fn components(m: &Message, dm_guild: Option<&str>) -> Vec<Value> {
    let buttons: Vec<Value> = m
        .actions
        .iter()
        .take(limits::MAX_ROWS * limits::MAX_BUTTONS_PER_ROW)
        .map(|a| {
            json!({
                "type": 2,
                "style": button_style(a.style),
                "label": truncate(&a.label, limits::MAX_BUTTON_LABEL),
                "custom_id": action_custom_id(dm_guild, &a.id, &a.value, a.confirm.is_some()),
            })
        })
        .collect();
    buttons
        .chunks(limits::MAX_BUTTONS_PER_ROW)
        .map(|row| json!({"type": 1, "components": row}))
        .collect()
}

/// A message body for create/edit message, follow-ups and `type 4` data. `dm_guild` is the
/// guild to stamp into button ids when the message goes to a DM. With an image the body
/// declares `attachments[0]`; send the PNG as `files[0]`.
pub fn message_payload(m: &Message, dm_guild: Option<&str>) -> Value {
    let mut body = json!({
        "content": "",
        "embeds": [embed(m)],
        "components": components(m, dm_guild),
        "allowed_mentions": {"parse": []},
    });
    if let Some(img) = &m.image {
        body["attachments"] = json!([{
            "id": 0,
            "filename": img.filename,
            "description": truncate(&img.alt, limits::MAX_ATTACHMENT_DESCRIPTION),
        }]);
    }
    body
}

/// An ephemeral message with plain text.
pub fn ephemeral_text(text: &str) -> Value {
    json!({
        "content": truncate(&markdown(text), limits::MAX_CONTENT),
        "flags": EPHEMERAL,
        "allowed_mentions": {"parse": []},
    })
}

/// An ephemeral message rendering `m` (its image is not included: see `routes`).
pub fn ephemeral_message(m: &Message) -> Value {
    let mut body = message_payload(m, None);
    body["flags"] = json!(EPHEMERAL);
    if let Some(o) = body.as_object_mut() {
        o.remove("attachments");
    }
    if let Some(e) = body["embeds"][0].as_object_mut() {
        e.remove("image");
    }
    body
}

/// `{"type": 4, "data": data}`.
pub fn respond_message(data: Value) -> Value {
    json!({"type": CHANNEL_MESSAGE, "data": data})
}

/// `{"type": 9, "data": modal}`.
pub fn respond_modal(modal: Value) -> Value {
    json!({"type": MODAL, "data": modal})
}

/// `{"type": 5, "data": {"flags": 64}}`: "thinking…", only the invoker sees it.
pub fn respond_deferred_ephemeral() -> Value {
    json!({"type": DEFERRED_CHANNEL_MESSAGE, "data": {"flags": EPHEMERAL}})
}

/// `{"type": 6}`: acknowledge a component without changing its message.
pub fn respond_deferred_update() -> Value {
    json!({"type": DEFERRED_UPDATE_MESSAGE})
}

/// The first step of the request form: an ephemeral message with a select of plans
/// (at most 25, Discord's limit; the rest are dropped).
pub fn plan_select(plans: &[(String, String)]) -> Value {
    if plans.is_empty() {
        return ephemeral_text(
            "There are no plans you can request right now. Ask your Lineup admin.",
        );
    }
    let options: Vec<Value> = plans
        .iter()
        .take(limits::MAX_SELECT_OPTIONS)
        .map(|(id, label)| {
            json!({
                "label": truncate(label, limits::MAX_OPTION_LABEL),
                "value": id,
            })
        })
        .collect();
    json!({
        "content": "**Request an eSIM line** — pick a plan; a form for the reason and date opens next.",
        "flags": EPHEMERAL,
        "components": [{"type": 1, "components": [{
            "type": 3,
            "custom_id": PLAN_SELECT_ID,
            "placeholder": "Choose a plan",
            "min_values": 1,
            "max_values": 1,
            "options": options,
        }]}],
        "allowed_mentions": {"parse": []},
    })
}

fn text_input(
    id: &str,
    label: &str,
    paragraph: bool,
    required: bool,
    placeholder: &str,
    max: u64,
) -> Value {
    json!({"type": 1, "components": [{
        "type": 4,
        "custom_id": id,
        "label": truncate(label, limits::MAX_INPUT_LABEL),
        "style": if paragraph { 2 } else { 1 },
        "required": required,
        "placeholder": truncate(placeholder, limits::MAX_INPUT_PLACEHOLDER),
        "max_length": max,
    }]})
}

/// The request-form modal for a chosen plan (reason, wanted date).
pub fn request_modal(plan_id: &str, plan_label: Option<&str>) -> Value {
    let title = match plan_label {
        Some(l) => truncate(&format!("Request: {l}"), limits::MAX_MODAL_TITLE),
        None => "Request an eSIM line".to_string(),
    };
    json!({
        "custom_id": format!("{REQUEST_PREFIX}{plan_id}"),
        "title": title,
        "components": [
            text_input(FIELD_REASON, "Why do you need it?", true, true, "e.g. on-call phone for the field team", 1000),
            text_input(FIELD_WANTED_DATE, "Wanted from (YYYY-MM-DD, optional)", false, false, "2026-12-01", 10),
        ],
    })
}

/// The "why do you deny?" modal.
pub fn deny_modal(request_id: &str) -> Value {
    json!({
        "custom_id": format!("{DENY_PREFIX}{request_id}"),
        "title": "Deny the request",
        "components": [
            text_input(FIELD_DENY_REASON, "Reason (the requester sees it)", true, true, "e.g. budget exhausted this quarter", 1000),
        ],
    })
}

/// A message with one button that opens the deny modal (when a click's answer came too late
/// to open the modal directly).
pub fn open_deny_prompt(request_id: &str) -> Value {
    json!({
        "content": "Tell the requester why you deny it:",
        "flags": EPHEMERAL,
        "components": [{"type": 1, "components": [{
            "type": 2, "style": 4, "label": "Give a reason",
            "custom_id": format!("{DENY_PREFIX}{request_id}"),
        }]}],
        "allowed_mentions": {"parse": []},
    })
}

/// "Are you sure?" for an action with `confirm`: the button carries the real action id.
pub fn confirm_prompt(question: &str, label: &str, custom_id: &str) -> Value {
    json!({
        "content": truncate(&markdown(question), limits::MAX_CONTENT),
        "flags": EPHEMERAL,
        "components": [{"type": 1, "components": [{
            "type": 2, "style": 4,
            "label": truncate(&format!("Yes, {label}"), limits::MAX_BUTTON_LABEL),
            "custom_id": custom_id,
        }]}],
        "allowed_mentions": {"parse": []},
    })
}

/// Discord modals cannot show an error at a field: the error comes as an ephemeral message
/// naming the field.
pub fn field_error(field: &str, message: &str) -> Value {
    let name = match field {
        "plan" => "Plan",
        FIELD_REASON => "Reason",
        FIELD_WANTED_DATE => "Wanted date",
        FIELD_DENY_REASON => "Deny reason",
        other => other,
    };
    ephemeral_text(&format!(
        "**{name}:** {message}\nRun the command again to retry."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lineup_core::messaging::chat_message::{Action, Image};

    #[test]
    fn bold_is_doubled_and_lone_stars_kept() {
        assert_eq!(markdown("*Approved* by *Ann*"), "**Approved** by **Ann**");
        assert_eq!(markdown("5 * 3 = 15"), "5 * 3 = 15");
        assert_eq!(markdown("a *b\nc* d"), "a *b\nc* d");
        assert_eq!(markdown("**x**"), "**x**");
    }

    #[test]
    fn message_renders_embed_buttons_and_image() {
        let mut m = Message::text("*Ann* asks for a line").field("Plan", "EU 10 GB");
        m.title = Some("New request".into());
        m.context = Some("req r-1".into());
        m.actions = (0..7)
            .map(|i| Action {
                id: format!("a.{i}"),
                label: format!("B{i}"),
                style: if i == 0 {
                    ActionStyle::Primary
                } else {
                    ActionStyle::Danger
                },
                value: "r-1".into(),
                confirm: (i == 6).then(|| "Sure?".into()),
            })
            .collect();
        m.image = Some(Image {
            png: vec![1, 2],
            alt: "QR".into(),
            filename: "qr.png".into(),
        });
        let p = message_payload(&m, Some("55"));
        assert_eq!(p["embeds"][0]["description"], "**Ann** asks for a line");
        assert_eq!(p["embeds"][0]["fields"][0]["inline"], true);
        assert_eq!(p["embeds"][0]["footer"]["text"], "req r-1");
        assert_eq!(p["embeds"][0]["image"]["url"], "attachment://qr.png");
        assert_eq!(p["attachments"][0]["filename"], "qr.png");
        let rows = p["components"].as_array().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0]["components"].as_array().unwrap().len(), 5);
        assert_eq!(rows[0]["components"][0]["style"], 1);
        assert_eq!(rows[0]["components"][0]["custom_id"], "@55|a.0|r-1");
        assert_eq!(rows[1]["components"][1]["custom_id"], "?@55|a.6|r-1");
        limits::check_message(&p).unwrap();
    }
}
