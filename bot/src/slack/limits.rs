//! Slack's documented Block Kit limits, checked before anything is sent (and by the fake Slack on
//! everything it receives). Each violation names the block and the limit it breaks.
//!
//! Sources: Slack's Block Kit reference (blocks, block elements, composition objects), the
//! `chat.postMessage` reference (text ≤ 40,000, ≤ 50 blocks) and the view object reference
//! (≤ 100 blocks, title/submit/close ≤ 24, private_metadata ≤ 3000, callback_id ≤ 255).

use std::collections::HashSet;

use serde_json::Value;

pub const MAX_MESSAGE_BLOCKS: usize = 50;
pub const MAX_VIEW_BLOCKS: usize = 100;
pub const MAX_MESSAGE_TEXT: usize = 40_000;
pub const MAX_SECTION_TEXT: usize = 3000;
pub const MAX_HEADER_TEXT: usize = 150;
pub const MAX_FIELDS: usize = 10;
pub const MAX_FIELD_TEXT: usize = 2000;
pub const MAX_ACTIONS_ELEMENTS: usize = 25;
pub const MAX_CONTEXT_ELEMENTS: usize = 10;
pub const MAX_BUTTON_TEXT: usize = 75;
pub const MAX_BUTTON_VALUE: usize = 2000;
pub const MAX_URL: usize = 3000;
pub const MAX_ACTION_ID: usize = 255;
pub const MAX_BLOCK_ID: usize = 255;
pub const MAX_ALT_TEXT: usize = 2000;
pub const MAX_VIEW_TITLE: usize = 24;
pub const MAX_VIEW_BUTTON: usize = 24;
pub const MAX_PRIVATE_METADATA: usize = 3000;
pub const MAX_CALLBACK_ID: usize = 255;
pub const MAX_INPUT_LABEL: usize = 2000;
pub const MAX_PLACEHOLDER: usize = 150;
pub const MAX_SELECT_OPTIONS: usize = 100;
pub const MAX_OPTION_TEXT: usize = 75;
pub const MAX_OPTION_VALUE: usize = 150;
pub const MAX_CONFIRM_TITLE: usize = 100;
pub const MAX_CONFIRM_TEXT: usize = 300;
pub const MAX_CONFIRM_BUTTON: usize = 30;

/// Checks a message payload: an object with `blocks` (and usually `text`), as sent to
/// `chat.postMessage`, `chat.update`, `chat.postEphemeral` or a `response_url`; a bare array of
/// blocks is accepted too.
pub fn check_message(payload: &Value) -> Result<(), Vec<String>> {
    let mut c = Checker::default();
    let blocks = match payload {
        Value::Array(_) => Some(payload),
        Value::Object(o) => {
            if let Some(text) = o.get("text").and_then(Value::as_str) {
                c.max_len("message", "text", text, MAX_MESSAGE_TEXT);
            }
            o.get("blocks")
        }
        _ => {
            c.push("message: payload is neither an object nor an array of blocks".into());
            None
        }
    };
    if let Some(blocks) = blocks {
        c.blocks("message", blocks, MAX_MESSAGE_BLOCKS);
    }
    c.finish()
}

/// Checks a view (modal or App Home) as sent to `views.open`/`views.update` or returned in a
/// `response_action: update`.
pub fn check_view(view: &Value) -> Result<(), Vec<String>> {
    let mut c = Checker::default();
    let Some(o) = view.as_object() else {
        return Err(vec!["view: not a JSON object".into()]);
    };
    match o.get("type").and_then(Value::as_str) {
        Some("modal") => {
            match o.get("title") {
                Some(t) => c.text_obj("view", "title", t, MAX_VIEW_TITLE),
                None => c.push("view: modal has no title".into()),
            }
            for key in ["submit", "close"] {
                if let Some(t) = o.get(key) {
                    c.text_obj("view", key, t, MAX_VIEW_BUTTON);
                }
            }
        }
        Some("home") => {}
        other => c.push(format!("view: type must be modal or home, got {other:?}")),
    }
    if let Some(pm) = o.get("private_metadata").and_then(Value::as_str) {
        c.max_len("view", "private_metadata", pm, MAX_PRIVATE_METADATA);
    }
    if let Some(id) = o.get("callback_id").and_then(Value::as_str) {
        c.max_len("view", "callback_id", id, MAX_CALLBACK_ID);
    }
    match o.get("blocks") {
        Some(blocks) => c.blocks("view", blocks, MAX_VIEW_BLOCKS),
        None => c.push("view: no blocks".into()),
    }
    c.finish()
}

#[derive(Default)]
struct Checker {
    errors: Vec<String>,
    action_ids: HashSet<String>,
    block_ids: HashSet<String>,
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

impl Checker {
    fn finish(self) -> Result<(), Vec<String>> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }

    fn push(&mut self, e: String) {
        self.errors.push(e);
    }

    fn max_len(&mut self, at: &str, what: &str, s: &str, max: usize) {
        let n = chars(s);
        if n > max {
            self.push(format!("{at}: {what} is {n} characters, limit {max}"));
        }
    }

    /// A text object (`{"type": "plain_text", "text": ...}`) or a bare string.
    fn text_obj(&mut self, at: &str, what: &str, v: &Value, max: usize) {
        let s = v
            .get("text")
            .and_then(Value::as_str)
            .or_else(|| v.as_str())
            .unwrap_or("");
        self.max_len(at, what, s, max);
    }

    fn blocks(&mut self, at: &str, blocks: &Value, max: usize) {
        let Some(blocks) = blocks.as_array() else {
            self.push(format!("{at}: blocks is not an array"));
            return;
        };
        if blocks.len() > max {
            self.push(format!("{at}: {} blocks, limit {max}", blocks.len()));
        }
        for (i, block) in blocks.iter().enumerate() {
            self.block(i, block);
        }
    }

