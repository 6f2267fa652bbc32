//! Discord interaction payloads → what the adapter does with them.
//!
//! Parsed with serde into small lenient structs rather than serenity's
//! `model::application::Interaction`: serenity 0.12 requires fields Discord adds or drops over
//! time (`locale`, `entitlements`, `authorizing_integration_owners`, …) and a missing one would
//! turn a valid interaction into a 400. Only what Lineup reads is parsed here; the tests check
//! that the same fixtures also parse with serenity's models.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// Interaction types (Discord `InteractionType`).
pub const PING: u64 = 1;
pub const APPLICATION_COMMAND: u64 = 2;
pub const MESSAGE_COMPONENT: u64 = 3;
pub const MODAL_SUBMIT: u64 = 5;

/// Who and where, common to every interaction but PING.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    /// The interaction id (also the dedupe key of what it starts).
    pub id: String,
    /// The interaction token: answers via webhooks for 15 minutes.
    pub token: String,
    pub application_id: String,
    /// `None` in a DM.
    pub guild_id: Option<String>,
    pub channel_id: Option<String>,
    /// `member.user.id` in a guild, `user.id` in a DM.
    pub user_id: String,
    /// The message a component or a component-opened modal belongs to.
    pub message_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Inbound {
    Ping,
    /// `/esim …`, rebuilt as the text a person would type after `/esim`.
    Command {
        ctx: Context,
        name: String,
        text: String,
    },
    /// A button or select: its `custom_id` and the selected values (selects only).
    Component {
        ctx: Context,
        custom_id: String,
        values: Vec<String>,
        /// The clicked button's label, read from the message it sits on.
        label: Option<String>,
    },
    /// A submitted modal: its `custom_id` and text inputs by `custom_id`.
    ModalSubmit {
        ctx: Context,
        custom_id: String,
        fields: BTreeMap<String, String>,
    },
    Other {
        kind: u64,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("not an interaction: {0}")]
    Json(#[from] serde_json::Error),
    #[error("interaction without {0}")]
    Missing(&'static str),
}

#[derive(Deserialize)]
struct Raw {
    #[serde(rename = "type")]
    kind: u64,
    #[serde(default)]
    id: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    application_id: String,
    guild_id: Option<String>,
    channel_id: Option<String>,
    member: Option<RawMember>,
    user: Option<RawUser>,
    #[serde(default)]
    data: Value,
    message: Option<RawMessage>,
}

#[derive(Deserialize)]
struct RawMember {
    user: Option<RawUser>,
}

#[derive(Deserialize)]
struct RawUser {
    id: String,
}

#[derive(Deserialize)]
struct RawMessage {
    id: String,
    #[serde(default)]
    components: Value,
}

/// The label of the component with `custom_id` among a message's action rows.
fn label_of(components: &Value, custom_id: &str) -> Option<String> {
    components
        .as_array()?
        .iter()
        .filter_map(|row| row.get("components").and_then(Value::as_array))
        .flatten()
        .find(|c| c.get("custom_id").and_then(Value::as_str) == Some(custom_id))
        .and_then(|c| c.get("label").and_then(Value::as_str))
        .map(str::to_string)
}

#[derive(Deserialize)]
struct RawOption {
    name: String,
    #[serde(rename = "type")]
    kind: u64,
    #[serde(default)]
    value: Value,
    #[serde(default)]
    options: Vec<RawOption>,
}

/// The order in which each subcommand's options are written as text (the `/esim` grammar of
/// `crate::commands`).
fn option_order(sub: &str) -> &'static [&'static str] {
    match sub {
        "cap" => &["amount", "reason"],
        "roaming" => &["country", "from", "to", "reason"],
        _ => &[],
    }
}

fn option_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", f as i64),
            _ => n.to_string(),
        },
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    }
}

