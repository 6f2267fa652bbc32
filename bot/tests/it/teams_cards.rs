//! Every card we render passes Teams' limits, and the checker catches each kind of violation.

use lineup_bot::teams::limits::{MAX_ACTIONS, check_activity, check_card};
use lineup_bot::teams::render::{self, FormValues};
use lineup_core::messaging::chat_message::{Action, ActionStyle, Image, Message};
use serde_json::{Value, json};

fn action(i: usize, confirm: bool) -> Action {
    Action {
        id: format!("request.a{i}"),
        label: format!("Button {i}"),
        style: if i.is_multiple_of(2) {
            ActionStyle::Primary
        } else {
            ActionStyle::Danger
        },
        value: format!("req-{i}"),
        confirm: confirm.then(|| "Really *terminate* this line?".to_string()),
    }
}

fn big_message() -> Message {
    Message {
        title: Some("Cap raise for Ann".into()),
        actions: (0..9).map(|i| action(i, i == 3)).collect(),
        image: Some(Image {
            png: vec![7; 2000],
            alt: "QR".into(),
            filename: "q.png".into(),
        }),
        context: Some("Decided by *Bob* at 10:02".into()),
        ..Message::text("Ann asks for *25 GB* more.\nReason: trip")
    }
    .field("Budget left", "€40")
    .field("30-day usage", "3.2 GB")
}

#[test]
fn rendered_cards_pass_the_limits() {
    let card = render::message_card(&big_message());
    check_card(&card).unwrap();
    check_activity(&render::message_activity(&big_message())).unwrap();
    // Nine buttons: two ActionSets of at most six.
    let sets: Vec<&Value> = card["body"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "ActionSet")
        .collect();
    assert_eq!(sets.len(), 2);
    assert_eq!(sets[0]["actions"].as_array().unwrap().len(), MAX_ACTIONS);
    // The confirmed button is a ShowCard holding the question and the real Action.Execute.
    let confirm = &sets[0]["actions"][3];
    assert_eq!(confirm["type"], "Action.ShowCard");
    assert_eq!(
        confirm["card"]["body"][0]["text"],
        "Really **terminate** this line?"
    );
    let inner = &confirm["card"]["actions"][0];
    assert_eq!(inner["type"], "Action.Execute");
    assert_eq!(inner["verb"], "request.a3");
    assert_eq!(
        inner["data"],
        json!({"action": "request.a3", "value": "req-3"})
    );
    assert_eq!(inner["style"], "destructive");
    assert_eq!(sets[0]["actions"][0]["style"], "positive");

    let plans: Vec<(String, String)> = (0..30)
        .map(|i| (format!("p{i}"), format!("Plan {i}")))
        .collect();
    for c in [
        render::request_form_card(&plans, &FormValues::default(), None),
        render::request_form_card(
            &plans,
            &FormValues {
                plan: "p1".into(),
                reason: "x".into(),
                wanted_date: "2024-01-01".into(),
            },
            Some(("plan", "Pick one")),
        ),
        render::request_form_card(&plans, &FormValues::default(), Some(("other", "Oops"))),
        render::deny_form_card("req-1", "", None),
        render::deny_form_card("req-1", "because", Some("Too short")),
        render::message_card(&Message::default()),
        render::message_card(&Message {
            actions: vec![Action {
                label: " ".into(),
                ..action(0, false)
            }],
            ..Message::text("x")
        }),
    ] {
        check_card(&c).unwrap_or_else(|e| panic!("{e:?}\n{c:#}"));
        check_activity(&render::card_activity(&c)).unwrap();
        check_card(&render::invoke_card_response(&c)["value"]).unwrap();
    }
    // Huge texts are cut, not rejected... but a huge image is caught.
    let long = Message::text("y".repeat(50_000));
    check_card(&render::message_card(&long)).unwrap();
}

fn with(mut card: Value, f: impl FnOnce(&mut Value)) -> Value {
    f(&mut card);
    card
}

fn problems(card: &Value) -> String {
    check_card(card).expect_err("a violation").join("\n")
}

