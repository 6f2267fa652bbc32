//! Bot Framework activities → what the person meant.
//!
//! | activity | becomes |
//! |---|---|
//! | `message` with text `esim …` / `/esim …` (the bot's `<at>…</at>` mention stripped); any text in a 1:1 chat | [`Intent::Command`] |
//! | `invoke` `adaptiveCard/action` (`Action.Execute`: `value.action.verb` + `data`) | [`Intent::Click`] / [`Intent::RequestForm`] / [`Intent::DenyReason`] by `data.action` (else the verb) |
//! | `message` with `value` (`Action.Submit` data) | the same, by `value.action` |
//! | `conversationUpdate` adding the bot, `installationUpdate` `add` | [`Intent::BotAdded`] |
//! | anything else | [`Intent::Ignored`] |

use serde::Deserialize;
use serde_json::Value;

use super::render::{
    DATE_INPUT, DENY_REASON_INPUT, DENY_VERB, PLAN_INPUT, REASON_INPUT, REQUEST_VERB,
};
use crate::chat::RequestForm;

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelAccount {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub aad_object_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationAccount {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub conversation_type: Option<String>,
    #[serde(default)]
    pub tenant_id: Option<String>,
    #[serde(default)]
    pub is_group: Option<bool>,
}

/// The fields of an activity Lineup reads.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub service_url: String,
    #[serde(default)]
    pub channel_id: String,
    #[serde(default)]
    pub from: ChannelAccount,
    #[serde(default)]
    pub recipient: ChannelAccount,
    #[serde(default)]
    pub conversation: ConversationAccount,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub value: Option<Value>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub reply_to_id: Option<String>,
    #[serde(default)]
    pub channel_data: Option<Value>,
    #[serde(default)]
    pub members_added: Vec<ChannelAccount>,
}

impl Activity {
    /// The Azure AD tenant: `channelData.tenant.id`, else `conversation.tenantId`.
    pub fn tenant_id(&self) -> Option<&str> {
        self.channel_data
            .as_ref()
            .and_then(|c| c.get("tenant"))
            .and_then(|t| t.get("id"))
            .and_then(Value::as_str)
            .or(self.conversation.tenant_id.as_deref())
            .filter(|t| !t.is_empty())
    }

    /// A 1:1 chat between the bot and one person.
    pub fn is_personal(&self) -> bool {
        match self.conversation.conversation_type.as_deref() {
            Some(t) => t == "personal",
            None => self.conversation.is_group != Some(true),
        }
    }

    pub fn is_invoke(&self) -> bool {
        self.kind == "invoke"
    }

