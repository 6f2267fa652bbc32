//! Discord's documented message, component and modal limits, checked before anything is sent
//! (and by the fake Discord on everything it receives). Each violation names the place and the
//! limit it breaks.
//!
//! Sources: Discord's API reference, "Channel → Embed limits" (title 256, description 4096,
//! 25 fields, field name 256 / value 1024, footer 2048, author 256, 6000 in total, 10 embeds),
//! "Create Message" (content 2000), "Message Components" (5 action rows, 5 buttons per row or
//! one select, custom_id 100, button label 80, select: 25 options, option label/value/
//! description 100, placeholder 150), "Interactions → Modal" (title 45, 1–5 components) and
//! "Text Inputs" (label 45, placeholder 100, value and max_length 4000).

use std::collections::HashSet;

use serde_json::Value;

pub const MAX_CONTENT: usize = 2000;
pub const MAX_EMBEDS: usize = 10;
pub const MAX_EMBED_TITLE: usize = 256;
pub const MAX_EMBED_DESCRIPTION: usize = 4096;
pub const MAX_EMBED_FIELDS: usize = 25;
pub const MAX_FIELD_NAME: usize = 256;
pub const MAX_FIELD_VALUE: usize = 1024;
pub const MAX_EMBED_FOOTER: usize = 2048;
pub const MAX_EMBED_AUTHOR: usize = 256;
pub const MAX_EMBED_TOTAL: usize = 6000;
pub const MAX_ROWS: usize = 5;
pub const MAX_BUTTONS_PER_ROW: usize = 5;
pub const MAX_CUSTOM_ID: usize = 100;
pub const MAX_BUTTON_LABEL: usize = 80;
pub const MAX_SELECT_OPTIONS: usize = 25;
pub const MAX_OPTION_LABEL: usize = 100;
pub const MAX_OPTION_VALUE: usize = 100;
pub const MAX_SELECT_PLACEHOLDER: usize = 150;
pub const MAX_MODAL_TITLE: usize = 45;
pub const MAX_MODAL_INPUTS: usize = 5;
pub const MAX_INPUT_LABEL: usize = 45;
pub const MAX_INPUT_PLACEHOLDER: usize = 100;
pub const MAX_INPUT_VALUE: usize = 4000;
pub const MAX_ATTACHMENT_DESCRIPTION: usize = 1024;

fn chars(s: &str) -> usize {
    s.chars().count()
}

#[derive(Default)]
struct Checker {
    errors: Vec<String>,
    custom_ids: HashSet<String>,
}

