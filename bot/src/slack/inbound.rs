//! Typed inbound events, parsed from Slack's real payload shapes: form-encoded slash commands,
//! interactivity `payload=` JSON, Events API JSON.
//!
//! Interactions are parsed with slack-morphism's models first; if those reject a payload (they
//! type every block of the clicked message, so a block kind they do not know yet would otherwise
//! drop the click), a lenient reader picks the same fields out of the raw JSON.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use slack_morphism::prelude::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlashCommand {
    pub team_id: String,
    pub user_id: String,
    pub user_name: String,
    pub channel_id: String,
    pub command: String,
    pub text: String,
    pub trigger_id: String,
    pub response_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockAction {
    pub team_id: String,
    pub user_id: String,
    /// Empty when the action came from a modal.
    pub channel_id: String,
    pub message_ts: Option<String>,
    pub thread_ts: Option<String>,
    pub action_id: String,
    pub value: String,
    pub trigger_id: String,
    /// Empty when the action came from a modal (no response_url there).
    pub response_url: String,
    pub action_ts: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewSubmission {
    pub team_id: String,
    pub user_id: String,
    pub callback_id: String,
    pub private_metadata: String,
    /// `block_id.action_id` → typed text, selected option value, date, user, channel…
    pub values: BTreeMap<String, String>,
    pub view_id: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkspaceEvent {
    AppUninstalled { team_id: String },
    TokensRevoked { team_id: String },
}

/// What an interactivity request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interaction {
    /// One per clicked action (Slack sends one action per `block_actions`).
    BlockActions(Vec<BlockAction>),
    ViewSubmission(ViewSubmission),
    /// Anything else (view_closed, shortcuts…), acknowledged and dropped.
    Other {
        team_id: Option<String>,
        kind: String,
    },
}

/// What an Events API request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushEvent {
    UrlVerification {
        challenge: String,
    },
    Callback {
        team_id: String,
        event_id: String,
        event: Option<WorkspaceEvent>,
        kind: String,
    },
    Other {
        kind: String,
    },
}

#[derive(Debug, thiserror::Error)]
#[error("unreadable Slack payload: {0}")]
pub struct ParseError(pub String);

#[derive(Deserialize)]
struct CommandForm {
    user_name: Option<String>,
}

/// A slash command's form body.
pub fn parse_slash_command(body: &[u8]) -> Result<SlashCommand, ParseError> {
    let ev: SlackCommandEvent =
        serde_urlencoded::from_bytes(body).map_err(|e| ParseError(e.to_string()))?;
    let extra: CommandForm =
        serde_urlencoded::from_bytes(body).map_err(|e| ParseError(e.to_string()))?;
    Ok(SlashCommand {
        team_id: ev.team_id.to_string(),
        user_id: ev.user_id.to_string(),
        user_name: extra.user_name.unwrap_or_default(),
        channel_id: ev.channel_id.to_string(),
        command: ev.command.to_string(),
        text: ev.text.unwrap_or_default().trim().to_string(),
        trigger_id: ev.trigger_id.to_string(),
        response_url: ev.response_url.0.to_string(),
    })
}

#[derive(Deserialize)]
struct InteractionForm {
    payload: String,
}

/// An interactivity request's form body (`payload=<json>`).
pub fn parse_interaction(body: &[u8]) -> Result<Interaction, ParseError> {
    let form: InteractionForm =
        serde_urlencoded::from_bytes(body).map_err(|e| ParseError(e.to_string()))?;
    let raw: Value = serde_json::from_str(&form.payload).map_err(|e| ParseError(e.to_string()))?;
    match serde_json::from_value::<SlackInteractionEvent>(raw.clone()) {
        Ok(SlackInteractionEvent::BlockActions(ev)) => {
            Ok(Interaction::BlockActions(from_sm_block_actions(ev)))
        }
        Ok(SlackInteractionEvent::ViewSubmission(ev)) => {
            Ok(Interaction::ViewSubmission(from_sm_view(ev)))
        }
        Ok(_) => Ok(lenient_interaction(&raw)),
        Err(e) => {
            tracing::debug!(error = %e, "slack-morphism rejected an interaction payload; reading it leniently");
            Ok(lenient_interaction(&raw))
        }
    }
}