    /// The key replays are recognised by: conversation and activity id.
    pub fn dedupe_key(&self) -> Option<String> {
        self.id
            .as_deref()
            .filter(|id| !id.is_empty())
            .map(|id| format!("{}|{id}", self.conversation.id))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unreadable activity: {0}")]
pub struct ParseError(String);

pub fn parse_activity(body: &[u8]) -> Result<Activity, ParseError> {
    serde_json::from_slice(body).map_err(|e| ParseError(e.to_string()))
}

/// What an activity asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    /// The arguments after `esim` (empty for a bare `esim`).
    Command {
        text: String,
    },
    Click {
        action_id: String,
        value: String,
    },
    /// The request form; `plans` are the choices the form showed (to show it again).
    RequestForm {
        form: RequestForm,
        plans: Vec<(String, String)>,
    },
    DenyReason {
        request_id: String,
        reason: String,
    },
    BotAdded,
    Ignored(String),
}

fn decode_entities(s: &str) -> String {
    s.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// Removes `<at>…</at>` mentions and HTML entities, and trims.
pub fn strip_mentions(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let lower = rest.to_ascii_lowercase();
        match lower.find("<at") {
            Some(start) => {
                out.push_str(&rest[..start]);
                match lower[start..].find("</at>") {
                    Some(end) => rest = &rest[start + end + "</at>".len()..],
                    None => {
                        rest = "";
                    }
                }
            }
            None => {
                out.push_str(rest);
                break;
            }
        }
    }
    decode_entities(&out)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// `esim cap 25 trip` / `/esim cap 25 trip` → `Some("cap 25 trip")`; other text → `None`.
pub fn esim_arguments(text: &str) -> Option<String> {
    let t = strip_mentions(text);
    let t = t.strip_prefix('/').unwrap_or(&t);
    let (head, rest) = t.split_once(' ').unwrap_or((t, ""));
    head.eq_ignore_ascii_case("esim")
        .then(|| rest.trim().to_string())
}

fn as_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

/// Dispatches card data (`Action.Execute` `data` or `Action.Submit` `value`) on its `action`
/// field, falling back to the verb.
pub fn data_intent(data: &Value, verb: Option<&str>) -> Intent {
    let action = data
        .get("action")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
        .or(verb.filter(|v| !v.is_empty()));
    let Some(action) = action else {
        return Intent::Ignored("card data without an action".into());
    };
    match action {
        REQUEST_VERB => {
            let plans = data
                .get("plans")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|p| {
                    let p = p.as_array()?;
                    Some((
                        p.first()?.as_str()?.to_string(),
                        p.get(1)?.as_str()?.to_string(),
                    ))
                })
                .collect();
            Intent::RequestForm {
                form: RequestForm {
                    plan_id: as_text(data.get(PLAN_INPUT)).trim().to_string(),
                    reason: as_text(data.get(REASON_INPUT)).trim().to_string(),
                    wanted_date: as_text(data.get(DATE_INPUT)).trim().to_string(),
                },
                plans,
            }
        }
        DENY_VERB => Intent::DenyReason {
            request_id: as_text(data.get("value")),
            reason: as_text(data.get(DENY_REASON_INPUT)).trim().to_string(),
        },
        other => Intent::Click {
            action_id: other.to_string(),
            value: as_text(data.get("value")),
        },
    }
}

/// What the activity asks for.
pub fn intent(a: &Activity) -> Intent {
    match a.kind.as_str() {
        "message" => {
            if let Some(value) = a.value.as_ref().filter(|v| v.is_object()) {
                return data_intent(value, None);
            }
            let text = a.text.as_deref().unwrap_or("");
            match esim_arguments(text) {
                Some(args) => Intent::Command { text: args },
                None if a.is_personal() && !strip_mentions(text).is_empty() => Intent::Command {
                    text: strip_mentions(text),
                },
                None => Intent::Ignored("message not for Lineup".into()),
            }
        }
        "invoke" if a.name.as_deref() == Some("adaptiveCard/action") => {
            let action = a.value.as_ref().and_then(|v| v.get("action"));
            let verb = action.and_then(|x| x.get("verb")).and_then(Value::as_str);
            let data = action
                .and_then(|x| x.get("data"))
                .cloned()
                .unwrap_or(Value::Object(Default::default()));
            data_intent(&data, verb)
        }
        "conversationUpdate"
            if a.members_added
                .iter()
                .any(|m| !m.id.is_empty() && m.id == a.recipient.id) =>
        {
            Intent::BotAdded
        }
        "installationUpdate" if a.action.as_deref() == Some("add") => Intent::BotAdded,
        other => Intent::Ignored(format!("{other} activity")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn esim_text() {
        assert_eq!(
            esim_arguments("<at>Lineup</at> esim cap 25 trip").as_deref(),
            Some("cap 25 trip")
        );
        assert_eq!(
            esim_arguments("/ESIM  status&nbsp;").as_deref(),
            Some("status")
        );
        assert_eq!(esim_arguments("esim").as_deref(), Some(""));
        assert_eq!(esim_arguments("esimx"), None);
        assert_eq!(strip_mentions("<at id=\"0\">Bot</at>hi <at>x"), "hi");
    }
}