impl Checker {
    fn finish(self) -> Result<(), Vec<String>> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.errors)
        }
    }

    fn max(&mut self, at: &str, what: &str, s: &str, max: usize) -> usize {
        let n = chars(s);
        if n > max {
            self.errors.push(format!(
                "{at}: {what} has {n} characters, the limit is {max}"
            ));
        }
        n
    }

    fn str_at(&mut self, at: &str, v: &Value, key: &str, max: usize) -> usize {
        match v.get(key).and_then(Value::as_str) {
            Some(s) => self.max(at, key, s, max),
            None => 0,
        }
    }

    fn custom_id(&mut self, at: &str, v: &Value) {
        match v.get("custom_id").and_then(Value::as_str) {
            Some(id) => {
                self.max(at, "custom_id", id, MAX_CUSTOM_ID);
                if id.is_empty() {
                    self.errors.push(format!("{at}: custom_id is empty"));
                }
                if !self.custom_ids.insert(id.to_string()) {
                    self.errors
                        .push(format!("{at}: custom_id {id:?} is used twice"));
                }
            }
            None => self.errors.push(format!("{at}: no custom_id")),
        }
    }

    fn embed(&mut self, at: &str, e: &Value) {
        let mut total = self.str_at(at, e, "title", MAX_EMBED_TITLE);
        total += self.str_at(at, e, "description", MAX_EMBED_DESCRIPTION);
        if let Some(f) = e.get("footer") {
            total += self.str_at(&format!("{at}.footer"), f, "text", MAX_EMBED_FOOTER);
        }
        if let Some(a) = e.get("author") {
            total += self.str_at(&format!("{at}.author"), a, "name", MAX_EMBED_AUTHOR);
        }
        if let Some(fields) = e.get("fields").and_then(Value::as_array) {
            if fields.len() > MAX_EMBED_FIELDS {
                self.errors.push(format!(
                    "{at}: {} fields, the limit is {MAX_EMBED_FIELDS}",
                    fields.len()
                ));
            }
            for (i, f) in fields.iter().enumerate() {
                let fat = format!("{at}.fields[{i}]");
                total += self.str_at(&fat, f, "name", MAX_FIELD_NAME);
                total += self.str_at(&fat, f, "value", MAX_FIELD_VALUE);
                for key in ["name", "value"] {
                    if f.get(key)
                        .and_then(Value::as_str)
                        .is_none_or(|s| s.trim().is_empty())
                    {
                        self.errors.push(format!("{fat}: {key} is empty"));
                    }
                }
            }
        }
        if total > MAX_EMBED_TOTAL {
            self.errors.push(format!(
                "{at}: {total} characters in all, the limit is {MAX_EMBED_TOTAL}"
            ));
        }
    }

    fn components(&mut self, at: &str, rows: &Value) {
        let Some(rows) = rows.as_array() else {
            self.errors
                .push(format!("{at}: components is not an array"));
            return;
        };
        if rows.len() > MAX_ROWS {
            self.errors.push(format!(
                "{at}: {} action rows, the limit is {MAX_ROWS}",
                rows.len()
            ));
        }
        for (r, row) in rows.iter().enumerate() {
            let rat = format!("{at}[{r}]");
            if row.get("type").and_then(Value::as_u64) != Some(1) {
                self.errors
                    .push(format!("{rat}: top-level component is not an action row"));
                continue;
            }
            let items = row
                .get("components")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if items.is_empty() {
                self.errors.push(format!("{rat}: empty action row"));
            }
            let buttons = items.iter().filter(|c| c["type"] == 2).count();
            if buttons > MAX_BUTTONS_PER_ROW {
                self.errors.push(format!(
                    "{rat}: {buttons} buttons in one row, the limit is {MAX_BUTTONS_PER_ROW}"
                ));
            }
            let selects = items
                .iter()
                .filter(|c| {
                    c["type"]
                        .as_u64()
                        .is_some_and(|t| (3..=8).contains(&t) && t != 4)
                })
                .count();
            if selects > 0 && items.len() > 1 {
                self.errors
                    .push(format!("{rat}: a select must be alone in its row"));
            }
            for (i, c) in items.iter().enumerate() {
                let cat = format!("{rat}.components[{i}]");
                match c.get("type").and_then(Value::as_u64) {
                    Some(2) => {
                        self.str_at(&cat, c, "label", MAX_BUTTON_LABEL);
                        if c.get("style").and_then(Value::as_u64) == Some(5) {
                            if c.get("url").is_none() {
                                self.errors.push(format!("{cat}: link button without url"));
                            }
                        } else {
                            self.custom_id(&cat, c);
                        }
                    }
                    Some(3) => {
                        self.custom_id(&cat, c);
                        self.str_at(&cat, c, "placeholder", MAX_SELECT_PLACEHOLDER);
                        let options = c
                            .get("options")
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default();
                        if options.is_empty() || options.len() > MAX_SELECT_OPTIONS {
                            self.errors.push(format!(
                                "{cat}: {} options, a select needs 1 to {MAX_SELECT_OPTIONS}",
                                options.len()
                            ));
                        }
                        for (o, opt) in options.iter().enumerate() {
                            let oat = format!("{cat}.options[{o}]");
                            self.str_at(&oat, opt, "label", MAX_OPTION_LABEL);
                            self.str_at(&oat, opt, "value", MAX_OPTION_VALUE);
                            self.str_at(&oat, opt, "description", MAX_OPTION_LABEL);
                        }
                    }
                    Some(4) => self
                        .errors
                        .push(format!("{cat}: a text input only goes in a modal")),
                    other => self
                        .errors
                        .push(format!("{cat}: unknown component type {other:?}")),
                }
            }
        }
    }
}