#[test]
fn the_checker_names_each_violation() {
    let base = render::message_card(&Message {
        actions: vec![action(0, false), action(1, false)],
        ..Message::text("hi")
    });
    check_card(&base).unwrap();
    let set = 1; // body[1] is the ActionSet
    let cases: Vec<(&str, Value)> = vec![
        (
            "bytes, limit 28672",
            render::message_card(&Message {
                image: Some(Image {
                    png: vec![1; 30_000],
                    alt: "a".into(),
                    filename: "f".into(),
                }),
                ..Message::text("x")
            }),
        ),
        (
            "7 actions, limit 6",
            with(base.clone(), |c| {
                let a = c["body"][set]["actions"][0].clone();
                let list = c["body"][set]["actions"].as_array_mut().unwrap();
                for i in 0..5 {
                    let mut b = a.clone();
                    b["id"] = json!(format!("z{i}"));
                    list.push(b);
                }
            }),
        ),
        (
            "title is empty",
            with(base.clone(), |c| {
                c["body"][set]["actions"][0]["title"] = json!("")
            }),
        ),
        (
            "action id 'request.a0' is not unique",
            with(base.clone(), |c| {
                c["body"][set]["actions"][1]["id"] = json!("request.a0")
            }),
        ),
        (
            "Action.Execute has no verb",
            with(base.clone(), |c| {
                c["body"][set]["actions"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("verb");
            }),
        ),
        (
            "data must be an object",
            with(base.clone(), |c| {
                c["body"][set]["actions"][0]["data"] = json!("x")
            }),
        ),
        (
            "text is empty",
            with(base.clone(), |c| c["body"][0]["text"] = json!("")),
        ),
        (
            "contains control characters",
            with(base.clone(), |c| c["body"][0]["text"] = json!("a\u{0007}b")),
        ),
        (
            "image data URI is not base64",
            with(base.clone(), |c| {
                c["body"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "Image", "url": "data:image/png;base64,@@"}))
            }),
        ),
        (
            "image url must be https",
            with(base.clone(), |c| {
                c["body"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "Image", "url": "http://x/y.png"}))
            }),
        ),
        (
            "version 1.6",
            with(base.clone(), |c| c["version"] = json!("1.6")),
        ),
        (
            "type must be AdaptiveCard",
            with(base.clone(), |c| c["type"] = json!("HeroCard")),
        ),
        (
            "input has no id",
            with(base.clone(), |c| {
                c["body"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "Input.Text"}))
            }),
        ),
        (
            "input id 'a' is not unique",
            with(base.clone(), |c| {
                let b = c["body"].as_array_mut().unwrap();
                b.push(json!({"type": "Input.Text", "id": "a"}));
                b.push(json!({"type": "Input.Date", "id": "a"}));
            }),
        ),
        (
            "no choices",
            with(base.clone(), |c| {
                c["body"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "Input.ChoiceSet", "id": "p", "choices": []}))
            }),
        ),
        (
            "no facts",
            with(base.clone(), |c| {
                c["body"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "FactSet", "facts": []}))
            }),
        ),
        (
            "unknown action type",
            with(base.clone(), |c| {
                c["body"][set]["actions"][0]["type"] = json!("Action.Magic")
            }),
        ),
        (
            "characters, limit 60",
            with(base.clone(), |c| {
                c["body"][set]["actions"][0]["title"] = json!("t".repeat(61))
            }),
        ),
    ];
    for (expected, card) in cases {
        let p = problems(&card);
        assert!(p.contains(expected), "expected {expected:?} in {p}");
    }
    // Where: the ActionSet's path is named.
    let p = problems(&with(base.clone(), |c| {
        c["body"][set]["actions"][0]["title"] = json!("")
    }));
    assert!(
        p.starts_with("card body[1] (ActionSet) action 0 (Action.Execute)"),
        "{p}"
    );
    // Activities: size and every card inside.
    let activity = json!({"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": with(base, |c| c["body"][0]["text"] = json!(""))}]});
    assert!(
        check_activity(&activity).unwrap_err()[0].starts_with("attachments[0] body[0] (TextBlock)")
    );
}
