//! Teams' limits for Adaptive Cards, checked on everything we render (and by the fake Bot
//! Connector on everything it receives). Each violation names where it is and what it breaks.
//!
//! Sources: Teams' "Cards reference" / "Format cards" pages (a message, card included, must stay
//! under 28 KB; Teams shows at most 6 actions in an ActionSet or a card's `actions`; Adaptive
//! Cards 1.5 is the highest schema Teams renders on every client) and the Adaptive Cards schema
//! (`Action.Execute` needs a `verb`, input ids are required and unique, actions need a title
//! to be clickable).

use std::collections::HashSet;

use serde_json::Value;

/// The most a message (its card included) may weigh.
pub const MAX_CARD_BYTES: usize = 28 * 1024;
/// Actions Teams shows in one ActionSet (or a card's top-level `actions`).
pub const MAX_ACTIONS: usize = 6;
/// The highest Adaptive Cards schema version we send.
pub const MAX_VERSION: (u32, u32) = (1, 5);
/// A sane ceiling for one TextBlock (Teams truncates long ones badly).
pub const MAX_TEXT_BLOCK: usize = 10_000;
/// A sane ceiling for an action's title (longer ones are cut on phones).
pub const MAX_ACTION_TITLE: usize = 60;
pub const CARD_CONTENT_TYPE: &str = "application/vnd.microsoft.card.adaptive";

/// Checks one Adaptive Card (the `content` of an attachment, or an invoke response's `value`).
pub fn check_card(card: &Value) -> Result<(), Vec<String>> {
    let mut c = Checker::default();
    c.card("card", card, true);
    c.finish()
}

/// Checks an outgoing activity: its size and every Adaptive Card attachment in it.
pub fn check_activity(activity: &Value) -> Result<(), Vec<String>> {
    let mut c = Checker::default();
    let size = serde_json::to_vec(activity).map_or(0, |v| v.len());
    if size > MAX_CARD_BYTES {
        c.push(format!(
            "activity: payload is {size} bytes, limit {MAX_CARD_BYTES}"
        ));
    }
    for (i, a) in activity
        .get("attachments")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        if a.get("contentType").and_then(Value::as_str) == Some(CARD_CONTENT_TYPE) {
            match a.get("content") {
                Some(card) => c.card(&format!("attachments[{i}]"), card, false),
                None => c.push(format!("attachments[{i}]: adaptive card without content")),
            }
        }
    }
    c.finish()
}

#[derive(Default)]
struct Checker {
    errors: Vec<String>,
    action_ids: HashSet<String>,
    input_ids: HashSet<String>,
}

