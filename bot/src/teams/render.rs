//! `lineup_core::messaging::chat_message::Message` → Adaptive Card 1.5, the two form cards, and the activity and
//! invoke-response envelopes they travel in.
//!
//! Buttons are `Action.Execute` with `verb` = the action id and `data` = `{action, value}`, so a
//! click comes back as an `adaptiveCard/action` invoke. A button with a confirmation question
//! becomes an `Action.ShowCard` holding the question and the real button. The QR image is an
//! `Image` with a `data:image/png;base64,…` URI (Teams renders those; no public URL needed).

use crate::text::{markdown, truncate};
use base64::Engine;
use lineup_core::messaging::chat_message::{ActionStyle, Message};
use serde_json::{Value, json};

use super::limits::{self, CARD_CONTENT_TYPE};

pub const CARD_SCHEMA: &str = "http://adaptivecards.io/schemas/adaptive-card.json";
pub const CARD_VERSION: &str = "1.5";
/// Verb (and `data.action`) of the request form's submit button.
pub const REQUEST_VERB: &str = "esim.request";
/// Verb (and `data.action`) of the deny-reason form's submit button.
pub const DENY_VERB: &str = "esim.deny_reason";
/// Input ids of the forms; they come back as keys of the submitted `data`.
pub const PLAN_INPUT: &str = "plan";
pub const REASON_INPUT: &str = "reason";
pub const DATE_INPUT: &str = "wanted_date";
pub const DENY_REASON_INPUT: &str = "deny_reason";
/// Longest reason accepted by the forms.
pub const MAX_REASON: usize = 1000;

/// Plain text for notifications and the card's `fallbackText`: title and text, `*` dropped.
pub fn summary(message: &Message) -> String {
    let text = match &message.title {
        Some(t) if !message.text.is_empty() => format!("{t}: {}", message.text),
        Some(t) => t.clone(),
        None => message.text.clone(),
    };
    truncate(&text.replace('*', ""), 500)
}

fn text_block(text: &str) -> Value {
    json!({"type": "TextBlock", "text": truncate(text, limits::MAX_TEXT_BLOCK), "wrap": true})
}

fn card(body: Vec<Value>, fallback: &str) -> Value {
    json!({
        "type": "AdaptiveCard",
        "$schema": CARD_SCHEMA,
        "version": CARD_VERSION,
        "fallbackText": truncate(fallback, 500),
        "msteams": {"width": "Full"},
        "body": body,
    })
}

fn style(s: ActionStyle) -> &'static str {
    match s {
        ActionStyle::Default => "default",
        ActionStyle::Primary => "positive",
        ActionStyle::Danger => "destructive",
    }
}

/// The data URI of a PNG.
pub fn png_data_uri(png: &[u8]) -> String {
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}

/// The Adaptive Card for a message.
pub fn message_card(message: &Message) -> Value {
    let mut body = Vec::new();
    if let Some(title) = message.title.as_deref().filter(|t| !t.trim().is_empty()) {
        let mut t = text_block(&truncate(title, 200));
        t["size"] = json!("Large");
        t["weight"] = json!("Bolder");
        body.push(t);
    }
    if !message.text.trim().is_empty() {
        body.push(text_block(&markdown(&message.text)));
    }
    if !message.fields.is_empty() {
        let facts: Vec<Value> = message
            .fields
            .iter()
            .map(|f| {
                json!({
                    "title": truncate(&f.label, 200),
                    "value": truncate(&f.value, 2000),
                })
            })
            .collect();
        body.push(json!({"type": "FactSet", "facts": facts}));
    }
    if let Some(img) = &message.image {
        body.push(json!({
            "type": "Image",
            "url": png_data_uri(&img.png),
            "altText": truncate(&img.alt, 500),
            "size": "Large",
            "horizontalAlignment": "Center",
        }));
    }
    for group in message.actions.chunks(limits::MAX_ACTIONS) {
        let actions: Vec<Value> = group
            .iter()
            .map(|a| {
                let title = match truncate(a.label.trim(), limits::MAX_ACTION_TITLE) {
                    t if t.is_empty() => a.id.clone(),
                    t => t,
                };
                let execute = json!({
                    "type": "Action.Execute",
                    "id": a.id,
                    "title": title,
                    "verb": a.id,
                    "data": {"action": a.id, "value": a.value},
                    "style": style(a.style),
                });
                match &a.confirm {
                    None => execute,
                    Some(question) => json!({
                        "type": "Action.ShowCard",
                        "id": format!("{}.confirm", a.id),
                        "title": title,
                        "style": style(a.style),
                        "card": {
                            "type": "AdaptiveCard",
                            "body": [text_block(&markdown(question))],
                            "actions": [execute],
                        },
                    }),
                }
            })
            .collect();
        body.push(json!({"type": "ActionSet", "actions": actions}));
    }
    if let Some(context) = message.context.as_deref().filter(|c| !c.trim().is_empty()) {
        let mut t = text_block(&markdown(context));
        t["size"] = json!("Small");
        t["isSubtle"] = json!(true);
        body.push(t);
    }
    if body.is_empty() {
        body.push(text_block("(empty message)"));
    }
    card(body, &summary(message))
}

/// What a form showed and what the person typed, to show the form again after an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormValues {
    pub plan: String,
    pub reason: String,
    pub wanted_date: String,
}

fn error_block(label: &str, message: &str) -> Value {
    json!({
        "type": "TextBlock",
        "text": truncate(&format!("**{label}**: {message}"), 2000),
        "wrap": true,
        "color": "Attention",
        "id": format!("error.{label}"),
    })
}