fn from_sm_block_actions(ev: SlackInteractionBlockActionsEvent) -> Vec<BlockAction> {
    let (message_ts, container_channel) = match &ev.container {
        SlackInteractionActionContainer::Message(m) => (
            Some(m.message_ts.to_string()),
            m.channel_id.as_ref().map(|c| c.to_string()),
        ),
        SlackInteractionActionContainer::MessageAttachment(m) => (
            Some(m.message_ts.to_string()),
            m.channel_id.as_ref().map(|c| c.to_string()),
        ),
        SlackInteractionActionContainer::View(_) => (None, None),
    };
    let channel_id = ev
        .channel
        .as_ref()
        .map(|c| c.id.to_string())
        .or(container_channel)
        .unwrap_or_default();
    let thread_ts = ev
        .message
        .as_ref()
        .and_then(|m| m.origin.thread_ts.as_ref())
        .map(|t| t.to_string());
    let team_id = ev.team.id.to_string();
    let user_id = ev
        .user
        .as_ref()
        .map(|u| u.id.to_string())
        .unwrap_or_default();
    let response_url = ev
        .response_url
        .as_ref()
        .map(|u| u.0.to_string())
        .unwrap_or_default();
    ev.actions
        .unwrap_or_default()
        .into_iter()
        .map(|a| BlockAction {
            team_id: team_id.clone(),
            user_id: user_id.clone(),
            channel_id: channel_id.clone(),
            message_ts: message_ts.clone(),
            thread_ts: thread_ts.clone(),
            action_id: a.action_id.to_string(),
            value: a
                .value
                .or_else(|| a.selected_option.map(|o| o.value))
                .unwrap_or_default(),
            trigger_id: ev.trigger_id.to_string(),
            response_url: response_url.clone(),
            action_ts: a.action_ts.map(|t| t.to_string()).unwrap_or_default(),
        })
        .collect()
}

