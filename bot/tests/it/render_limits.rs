//! Every rendered message and both modals pass Slack's limits; the checker catches each kind
//! of violation.

use lineup_bot::slack::limits::{check_message, check_view};
use lineup_bot::slack::render::{self, deny_reason_modal, message_payload, request_modal};
use lineup_core::messaging::chat_message::{Action, ActionStyle, Field, Image, Message};
use serde_json::{Value, json};
use slack_morphism::prelude::{SlackBlock, SlackView};

fn action(id: &str, style: ActionStyle, confirm: Option<&str>) -> Action {
    Action {
        id: id.into(),
        label: "Approve".into(),
        style,
        value: "req-1".into(),
        confirm: confirm.map(str::to_string),
    }
}

fn full_message() -> Message {
    Message {
        title: Some("Ann <ann@acme> asks for a line & a cap".into()),
        text: "*Ann* needs an EU line: 3 < 5 & 7 > 2".into(),
        fields: (0..13)
            .map(|i| Field {
                label: format!("Label {i}"),
                value: format!("<value {i}>"),
            })
            .collect(),
        actions: vec![
            action("request.approve", ActionStyle::Primary, None),
            action(
                "request.deny",
                ActionStyle::Danger,
                Some("Deny Ann's request?"),
            ),
            action("request.later", ActionStyle::Default, None),
        ],
        image: Some(Image {
            png: vec![1, 2, 3],
            alt: "QR".into(),
            filename: "qr.png".into(),
        }),
        context: Some("Decided by <Bob> at 12:00".into()),
    }
}

fn assert_ok(v: Result<(), Vec<String>>) {
    if let Err(e) = v {
        panic!("limits violated: {e:#?}");
    }
}

#[test]
fn rendered_message_shape_and_escaping() {
    let m = full_message();
    let p = message_payload(&m);
    assert_ok(check_message(&p));
    let blocks = p["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    assert_eq!(
        blocks[1]["text"]["text"],
        "*Ann* needs an EU line: 3 &lt; 5 &amp; 7 &gt; 2"
    );
    // 13 fields → two sections (10 + 3).
    assert_eq!(blocks[2]["fields"].as_array().unwrap().len(), 10);
    assert_eq!(blocks[3]["fields"].as_array().unwrap().len(), 3);
    assert_eq!(blocks[2]["fields"][0]["text"], "*Label 0*\n&lt;value 0&gt;");
    let buttons = blocks[4]["elements"].as_array().unwrap();
    assert_eq!(buttons[0]["style"], "primary");
    assert_eq!(buttons[1]["style"], "danger");
    assert!(buttons[2].get("style").is_none());
    assert_eq!(buttons[1]["confirm"]["text"]["text"], "Deny Ann's request?");
    assert_eq!(buttons[1]["confirm"]["style"], "danger");
    assert_eq!(buttons[0]["value"], "req-1");
    assert_eq!(blocks[5]["type"], "context");
    assert_eq!(
        blocks[5]["elements"][0]["text"],
        "Decided by &lt;Bob&gt; at 12:00"
    );
    assert_eq!(blocks.len(), 6, "the image is uploaded, not a block");
    assert!(p["text"].as_str().unwrap().contains("&lt;ann@acme&gt;"));
    // slack-morphism's models read our blocks back (clicks on them are parsed strictly).
    let _: Vec<SlackBlock> = serde_json::from_value(p["blocks"].clone()).unwrap();
}

#[test]
fn oversized_messages_are_cut_to_fit() {
    let m = Message {
        title: Some("T".repeat(400)),
        text: "line of text & more\n".repeat(2000),
        fields: vec![Field {
            label: "L".into(),
            value: "v".repeat(5000),
        }],
        actions: (0..30)
            .map(|i| Action {
                id: format!("a{i}"),
                label: "B".repeat(100),
                style: ActionStyle::Default,
                value: "v".into(),
                confirm: Some("?".repeat(500)),
            })
            .collect(),
        image: None,
        context: Some("c".repeat(5000)),
    };
    let p = message_payload(&m);
    assert_ok(check_message(&p));
    assert!(p["blocks"].as_array().unwrap().len() > 10);
    assert_ok(check_message(&message_payload(&Message::text(""))));
    assert_ok(check_message(&message_payload(&Message::text("plain"))));
}

#[test]
fn modals_pass_and_parse() {
    let plans: Vec<(String, String)> = (0..150)
        .map(|i| (format!("plan-{i}"), format!("Plan {i} ").repeat(20)))
        .collect();
    let m = request_modal(&plans, "tenant=1;user=2");
    assert_ok(check_view(&m));
    assert_eq!(
        m["blocks"][0]["element"]["options"]
            .as_array()
            .unwrap()
            .len(),
        100
    );
    assert_eq!(m["callback_id"], render::REQUEST_CALLBACK_ID);
    let d = deny_reason_modal("req-1");
    assert_ok(check_view(&d));
    assert_eq!(d["private_metadata"], "req-1");
    let _: SlackView = serde_json::from_value(m).unwrap();
    let _: SlackView = serde_json::from_value(d).unwrap();
}

fn errs(v: Result<(), Vec<String>>) -> String {
    v.expect_err("should be refused").join("\n")
}

fn section(text: &str) -> Value {
    json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})
}

