//! Platform-neutral outgoing messages. Core says what to tell whom; each chat adapter
//! (Slack Block Kit, Teams Adaptive Cards, Discord components) renders and delivers it.

use serde::{Deserialize, Serialize};

use crate::ids::EmployeeId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Message {
    /// A short heading (Slack header block, card title).
    pub title: Option<String>,
    /// The body in plain text; `*bold*` is the only markup adapters must understand.
    pub text: String,
    /// Label/value pairs shown as a compact grid.
    pub fields: Vec<Field>,
    /// Buttons, in order.
    pub actions: Vec<Action>,
    /// An image to show inline (the eSIM QR code).
    pub image: Option<Image>,
    /// Small print under the message (who decided and when, ids).
    pub context: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    pub label: String,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ActionStyle {
    #[default]
    Default,
    Primary,
    Danger,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// What the button does, e.g. `request.approve`; unique within a message.
    pub id: String,
    pub label: String,
    pub style: ActionStyle,
    /// Opaque to the adapter and echoed back on click, e.g. a request id.
    pub value: String,
    /// Ask before acting (used for destructive actions).
    pub confirm: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Image {
    pub png: Vec<u8>,
    pub alt: String,
    pub filename: String,
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Recipient {
    /// A direct message to this employee on whatever chat platform they use.
    Employee(EmployeeId),
    /// A named channel of the tenant's workspace (approvals, finance alerts).
    Channel(String),
}

impl Message {
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }

    pub fn field(mut self, label: impl Into<String>, value: impl Into<String>) -> Self {
        self.fields.push(Field {
            label: label.into(),
            value: value.into(),
        });
        self
    }

    /// [`Message::field`] for each (label, value), in order.
    pub fn with_fields(self, fields: impl IntoIterator<Item = (String, String)>) -> Self {
        fields
            .into_iter()
            .fold(self, |message, (label, value)| message.field(label, value))
    }
}