fn message_into(c: &mut Checker, at: &str, m: &Value) {
    let Some(o) = m.as_object() else {
        c.errors.push(format!("{at}: not a JSON object"));
        return;
    };
    if let Some(s) = o.get("content").and_then(Value::as_str) {
        c.max(at, "content", s, MAX_CONTENT);
    }
    if let Some(embeds) = o.get("embeds").and_then(Value::as_array) {
        if embeds.len() > MAX_EMBEDS {
            c.errors.push(format!(
                "{at}: {} embeds, the limit is {MAX_EMBEDS}",
                embeds.len()
            ));
        }
        let mut all = 0;
        for (i, e) in embeds.iter().enumerate() {
            c.embed(&format!("{at}.embeds[{i}]"), e);
            all += ["title", "description"]
                .iter()
                .filter_map(|k| e.get(*k).and_then(Value::as_str))
                .map(chars)
                .sum::<usize>();
        }
        if embeds.len() > 1 && all > MAX_EMBED_TOTAL {
            c.errors.push(format!(
                "{at}: embeds have {all} characters together, the limit is {MAX_EMBED_TOTAL}"
            ));
        }
    }
    if let Some(rows) = o.get("components") {
        c.components(&format!("{at}.components"), rows);
    }
    let has_body = o
        .get("content")
        .and_then(Value::as_str)
        .is_some_and(|s| !s.is_empty())
        || o.get("embeds")
            .and_then(Value::as_array)
            .is_some_and(|e| !e.is_empty())
        || o.get("components")
            .and_then(Value::as_array)
            .is_some_and(|e| !e.is_empty())
        || o.get("attachments")
            .and_then(Value::as_array)
            .is_some_and(|e| !e.is_empty());
    if !has_body {
        c.errors.push(format!(
            "{at}: empty message (no content, embeds, components or files)"
        ));
    }
}

/// A message body (create / edit message, follow-up, `type 4`/`7` data).
pub fn check_message(m: &Value) -> Result<(), Vec<String>> {
    let mut c = Checker::default();
    message_into(&mut c, "message", m);
    c.finish()
}

/// A modal (`type 9` data).
pub fn check_modal(m: &Value) -> Result<(), Vec<String>> {
    let mut c = Checker::default();
    modal_into(&mut c, m);
    c.finish()
}

fn modal_into(c: &mut Checker, m: &Value) {
    let at = "modal";
    match m.get("title").and_then(Value::as_str) {
        Some(t) => {
            c.max(at, "title", t, MAX_MODAL_TITLE);
        }
        None => c.errors.push(format!("{at}: no title")),
    }
    c.custom_id(at, m);
    let rows = m
        .get("components")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if rows.is_empty() || rows.len() > MAX_MODAL_INPUTS {
        c.errors.push(format!(
            "{at}: {} components, a modal needs 1 to {MAX_MODAL_INPUTS}",
            rows.len()
        ));
    }
    for (r, row) in rows.iter().enumerate() {
        let rat = format!("{at}.components[{r}]");
        let items = row
            .get("components")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if items.len() != 1 || items[0]["type"] != 4 {
            c.errors.push(format!(
                "{rat}: each row of a modal holds exactly one text input"
            ));
            continue;
        }
        let input = &items[0];
        let iat = format!("{rat}.text_input");
        c.custom_id(&iat, input);
        match input.get("label").and_then(Value::as_str) {
            Some(l) => {
                c.max(&iat, "label", l, MAX_INPUT_LABEL);
            }
            None => c.errors.push(format!("{iat}: no label")),
        }
        c.str_at(&iat, input, "placeholder", MAX_INPUT_PLACEHOLDER);
        c.str_at(&iat, input, "value", MAX_INPUT_VALUE);
        if let Some(n) = input.get("max_length").and_then(Value::as_u64)
            && (n == 0 || n as usize > MAX_INPUT_VALUE)
        {
            c.errors.push(format!(
                "{iat}: max_length {n} is outside 1..={MAX_INPUT_VALUE}"
            ));
        }
    }
}