/// `data.options` of a chat command → `"cap 25 conference week"`.
fn command_text(data: &Value) -> Result<String, ParseError> {
    let options: Vec<RawOption> = match data.get("options") {
        Some(o) => serde_json::from_value(o.clone())?,
        None => Vec::new(),
    };
    // Subcommand (type 1) or subcommand group (type 2): its name, then its options.
    let Some(sub) = options.iter().find(|o| o.kind == 1 || o.kind == 2) else {
        // No subcommand (not how our manifest declares it): plain options in order.
        return Ok(options
            .iter()
            .map(|o| option_text(&o.value))
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" "));
    };
    let mut words = vec![sub.name.clone()];
    let order = option_order(&sub.name);
    let mut given: Vec<&RawOption> = sub.options.iter().collect();
    given.sort_by_key(|o| {
        order
            .iter()
            .position(|n| *n == o.name)
            .unwrap_or(order.len())
    });
    words.extend(
        given
            .into_iter()
            .map(|o| option_text(&o.value))
            .filter(|s| !s.is_empty()),
    );
    Ok(words.join(" "))
}

/// Text inputs of a modal submission: `data.components[].components[]` with `custom_id`/`value`.
fn modal_fields(data: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let rows = data.get("components").and_then(Value::as_array);
    for row in rows.into_iter().flatten() {
        let inner = row.get("components").and_then(Value::as_array);
        // Newer payloads wrap inputs in a label component (`component`).
        let single = row.get("component").map(std::slice::from_ref);
        for c in inner.map(Vec::as_slice).or(single).into_iter().flatten() {
            if let Some(id) = c.get("custom_id").and_then(Value::as_str) {
                let value = c.get("value").and_then(Value::as_str).unwrap_or_default();
                out.insert(id.to_string(), value.to_string());
            }
        }
    }
    out
}

pub fn parse(body: &[u8]) -> Result<Inbound, ParseError> {
    let raw: Raw = serde_json::from_slice(body)?;
    if raw.kind == PING {
        return Ok(Inbound::Ping);
    }
    if !matches!(
        raw.kind,
        APPLICATION_COMMAND | MESSAGE_COMPONENT | MODAL_SUBMIT
    ) {
        return Ok(Inbound::Other { kind: raw.kind });
    }
    let user_id = raw
        .member
        .and_then(|m| m.user)
        .or(raw.user)
        .map(|u| u.id)
        .ok_or(ParseError::Missing("member.user or user"))?;
    if raw.id.is_empty() || raw.token.is_empty() {
        return Err(ParseError::Missing("id or token"));
    }
    let ctx = Context {
        id: raw.id,
        token: raw.token,
        application_id: raw.application_id,
        guild_id: raw.guild_id.filter(|g| !g.is_empty()),
        channel_id: raw.channel_id,
        user_id,
        message_id: raw.message.as_ref().map(|m| m.id.clone()),
    };
    let str_of = |key: &'static str| {
        raw.data
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or(ParseError::Missing(key))
    };
    Ok(match raw.kind {
        APPLICATION_COMMAND => Inbound::Command {
            name: str_of("name")?,
            text: command_text(&raw.data)?,
            ctx,
        },
        MESSAGE_COMPONENT => Inbound::Component {
            label: raw
                .message
                .as_ref()
                .and_then(|m| label_of(&m.components, &str_of("custom_id").unwrap_or_default())),
            custom_id: str_of("custom_id")?,
            values: raw
                .data
                .get("values")
                .and_then(Value::as_array)
                .map(|v| {
                    v.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            ctx,
        },
        _ => Inbound::ModalSubmit {
            custom_id: str_of("custom_id")?,
            fields: modal_fields(&raw.data),
            ctx,
        },
    })
}

/// What a component's `custom_id` means (see the table in [`crate::discord`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentId {
    /// A core action; `guild` is set for buttons posted in DMs; `confirm` when the button asks
    /// before acting.
    Action {
        guild: Option<String>,
        action_id: String,
        value: String,
        confirm: bool,
    },
    /// The plan select of the request form.
    PlanSelect,
    /// Open the deny-reason modal for this request.
    OpenDeny {
        request_id: String,
    },
    Unknown,
}