fn state_value(v: &SlackViewStateValue) -> Option<String> {
    v.value
        .clone()
        .or_else(|| v.selected_option.as_ref().map(|o| o.value.clone()))
        .or_else(|| v.selected_date.clone())
        .or_else(|| v.selected_time.clone())
        .or_else(|| v.selected_user.as_ref().map(|u| u.to_string()))
        .or_else(|| v.selected_channel.as_ref().map(|c| c.to_string()))
        .or_else(|| v.selected_conversation.as_ref().map(|c| c.to_string()))
        .or_else(|| {
            v.selected_date_time
                .as_ref()
                .map(|d| d.0.as_second().to_string())
        })
        .or_else(|| {
            v.selected_options.as_ref().map(|os| {
                os.iter()
                    .map(|o| o.value.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            })
        })
        .or_else(|| {
            v.selected_users.as_ref().map(|us| {
                us.iter()
                    .map(|u| u.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            })
        })
}

fn from_sm_view(ev: SlackInteractionViewSubmissionEvent) -> ViewSubmission {
    let (callback_id, private_metadata) = match &ev.view.view {
        SlackView::Modal(m) => (
            m.callback_id
                .as_ref()
                .map(|c| c.to_string())
                .unwrap_or_default(),
            m.private_metadata.clone().unwrap_or_default(),
        ),
        SlackView::Home(h) => (
            h.callback_id
                .as_ref()
                .map(|c| c.to_string())
                .unwrap_or_default(),
            h.private_metadata.clone().unwrap_or_default(),
        ),
    };
    let mut values = BTreeMap::new();
    if let Some(state) = &ev.view.state_params.state {
        for (block_id, actions) in &state.values {
            for (action_id, v) in actions {
                if let Some(value) = state_value(v) {
                    values.insert(format!("{block_id}.{action_id}"), value);
                }
            }
        }
    }
    ViewSubmission {
        team_id: ev.team.id.to_string(),
        user_id: ev.user.id.to_string(),
        callback_id,
        private_metadata,
        values,
        view_id: ev.view.state_params.id.to_string(),
    }
}

fn s(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_str().map(str::to_string)
}

fn lenient_state_value(v: &Value) -> Option<String> {
    for key in [
        "value",
        "selected_date",
        "selected_time",
        "selected_user",
        "selected_channel",
        "selected_conversation",
    ] {
        if let Some(x) = v.get(key).and_then(Value::as_str) {
            return Some(x.to_string());
        }
    }
    if let Some(x) = v.pointer("/selected_option/value").and_then(Value::as_str) {
        return Some(x.to_string());
    }
    if let Some(x) = v.get("selected_date_time").and_then(Value::as_i64) {
        return Some(x.to_string());
    }
    None
}

/// Picks the fields out of the raw JSON, for payloads slack-morphism's models reject.
fn lenient_interaction(raw: &Value) -> Interaction {
    let kind = s(raw, &["type"]).unwrap_or_default();
    let team_id = s(raw, &["team", "id"]).or_else(|| s(raw, &["user", "team_id"]));
    match kind.as_str() {
        "block_actions" => {
            let message_ts = s(raw, &["container", "message_ts"]);
            let channel_id = s(raw, &["channel", "id"])
                .or_else(|| s(raw, &["container", "channel_id"]))
                .unwrap_or_default();
            let actions = raw
                .get("actions")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            Interaction::BlockActions(
                actions
                    .iter()
                    .map(|a| BlockAction {
                        team_id: team_id.clone().unwrap_or_default(),
                        user_id: s(raw, &["user", "id"]).unwrap_or_default(),
                        channel_id: channel_id.clone(),
                        message_ts: message_ts.clone(),
                        thread_ts: s(raw, &["message", "thread_ts"]),
                        action_id: s(a, &["action_id"]).unwrap_or_default(),
                        value: s(a, &["value"])
                            .or_else(|| s(a, &["selected_option", "value"]))
                            .unwrap_or_default(),
                        trigger_id: s(raw, &["trigger_id"]).unwrap_or_default(),
                        response_url: s(raw, &["response_url"]).unwrap_or_default(),
                        action_ts: s(a, &["action_ts"]).unwrap_or_default(),
                    })
                    .collect(),
            )
        }
        "view_submission" => {
            let view = raw.get("view").cloned().unwrap_or(Value::Null);
            let mut values = BTreeMap::new();
            if let Some(blocks) = view.pointer("/state/values").and_then(Value::as_object) {
                for (block_id, actions) in blocks {
                    for (action_id, v) in actions.as_object().into_iter().flatten() {
                        if let Some(value) = lenient_state_value(v) {
                            values.insert(format!("{block_id}.{action_id}"), value);
                        }
                    }
                }
            }
            Interaction::ViewSubmission(ViewSubmission {
                team_id: team_id.unwrap_or_default(),
                user_id: s(raw, &["user", "id"]).unwrap_or_default(),
                callback_id: s(&view, &["callback_id"]).unwrap_or_default(),
                private_metadata: s(&view, &["private_metadata"]).unwrap_or_default(),
                values,
                view_id: s(&view, &["id"]).unwrap_or_default(),
            })
        }
        _ => Interaction::Other { team_id, kind },
    }
}

/// An Events API JSON body.
pub fn parse_push_event(body: &[u8]) -> Result<PushEvent, ParseError> {
    let raw: Value = serde_json::from_slice(body).map_err(|e| ParseError(e.to_string()))?;
    match serde_json::from_value::<SlackPushEvent>(raw.clone()) {
        Ok(SlackPushEvent::UrlVerification(v)) => Ok(PushEvent::UrlVerification {
            challenge: v.challenge,
        }),
        Ok(SlackPushEvent::EventCallback(cb)) => {
            let team_id = cb.team_id.to_string();
            let (event, kind) = match &cb.event {
                SlackEventCallbackBody::AppUninstalled(_) => (
                    Some(WorkspaceEvent::AppUninstalled {
                        team_id: team_id.clone(),
                    }),
                    "app_uninstalled".to_string(),
                ),
                SlackEventCallbackBody::Unknown(v) => {
                    let kind = s(v, &["type"]).unwrap_or_default();
                    let event = (kind == "tokens_revoked").then(|| WorkspaceEvent::TokensRevoked {
                        team_id: team_id.clone(),
                    });
                    (event, kind)
                }
                _ => (None, s(&raw, &["event", "type"]).unwrap_or_default()),
            };
            Ok(PushEvent::Callback {
                team_id,
                event_id: cb.event_id.to_string(),
                event,
                kind,
            })
        }
        Ok(SlackPushEvent::AppRateLimited(_)) => Ok(PushEvent::Other {
            kind: "app_rate_limited".into(),
        }),
        Err(e) => {
            // Lenient fallback on the fields we need.
            let kind = s(&raw, &["type"]).unwrap_or_default();
            match kind.as_str() {
                "url_verification" => Ok(PushEvent::UrlVerification {
                    challenge: s(&raw, &["challenge"]).ok_or_else(|| ParseError(e.to_string()))?,
                }),
                "event_callback" => {
                    let team_id = s(&raw, &["team_id"]).ok_or_else(|| ParseError(e.to_string()))?;
                    let event_id =
                        s(&raw, &["event_id"]).ok_or_else(|| ParseError(e.to_string()))?;
                    let ev_kind = s(&raw, &["event", "type"]).unwrap_or_default();
                    let event = match ev_kind.as_str() {
                        "app_uninstalled" => Some(WorkspaceEvent::AppUninstalled {
                            team_id: team_id.clone(),
                        }),
                        "tokens_revoked" => Some(WorkspaceEvent::TokensRevoked {
                            team_id: team_id.clone(),
                        }),
                        _ => None,
                    };
                    Ok(PushEvent::Callback {
                        team_id,
                        event_id,
                        event,
                        kind: ev_kind,
                    })
                }
                _ => Ok(PushEvent::Other { kind }),
            }
        }
    }
}

/// The workspace an event, action or submission comes from, if any.
pub fn interaction_team(i: &Interaction) -> Option<&str> {
    match i {
        Interaction::BlockActions(actions) => actions.first().map(|a| a.team_id.as_str()),
        Interaction::ViewSubmission(v) => Some(&v.team_id),
        Interaction::Other { team_id, .. } => team_id.as_deref(),
    }
}