fn button(id: &str, text: &str, value: &str) -> Value {
    json!({"type": "button", "action_id": id, "text": {"type": "plain_text", "text": text}, "value": value})
}

#[test]
fn checker_catches_each_kind_of_violation() {
    let many: Vec<Value> = (0..51).map(|_| section("x")).collect();
    assert!(
        errs(check_message(&json!({"text": "t", "blocks": many}))).contains("51 blocks, limit 50")
    );
    assert!(
        errs(check_message(
            &json!({"text": "x".repeat(40_001), "blocks": []})
        ))
        .contains("text is 40001 characters, limit 40000")
    );
    assert!(
        errs(check_message(&json!([section(&"x".repeat(3001))])))
            .contains("block 0 (section): text is 3001 characters, limit 3000")
    );
    assert!(
        errs(check_message(
            &json!([{"type": "header", "text": {"type": "plain_text", "text": "h".repeat(151)}}])
        ))
        .contains("limit 150")
    );
    let fields: Vec<Value> = (0..11)
        .map(|_| json!({"type": "mrkdwn", "text": "f"}))
        .collect();
    assert!(
        errs(check_message(
            &json!([{"type": "section", "fields": fields}])
        ))
        .contains("11 fields, limit 10")
    );
    assert!(
        errs(check_message(
            &json!([{"type": "section", "fields": [{"type": "mrkdwn", "text": "f".repeat(2001)}]}])
        ))
        .contains("field 0 is 2001 characters, limit 2000")
    );
    let buttons: Vec<Value> = (0..26)
        .map(|i| button(&format!("b{i}"), "ok", "v"))
        .collect();
    assert!(
        errs(check_message(
            &json!([{"type": "actions", "elements": buttons}])
        ))
        .contains("26 elements, limit 25")
    );
    let e = errs(check_message(&json!([
        {"type": "actions", "elements": [button("same", "ok", "v")]},
        {"type": "actions", "elements": [button("same", "ok", "v")]},
    ])));
    assert!(
        e.contains("block 1 (actions): action_id 'same' is not unique"),
        "{e}"
    );
    assert!(
        errs(check_message(
            &json!([{"type": "actions", "elements": [button("b", &"t".repeat(76), "v")]}])
        ))
        .contains("button: text is 76 characters, limit 75")
    );
    assert!(
        errs(check_message(
            &json!([{"type": "actions", "elements": [button("b", "ok", &"v".repeat(2001))]}])
        ))
        .contains("value is 2001 characters, limit 2000")
    );
    assert!(
        errs(check_message(
            &json!([{"type": "actions", "elements": [button(&"a".repeat(256), "ok", "v")]}])
        ))
        .contains("action_id is 256 characters, limit 255")
    );
    let mut b = button("b", "ok", "v");
    b["url"] = json!(format!("https://x/{}", "u".repeat(3000)));
    assert!(
        errs(check_message(
            &json!([{"type": "actions", "elements": [b]}])
        ))
        .contains("url is")
    );
    let ctx: Vec<Value> = (0..11)
        .map(|_| json!({"type": "mrkdwn", "text": "c"}))
        .collect();
    assert!(
        errs(check_message(
            &json!([{"type": "context", "elements": ctx}])
        ))
        .contains("11 elements, limit 10")
    );
    let e = errs(check_message(&json!([
        {"type": "divider", "block_id": "dup"}, {"type": "divider", "block_id": "dup"},
        {"type": "divider", "block_id": "b".repeat(256)},
    ])));
    assert!(
        e.contains("block_id 'dup' is not unique")
            && e.contains("block_id is 256 characters, limit 255"),
        "{e}"
    );
    assert!(errs(check_message(&json!([{"type": "image", "image_url": "https://x/i.png", "alt_text": "a".repeat(2001)}]))).contains("alt_text is 2001"));
    let mut accessory = section("x");
    accessory["accessory"] = button("b", "ok", "v");
    accessory["accessory"]["confirm"] = json!({"title": {"type": "plain_text", "text": "t"}, "text": {"type": "plain_text", "text": "q".repeat(301)}, "confirm": {"type": "plain_text", "text": "y"}, "deny": {"type": "plain_text", "text": "n"}});
    assert!(errs(check_message(&json!([accessory]))).contains("confirm: text is 301"));

    // Views.
    let mut v = deny_reason_modal("m");
    v["title"]["text"] = json!("A title that is far too long");
    v["submit"]["text"] = json!("s".repeat(25));
    v["close"]["text"] = json!("c".repeat(25));
    v["private_metadata"] = json!("p".repeat(3001));
    v["callback_id"] = json!("c".repeat(256));
    let e = errs(check_view(&v));
    for needle in [
        "view: title is 28 characters, limit 24",
        "submit is 25",
        "close is 25",
        "private_metadata is 3001",
        "callback_id is 256",
    ] {
        assert!(e.contains(needle), "{needle} missing from {e}");
    }
    let mut v = deny_reason_modal("m");
    v["blocks"] = json!((0..101).map(|_| section("x")).collect::<Vec<_>>());
    assert!(errs(check_view(&v)).contains("101 blocks, limit 100"));
    // 100 blocks are fine in a modal but not in a message.
    let hundred: Vec<Value> = (0..100).map(|_| section("x")).collect();
    v["blocks"] = json!(hundred);
    assert_ok(check_view(&v));
    assert!(check_message(&json!({"text": "t", "blocks": hundred})).is_err());
}