/// The "request a line" form. `error` is `(field, message)` from
/// [`crate::chat::FormAnswer::FieldError`]; it is shown under that field. The plan list rides in
/// the submit data so the form can be shown again without remembering anything.
pub fn request_form_card(
    plans: &[(String, String)],
    values: &FormValues,
    error: Option<(&str, &str)>,
) -> Value {
    let choices: Vec<Value> = plans
        .iter()
        .take(100)
        .map(|(id, label)| json!({"title": truncate(label, 100), "value": id}))
        .collect();
    let mut plan = json!({
        "type": "Input.ChoiceSet",
        "id": PLAN_INPUT,
        "label": "Plan",
        "style": "compact",
        "isRequired": true,
        "errorMessage": "Choose a plan",
        "placeholder": "Choose a plan",
        "choices": choices,
    });
    if !values.plan.is_empty() {
        plan["value"] = json!(values.plan);
    }
    let mut reason = json!({
        "type": "Input.Text",
        "id": REASON_INPUT,
        "label": "Why do you need it?",
        "isMultiline": true,
        "isRequired": true,
        "errorMessage": "Tell your approver why",
        "maxLength": MAX_REASON,
        "placeholder": "e.g. on-call phone for the field team",
    });
    if !values.reason.is_empty() {
        reason["value"] = json!(truncate(&values.reason, MAX_REASON));
    }
    let mut date = json!({"type": "Input.Date", "id": DATE_INPUT, "label": "Wanted by (optional)"});
    if !values.wanted_date.is_empty() {
        date["value"] = json!(values.wanted_date);
    }
    let mut body = vec![
        json!({"type": "TextBlock", "text": "Request an eSIM line", "size": "Large", "weight": "Bolder", "wrap": true}),
    ];
    for (field, label, input) in [
        ("plan", "Plan", plan),
        ("reason", "Why do you need it?", reason),
        ("wanted_date", "Wanted by", date),
    ] {
        body.push(input);
        if let Some((f, m)) = error
            && f == field
        {
            body.push(error_block(label, m));
        }
    }
    if let Some((f, m)) = error
        && !["plan", "reason", "wanted_date"].contains(&f)
    {
        body.push(error_block(f, m));
    }
    let plan_list: Vec<Value> = plans.iter().take(100).map(|(i, l)| json!([i, l])).collect();
    body.push(json!({
        "type": "ActionSet",
        "actions": [{
            "type": "Action.Execute",
            "id": REQUEST_VERB,
            "title": "Send request",
            "verb": REQUEST_VERB,
            "style": "positive",
            "data": {"action": REQUEST_VERB, "plans": plan_list},
        }],
    }));
    card(body, "Request an eSIM line")
}

/// The "why do you deny?" form for one request.
pub fn deny_form_card(request_id: &str, reason: &str, error: Option<&str>) -> Value {
    let mut input = json!({
        "type": "Input.Text",
        "id": DENY_REASON_INPUT,
        "label": "Reason (shown to the requester)",
        "isMultiline": true,
        "isRequired": true,
        "errorMessage": "Give a reason",
        "maxLength": MAX_REASON,
    });
    if !reason.is_empty() {
        input["value"] = json!(truncate(reason, MAX_REASON));
    }
    let mut body = vec![
        json!({"type": "TextBlock", "text": "Deny request", "size": "Large", "weight": "Bolder", "wrap": true}),
        input,
    ];
    if let Some(m) = error {
        body.push(error_block("Reason", m));
    }
    body.push(json!({
        "type": "ActionSet",
        "actions": [{
            "type": "Action.Execute",
            "id": DENY_VERB,
            "title": "Deny",
            "verb": DENY_VERB,
            "style": "destructive",
            "data": {"action": DENY_VERB, "value": request_id},
        }],
    }));
    card(body, "Deny request")
}

/// An attachment holding a card.
pub fn attachment(card: &Value) -> Value {
    json!({"contentType": CARD_CONTENT_TYPE, "content": card})
}

/// A `message` activity carrying one card.
pub fn card_activity(card: &Value) -> Value {
    let mut a = json!({"type": "message", "attachments": [attachment(card)]});
    if let Some(s) = card.get("fallbackText").and_then(Value::as_str) {
        a["summary"] = json!(s);
    }
    a
}

/// A `message` activity for a core message.
pub fn message_activity(message: &Message) -> Value {
    card_activity(&message_card(message))
}

/// A plain-text `message` activity.
pub fn text_activity(text: &str) -> Value {
    json!({"type": "message", "text": truncate(text, 4000), "textFormat": "markdown"})
}

/// The body of an `adaptiveCard/action` invoke response that replaces the card.
pub fn invoke_card_response(card: &Value) -> Value {
    json!({"statusCode": 200, "type": CARD_CONTENT_TYPE, "value": card})
}

/// The body of an `adaptiveCard/action` invoke response that leaves the card as it is and
/// shows a short message to the person who clicked.
pub fn invoke_message_response(text: &str) -> Value {
    json!({"statusCode": 200, "type": "application/vnd.microsoft.activity.message", "value": truncate(text, 500)})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bold_becomes_double_star() {
        assert_eq!(markdown("a *b* c"), "a **b** c");
        assert_eq!(markdown("*x* and *y z*"), "**x** and **y z**");
        assert_eq!(markdown("2 * 3 * 4"), "2 * 3 * 4");
        assert_eq!(markdown("*open\nclose*"), "*open\nclose*");
        assert_eq!(markdown("**"), "**");
        assert_eq!(markdown("é *ü*"), "é **ü**");
    }
}