    fn block(&mut self, i: usize, block: &Value) {
        let kind = block.get("type").and_then(Value::as_str).unwrap_or("?");
        let at = match block.get("block_id").and_then(Value::as_str) {
            Some(id) => format!("block {i} ({kind} '{id}')"),
            None => format!("block {i} ({kind})"),
        };
        if let Some(id) = block.get("block_id").and_then(Value::as_str) {
            self.max_len(&at, "block_id", id, MAX_BLOCK_ID);
            if !self.block_ids.insert(id.to_string()) {
                self.push(format!("{at}: block_id '{id}' is not unique"));
            }
        }
        match kind {
            "section" => {
                if let Some(t) = block.get("text") {
                    self.text_obj(&at, "text", t, MAX_SECTION_TEXT);
                }
                if let Some(fields) = block.get("fields").and_then(Value::as_array) {
                    if fields.len() > MAX_FIELDS {
                        self.push(format!("{at}: {} fields, limit {MAX_FIELDS}", fields.len()));
                    }
                    for (j, f) in fields.iter().enumerate() {
                        self.text_obj(&at, &format!("field {j}"), f, MAX_FIELD_TEXT);
                    }
                }
                if block.get("text").is_none() && block.get("fields").is_none() {
                    self.push(format!("{at}: section needs text or fields"));
                }
            }
            "header" => match block.get("text") {
                Some(t) => self.text_obj(&at, "header text", t, MAX_HEADER_TEXT),
                None => self.push(format!("{at}: header has no text")),
            },
            "actions" => {
                let n = block
                    .get("elements")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                if n > MAX_ACTIONS_ELEMENTS {
                    self.push(format!("{at}: {n} elements, limit {MAX_ACTIONS_ELEMENTS}"));
                }
            }
            "context" => {
                let n = block
                    .get("elements")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len);
                if n > MAX_CONTEXT_ELEMENTS {
                    self.push(format!("{at}: {n} elements, limit {MAX_CONTEXT_ELEMENTS}"));
                }
            }
            "input" => {
                if let Some(l) = block.get("label") {
                    self.text_obj(&at, "label", l, MAX_INPUT_LABEL);
                }
                if let Some(h) = block.get("hint") {
                    self.text_obj(&at, "hint", h, MAX_INPUT_LABEL);
                }
            }
            _ => {}
        }
        // Elements anywhere inside the block (accessory, elements, input element, image block).
        self.walk(&at, block);
    }

    fn walk(&mut self, at: &str, v: &Value) {
        match v {
            Value::Array(items) => items.iter().for_each(|x| self.walk(at, x)),
            Value::Object(o) => {
                if let Some(id) = o.get("action_id").and_then(Value::as_str) {
                    self.max_len(at, "action_id", id, MAX_ACTION_ID);
                    if !self.action_ids.insert(id.to_string()) {
                        self.push(format!("{at}: action_id '{id}' is not unique"));
                    }
                }
                match o.get("type").and_then(Value::as_str) {
                    Some("button") => {
                        let label = format!("{at} button");
                        if let Some(t) = o.get("text") {
                            self.text_obj(&label, "text", t, MAX_BUTTON_TEXT);
                        }
                        if let Some(val) = o.get("value").and_then(Value::as_str) {
                            self.max_len(&label, "value", val, MAX_BUTTON_VALUE);
                        }
                        if let Some(url) = o.get("url").and_then(Value::as_str) {
                            self.max_len(&label, "url", url, MAX_URL);
                        }
                    }
                    Some("image") => {
                        if let Some(alt) = o.get("alt_text").and_then(Value::as_str) {
                            self.max_len(at, "image alt_text", alt, MAX_ALT_TEXT);
                        }
                        if let Some(url) = o.get("image_url").and_then(Value::as_str) {
                            self.max_len(at, "image_url", url, MAX_URL);
                        }
                    }
                    Some("static_select" | "multi_static_select") => {
                        let n = o
                            .get("options")
                            .and_then(Value::as_array)
                            .map_or(0, Vec::len);
                        if n > MAX_SELECT_OPTIONS {
                            self.push(format!(
                                "{at}: {n} select options, limit {MAX_SELECT_OPTIONS}"
                            ));
                        }
                        for opt in o
                            .get("options")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                        {
                            if let Some(t) = opt.get("text") {
                                self.text_obj(at, "option text", t, MAX_OPTION_TEXT);
                            }
                            if let Some(val) = opt.get("value").and_then(Value::as_str) {
                                self.max_len(at, "option value", val, MAX_OPTION_VALUE);
                            }
                        }
                    }
                    _ => {}
                }
                if let Some(p) = o.get("placeholder") {
                    self.text_obj(at, "placeholder", p, MAX_PLACEHOLDER);
                }
                if let Some(c) = o.get("confirm") {
                    let label = format!("{at} confirm");
                    if let Some(t) = c.get("title") {
                        self.text_obj(&label, "title", t, MAX_CONFIRM_TITLE);
                    }
                    if let Some(t) = c.get("text") {
                        self.text_obj(&label, "text", t, MAX_CONFIRM_TEXT);
                    }
                    for key in ["confirm", "deny"] {
                        if let Some(t) = c.get(key) {
                            self.text_obj(&label, key, t, MAX_CONFIRM_BUTTON);
                        }
                    }
                }
                for (k, child) in o {
                    if k != "confirm" && (child.is_object() || child.is_array()) {
                        self.walk(at, child);
                    }
                }
            }
            _ => {}
        }
    }
}