pub fn parse_component_id(custom_id: &str) -> ComponentId {
    if custom_id == crate::discord::render::PLAN_SELECT_ID {
        return ComponentId::PlanSelect;
    }
    if let Some(rest) = custom_id.strip_prefix(crate::discord::render::DENY_PREFIX) {
        return ComponentId::OpenDeny {
            request_id: rest.to_string(),
        };
    }
    let (confirm, rest) = match custom_id.strip_prefix('?') {
        Some(r) => (true, r),
        None => (false, custom_id),
    };
    let (guild, rest) = match rest.strip_prefix('@').and_then(|r| r.split_once('|')) {
        Some((g, r)) => (Some(g.to_string()), r),
        None => (None, rest),
    };
    match rest.split_once('|') {
        Some((a, v)) if !a.is_empty() => ComponentId::Action {
            guild,
            action_id: a.to_string(),
            value: v.to_string(),
            confirm,
        },
        _ => ComponentId::Unknown,
    }
}

/// What a modal's `custom_id` means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModalId {
    RequestForm { plan_id: String },
    DenyReason { request_id: String },
    Unknown,
}

pub fn parse_modal_id(custom_id: &str) -> ModalId {
    use crate::discord::render::{DENY_PREFIX, REQUEST_PREFIX};
    if let Some(plan_id) = custom_id.strip_prefix(REQUEST_PREFIX) {
        ModalId::RequestForm {
            plan_id: plan_id.to_string(),
        }
    } else if let Some(request_id) = custom_id.strip_prefix(DENY_PREFIX) {
        ModalId::DenyReason {
            request_id: request_id.to_string(),
        }
    } else {
        ModalId::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cmd(options: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "type": 2, "id": "1", "token": "t", "application_id": "9", "guild_id": "55",
            "channel_id": "66", "member": {"user": {"id": "77"}},
            "data": {"id": "5", "name": "esim", "type": 1, "options": options}
        }))
        .unwrap()
    }

    #[test]
    fn rebuilds_command_text_in_grammar_order() {
        let body = cmd(json!([{"name": "roaming", "type": 1, "options": [
            {"name": "reason", "type": 3, "value": "client visit"},
            {"name": "to", "type": 3, "value": "2026-12-05"},
            {"name": "country", "type": 3, "value": "FR"},
            {"name": "from", "type": 3, "value": "2026-12-01"}]}]));
        let Inbound::Command { text, ctx, .. } = parse(&body).unwrap() else {
            panic!()
        };
        assert_eq!(text, "roaming FR 2026-12-01 2026-12-05 client visit");
        assert_eq!(ctx.guild_id.as_deref(), Some("55"));
        assert_eq!(ctx.user_id, "77");
        let body = cmd(json!([{"name": "cap", "type": 1, "options": [
            {"name": "amount", "type": 10, "value": 25.0},
            {"name": "reason", "type": 3, "value": "conference week"}]}]));
        let Inbound::Command { text, .. } = parse(&body).unwrap() else {
            panic!()
        };
        assert_eq!(text, "cap 25 conference week");
        let body = cmd(json!([{"name": "cap", "type": 1, "options": [
            {"name": "amount", "type": 10, "value": 12.5},
            {"name": "reason", "type": 3, "value": "x"}]}]));
        let Inbound::Command { text, .. } = parse(&body).unwrap() else {
            panic!()
        };
        assert_eq!(text, "cap 12.5 x");
    }

    #[test]
    fn component_ids() {
        assert_eq!(
            parse_component_id("request.approve|r-1"),
            ComponentId::Action {
                guild: None,
                action_id: "request.approve".into(),
                value: "r-1".into(),
                confirm: false
            }
        );
        assert_eq!(
            parse_component_id("?@55|line.terminate|a|b"),
            ComponentId::Action {
                guild: Some("55".into()),
                action_id: "line.terminate".into(),
                value: "a|b".into(),
                confirm: true
            }
        );
        assert_eq!(parse_component_id("~plan"), ComponentId::PlanSelect);
        assert_eq!(
            parse_component_id("~deny|r-9"),
            ComponentId::OpenDeny {
                request_id: "r-9".into()
            }
        );
        assert_eq!(parse_component_id("nonsense"), ComponentId::Unknown);
        assert_eq!(
            parse_modal_id("~request|p1"),
            ModalId::RequestForm {
                plan_id: "p1".into()
            }
        );
    }
}