fn parse_version(v: &str) -> Option<(u32, u32)> {
    let (a, b) = v.split_once('.')?;
    Some((a.parse().ok()?, b.parse().ok()?))
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

    fn card(&mut self, at: &str, card: &Value, top: bool) {
        if top {
            let size = serde_json::to_vec(card).map_or(0, |v| v.len());
            if size > MAX_CARD_BYTES {
                self.push(format!(
                    "{at}: payload is {size} bytes, limit {MAX_CARD_BYTES}"
                ));
            }
        }
        let Some(o) = card.as_object() else {
            self.push(format!("{at}: not a JSON object"));
            return;
        };
        if o.get("type").and_then(Value::as_str) != Some("AdaptiveCard") {
            self.push(format!("{at}: type must be AdaptiveCard"));
        }
        // Nested ShowCard cards carry no version of their own.
        if top || o.contains_key("version") {
            match o.get("version").and_then(Value::as_str).map(parse_version) {
                Some(Some(v)) if v <= MAX_VERSION => {}
                Some(_) => self.push(format!(
                    "{at}: version {} is above {}.{}",
                    o["version"].as_str().unwrap_or("?"),
                    MAX_VERSION.0,
                    MAX_VERSION.1
                )),
                None => self.push(format!("{at}: no version")),
            }
        }
        match o.get("body") {
            Some(Value::Array(items)) => self.elements(&format!("{at} body"), items),
            Some(_) => self.push(format!("{at}: body is not an array")),
            None => {}
        }
        if let Some(actions) = o.get("actions") {
            self.actions(&format!("{at} actions"), actions);
        }
    }

    fn elements(&mut self, at: &str, items: &[Value]) {
        for (i, el) in items.iter().enumerate() {
            let kind = el.get("type").and_then(Value::as_str).unwrap_or("?");
            let here = format!("{at}[{i}] ({kind})");
            self.element(&here, kind, el);
        }
    }

    fn text(&mut self, at: &str, what: &str, s: Option<&str>, max: usize, required: bool) {
        match s {
            None | Some("") if required => self.push(format!("{at}: {what} is empty")),
            None | Some("") => {}
            Some(s) => {
                let n = s.chars().count();
                if n > max {
                    self.push(format!("{at}: {what} is {n} characters, limit {max}"));
                }
                if s.chars()
                    .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
                {
                    self.push(format!("{at}: {what} contains control characters"));
                }
                if s.trim().is_empty() {
                    self.push(format!("{at}: {what} is blank"));
                }
            }
        }
    }

    fn input_id(&mut self, at: &str, el: &Value) {
        match el.get("id").and_then(Value::as_str) {
            Some(id) if !id.is_empty() => {
                if !self.input_ids.insert(id.to_string()) {
                    self.push(format!("{at}: input id '{id}' is not unique"));
                }
            }
            _ => self.push(format!("{at}: input has no id")),
        }
    }

    fn element(&mut self, at: &str, kind: &str, el: &Value) {
        match kind {
            "TextBlock" => self.text(
                at,
                "text",
                el.get("text").and_then(Value::as_str),
                MAX_TEXT_BLOCK,
                true,
            ),
            "FactSet" => {
                let facts = el.get("facts").and_then(Value::as_array);
                if facts.is_none_or(Vec::is_empty) {
                    self.push(format!("{at}: no facts"));
                }
                for (j, f) in facts.into_iter().flatten().enumerate() {
                    let t = f.get("title").and_then(Value::as_str);
                    let v = f.get("value").and_then(Value::as_str);
                    if t.is_none() || v.is_none() {
                        self.push(format!("{at} fact {j}: title and value must be strings"));
                    }
                    self.text(at, &format!("fact {j} title"), t, MAX_TEXT_BLOCK, false);
                    self.text(at, &format!("fact {j} value"), v, MAX_TEXT_BLOCK, false);
                }
            }
            "Image" => match el.get("url").and_then(Value::as_str) {
                None | Some("") => self.push(format!("{at}: image has no url")),
                Some(url) => {
                    if let Some(rest) = url.strip_prefix("data:") {
                        let ok = rest.split_once(";base64,").is_some_and(|(mime, data)| {
                            mime.starts_with("image/")
                                && !data.is_empty()
                                && data
                                    .bytes()
                                    .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
                        });
                        if !ok {
                            self.push(format!("{at}: image data URI is not base64 image data"));
                        }
                    } else if !url.starts_with("https://") {
                        self.push(format!("{at}: image url must be https or a data URI"));
                    }
                }
            },
            "ActionSet" => match el.get("actions") {
                Some(a) => self.actions(at, a),
                None => self.push(format!("{at}: ActionSet without actions")),
            },
            "Container" | "Column" => {
                if let Some(items) = el.get("items").and_then(Value::as_array) {
                    self.elements(&format!("{at} items"), items);
                }
            }
            "ColumnSet" => {
                for (j, col) in el
                    .get("columns")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    self.element(&format!("{at} columns[{j}]"), "Column", col);
                }
            }
            "Input.Text" | "Input.Date" | "Input.Number" | "Input.Time" | "Input.Toggle" => {
                self.input_id(at, el)
            }
            "Input.ChoiceSet" => {
                self.input_id(at, el);
                let choices = el.get("choices").and_then(Value::as_array);
                if choices.is_none_or(Vec::is_empty) {
                    self.push(format!("{at}: no choices"));
                }
                for (j, ch) in choices.into_iter().flatten().enumerate() {
                    self.text(
                        at,
                        &format!("choice {j} title"),
                        ch.get("title").and_then(Value::as_str),
                        MAX_ACTION_TITLE * 2,
                        true,
                    );
                    if ch
                        .get("value")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                    {
                        self.push(format!("{at}: choice {j} has no value"));
                    }
                }
            }
            _ => {}
        }
    }

    fn actions(&mut self, at: &str, actions: &Value) {
        let Some(list) = actions.as_array() else {
            self.push(format!("{at}: actions is not an array"));
            return;
        };
        if list.len() > MAX_ACTIONS {
            self.push(format!("{at}: {} actions, limit {MAX_ACTIONS}", list.len()));
        }
        for (j, a) in list.iter().enumerate() {
            let kind = a.get("type").and_then(Value::as_str).unwrap_or("?");
            let here = format!("{at} action {j} ({kind})");
            match a.get("title").and_then(Value::as_str) {
                Some(t) if !t.trim().is_empty() => {
                    self.text(&here, "title", Some(t), MAX_ACTION_TITLE, true)
                }
                _ => self.push(format!("{here}: title is empty")),
            }
            if let Some(id) = a.get("id").and_then(Value::as_str)
                && !self.action_ids.insert(id.to_string())
            {
                self.push(format!("{here}: action id '{id}' is not unique"));
            }
            match kind {
                "Action.Execute" => {
                    if a.get("verb")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                    {
                        self.push(format!("{here}: Action.Execute has no verb"));
                    }
                    if a.get("data").is_some_and(|d| !d.is_object()) {
                        self.push(format!("{here}: data must be an object"));
                    }
                }
                "Action.Submit" => {
                    if a.get("data").is_some_and(|d| !d.is_object()) {
                        self.push(format!("{here}: data must be an object"));
                    }
                }
                "Action.OpenUrl" => {
                    if a.get("url")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty)
                    {
                        self.push(format!("{here}: Action.OpenUrl has no url"));
                    }
                }
                "Action.ShowCard" => match a.get("card") {
                    Some(card) => self.card(&format!("{here} card"), card, false),
                    None => self.push(format!("{here}: Action.ShowCard has no card")),
                },
                "Action.ToggleVisibility" => {}
                other => self.push(format!("{here}: unknown action type {other}")),
            }
        }
    }
}