/// An interaction response (`{"type", "data"}`): messages and modals are checked.
pub fn check_response(r: &Value) -> Result<(), Vec<String>> {
    let mut c = Checker::default();
    match r.get("type").and_then(Value::as_u64) {
        Some(1) | Some(6) => {}
        Some(5) => {}
        Some(4) | Some(7) => match r.get("data") {
            Some(d) => message_into(&mut c, "response.data", d),
            None => c.errors.push("response: type 4/7 without data".into()),
        },
        Some(9) => match r.get("data") {
            Some(d) => modal_into(&mut c, d),
            None => c.errors.push("response: modal without data".into()),
        },
        other => c.errors.push(format!("response: unknown type {other:?}")),
    }
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(v: Result<(), Vec<String>>, needle: &str) {
        let errs = v.expect_err("a violation");
        assert!(
            errs.iter().any(|e| e.contains(needle)),
            "{needle:?} not in {errs:?}"
        );
    }

    #[test]
    fn each_embed_limit_is_named() {
        let e = |embed: Value| json!({"embeds": [embed]});
        one(
            check_message(&e(json!({"title": "t".repeat(257)}))),
            "title has 257",
        );
        one(
            check_message(&e(json!({"description": "d".repeat(4097)}))),
            "description has 4097",
        );
        let fields: Vec<Value> = (0..26)
            .map(|i| json!({"name": format!("n{i}"), "value": "v"}))
            .collect();
        one(check_message(&e(json!({"fields": fields}))), "26 fields");
        one(
            check_message(&e(
                json!({"fields": [{"name": "n".repeat(257), "value": "v"}]}),
            )),
            "name has 257",
        );
        one(
            check_message(&e(
                json!({"fields": [{"name": "n", "value": "v".repeat(1025)}]}),
            )),
            "value has 1025",
        );
        one(
            check_message(&e(json!({"footer": {"text": "f".repeat(2049)}}))),
            "footer: text has 2049",
        );
        one(
            check_message(&e(
                json!({"description": "d".repeat(4000), "footer": {"text": "f".repeat(2001)}}),
            )),
            "6001 characters in all",
        );
        one(
            check_message(&json!({"content": "c".repeat(2001)})),
            "content has 2001",
        );
        one(check_message(&json!({"content": ""})), "empty message");
    }

    #[test]
    fn each_component_limit_is_named() {
        let b = |id: String, label: String| json!({"type": 2, "style": 1, "label": label, "custom_id": id});
        let row = |n: usize, off: usize| json!({"type": 1, "components": (0..n).map(|i| b(format!("x{}", i + off), "L".into())).collect::<Vec<_>>()});
        one(
            check_message(&json!({"components": [row(6, 0)]})),
            "6 buttons in one row",
        );
        let rows: Vec<Value> = (0..6).map(|r| row(1, r * 10)).collect();
        one(check_message(&json!({"components": rows})), "6 action rows");
        one(
            check_message(
                &json!({"components": [{"type": 1, "components": [b("i".repeat(101), "L".into())]}]}),
            ),
            "custom_id has 101",
        );
        one(
            check_message(
                &json!({"components": [{"type": 1, "components": [b("i".into(), "L".repeat(81))]}]}),
            ),
            "label has 81",
        );
        one(
            check_message(
                &json!({"components": [{"type": 1, "components": [b("i".into(), "a".into()), b("i".into(), "b".into())]}]}),
            ),
            "used twice",
        );
    }

    #[test]
    fn modal_limits_are_named() {
        let input = |id: &str| json!({"type": 1, "components": [{"type": 4, "custom_id": id, "label": "L", "style": 1}]});
        one(
            check_modal(
                &json!({"custom_id": "m", "title": "T".repeat(46), "components": [input("a")]}),
            ),
            "title has 46",
        );
        let six: Vec<Value> = (0..6).map(|i| input(&format!("i{i}"))).collect();
        one(
            check_modal(&json!({"custom_id": "m", "title": "T", "components": six})),
            "6 components",
        );
        one(
            check_modal(
                &json!({"custom_id": "m", "title": "T", "components": [{"type": 1, "components": [{"type": 4, "custom_id": "a", "label": "L".repeat(46), "style": 1}]}]}),
            ),
            "label has 46",
        );
        one(
            check_response(&json!({"type": 9, "data": {"title": "T", "components": [input("a")]}})),
            "no custom_id",
        );
    }
}
