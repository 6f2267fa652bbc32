//! The platform-neutral messages about requests and lines that chat adapters render.

use super::commands::UsageSummary;
use super::roaming_quote::{RoamingOption, RoamingQuote, UsageBasis};
use super::{Request, RequestDetails, RequestState, Route};
use crate::lines::activation_code::ActivationCode;
use crate::lines::line::Line;
use crate::lines::plan::Plan;
use crate::messaging::chat_message::{Action, ActionStyle, Image, Message};

pub const APPROVE: &str = "request.approve";
/// Approve a roaming request as the quote's travel eSIM instead of home-line roaming.
pub const APPROVE_TRAVEL_ESIM: &str = "request.approve_travel_esim";
pub const DENY: &str = "request.deny";
pub const RETRY: &str = "request.retry";

/// Names and numbers a card shows, resolved by the caller.
#[derive(Debug, Clone)]
pub struct CardContext {
    pub requester_name: String,
    /// "US 5GB (20.00 USD/month)" for new lines; the line's plan otherwise.
    pub plan_label: Option<String>,
    pub usage: Option<UsageSummary>,
    pub decided_by_name: Option<String>,
}

pub fn what(request: &Request, ctx: &CardContext) -> String {
    match &request.details {
        RequestDetails::NewLine { wanted_date, .. } => {
            let plan = ctx.plan_label.as_deref().unwrap_or("a plan");
            match wanted_date {
                Some(d) => format!("a new eSIM line on {plan}, wanted by {d}"),
                None => format!("a new eSIM line on {plan}"),
            }
        }
        RequestDetails::CapRaise { amount_minor } => {
            let currency = ctx.usage.as_ref().map(|u| u.spent_this_period.currency);
            match currency {
                Some(c) => format!(
                    "a cap raise of {} this month",
                    crate::money::Money::new(*amount_minor, c)
                ),
                None => format!("a cap raise of {amount_minor} (minor units) this month"),
            }
        }
        RequestDetails::Roaming {
            country,
            from,
            to,
            quote,
            ..
        } => match quote
            .as_ref()
            .filter(|q| q.chosen == Some(RoamingOption::TravelEsim))
        {
            Some(RoamingQuote {
                travel: Some(travel),
                ..
            }) => format!(
                "a travel eSIM for {country} from {from} to {to} ({})",
                travel.package
            ),
            _ => format!("roaming in {country} from {from} to {to}"),
        },
    }
}

/// The card an approver decides on: who, what, why, the numbers, the policy's view.
pub fn approval_card(request: &Request, ctx: &CardContext) -> Message {
    let mut message = Message {
        title: Some("Approval needed".into()),
        text: format!("*{}* asks for {}.", ctx.requester_name, what(request, ctx)),
        ..Message::default()
    }
    .field("Reason", request.reason.clone());
    message = with_usage(message, ctx);
    if let Some(note) = &request.decision_note {
        message = message.field("Policy", note.clone());
    }
    let quote = request.details.roaming_quote();
    if let Some(quote) = quote {
        message = message.with_fields(quote_fields(quote));
    }
    message.actions = approve_actions(request, quote);
    message.actions.push(Action {
        id: DENY.into(),
        label: "Deny".into(),
        style: ActionStyle::Danger,
        value: request.id.to_string(),
        confirm: None,
    });
    message.context = Some(format!(
        "Request {} · expires {}",
        short(request),
        request.expires_at.date()
    ));
    message
}

/// One Approve button, or for a priced trip one per option (the recommended one primary).
fn approve_actions(request: &Request, quote: Option<&RoamingQuote>) -> Vec<Action> {
    let approve = |id: &str, label: String, style| Action {
        id: id.into(),
        label,
        style,
        value: request.id.to_string(),
        confirm: None,
    };
    let Some(quote) = quote else {
        return vec![approve(APPROVE, "Approve".into(), ActionStyle::Primary)];
    };
    let style = |option| {
        if quote.recommended == option {
            ActionStyle::Primary
        } else {
            ActionStyle::Default
        }
    };
    let mut actions = vec![approve(
        APPROVE,
        "Approve roaming on the home line".into(),
        style(RoamingOption::HomeLine),
    )];
    if let Some(travel) = &quote.travel {
        actions.push(approve(
            APPROVE_TRAVEL_ESIM,
            format!("Approve travel eSIM ({}, {})", travel.package, travel.price),
            style(RoamingOption::TravelEsim),
        ));
    }
    actions
}

/// The trip priced both ways: expected use, each option's price, the recommendation and
/// what it saves.
pub fn quote_fields(quote: &RoamingQuote) -> Vec<(String, String)> {
    let basis = match quote.basis {
        UsageBasis::PastTrips { days, bytes } => {
            format!("from past trips: {bytes} over {days} days abroad")
        }
        UsageBasis::PlanAverage { per_day } => {
            format!("no past trips: the plan's average of {per_day} a day")
        }
    };
    let mut fields = vec![
        (
            "Expected use".to_owned(),
            format!("{} over {} days ({basis})", quote.expected, quote.trip_days),
        ),
        (
            "Roaming on the home line".to_owned(),
            quote.home.to_string(),
        ),
        (
            "Travel eSIM".to_owned(),
            match &quote.travel {
                Some(travel) => format!("{} · {}", travel.package, travel.price),
                None => "no connected provider sells a package for this trip".to_owned(),
            },
        ),
    ];
    let recommended = match (quote.recommended, quote.saving()) {
        (RoamingOption::TravelEsim, Some(saving)) => format!("Travel eSIM, saves {saving}"),
        (RoamingOption::HomeLine, Some(saving)) => {
            format!("Roaming on the home line, saves {saving}")
        }
        (_, None) => "Roaming on the home line".to_owned(),
    };
    fields.push(("Recommended".to_owned(), recommended));
    if let Some(chosen) = quote.chosen {
        let label = match chosen {
            RoamingOption::HomeLine => "Roaming on the home line",
            RoamingOption::TravelEsim => "Travel eSIM",
        };
        fields.push(("Chosen".to_owned(), label.to_owned()));
    }
    fields
}

/// The same card once settled: no buttons, who decided and when.
pub fn settled_card(request: &Request, ctx: &CardContext) -> Message {
    let outcome = outcome_line(request, ctx);
    let mut message = Message {
        title: Some(outcome.clone()),
        text: format!("*{}* asked for {}.", ctx.requester_name, what(request, ctx)),
        ..Message::default()
    }
    .field("Reason", request.reason.clone());
    message = with_usage(message, ctx);
    if let Some(quote) = request.details.roaming_quote() {
        message = message.with_fields(quote_fields(quote));
    }
    if let Some(note) = &request.decision_note {
        message = message.field("Note", note.clone());
    }
    message.context = Some(format!("Request {} · {}", short(request), outcome));
    message
}

/// What the requester is told about their request.
pub fn requester_update(request: &Request, ctx: &CardContext) -> Message {
    let text = match request.state {
        RequestState::Pending => match request.route {
            Route::Manager => format!(
                "Your request for {} is waiting for your manager's approval.",
                what(request, ctx)
            ),
            Route::Finance => format!(
                "Your request for {} is waiting for finance's approval.",
                what(request, ctx)
            ),
            _ => format!(
                "Your request for {} is waiting for an admin's approval.",
                what(request, ctx)
            ),
        },
        RequestState::Approved => format!("Your request for {} was approved.", what(request, ctx)),
        RequestState::Denied => format!("Your request for {} was denied.", what(request, ctx)),
        RequestState::Expired => format!(
            "Your request for {} expired without a decision. You can ask again.",
            what(request, ctx)
        ),
        RequestState::Cancelled => {
            format!("Your request for {} was cancelled.", what(request, ctx))
        }
        RequestState::Fulfilled => format!("Done: {}.", what(request, ctx)),
        RequestState::Failed => format!("We could not complete {}.", what(request, ctx)),
    };
    let mut message = Message::text(text);
    if let Some(note) = &request.decision_note {
        message = message.field(
            if request.state == RequestState::Denied {
                "Reason"
            } else {
                "Note"
            },
            note.clone(),
        );
    }
    if let Some(failure) = &request.failure_reason {
        message = message.field("Problem", failure.clone());
    }
    message.context = Some(outcome_line(request, ctx));
    message
}

/// Provisioning failed: tell both sides why, and offer a retry.
pub fn failure_card(request: &Request, ctx: &CardContext) -> Message {
    let mut message = requester_update(request, ctx);
    message.actions = vec![Action {
        id: RETRY.into(),
        label: "Retry".into(),
        style: ActionStyle::Primary,
        value: request.id.to_string(),
        confirm: None,
    }];
    message
}

/// The eSIM itself: QR code, the LPA string, the manual-entry fields and install steps.
/// `code` comes from [`crate::Lineup::reveal_activation_code`], which decides who may see it.
/// The eSIM delivery, saying which carrier the line is with: after a failover it is not the
/// one the company usually uses, and the employee needs it to recognise the profile.
pub fn naming_carrier(mut message: Message, carrier: &str) -> Message {
    message.title = Some(format!("Your eSIM from {carrier} is ready"));
    message.fields.insert(
        0,
        crate::messaging::chat_message::Field {
            label: "Carrier".into(),
            value: carrier.to_owned(),
        },
    );
    message
}

pub fn delivery_message(
    line: &Line,
    plan: &Plan,
    code: &ActivationCode,
) -> Result<Message, String> {
    let lpa = code.lpa_string();
    let png = crate::lines::qr::png(&lpa)?;
    let mut message = Message {
        title: Some("Your eSIM is ready".into()),
        text: format!(
            "Scan the QR code with the phone that should get the *{}* line. \
             Keep this message private: the code installs once.",
            plan.name
        ),
        image: Some(Image {
            png,
            alt: "eSIM QR code".into(),
            filename: "esim-qr.png".into(),
        }),
        ..Message::default()
    }
    .field("Activation code (LPA)", lpa)
    .field("SM-DP+ address", code.smdp_address.clone())
    .field("Matching ID", code.matching_id.clone());
    if let Some(iccid) = &line.iccid {
        message = message.field("ICCID", iccid.to_string());
    }
    message = message
        .field(
            "iPhone",
            "Settings → Cellular → Add eSIM → Use QR Code. No camera? Choose Enter Details Manually and type the SM-DP+ address and Matching ID.",
        )
        .field(
            "Android",
            "Settings → Network & internet → SIMs → Add SIM → Download a SIM instead? → scan the code, or enter the activation code.",
        );
    if code.confirmation_code_required {
        message = message.field(
            "Confirmation code",
            "Your phone will ask for a confirmation code; IT sends it separately.",
        );
    }
    Ok(message)
}

/// `/esim usage`.
pub fn usage_message(summary: &UsageSummary) -> Message {
    let cap = summary
        .cap
        .map_or("no cap set".to_owned(), |c| c.to_string());
    Message {
        title: Some("Your usage".into()),
        text: "This billing period so far:".into(),
        ..Message::default()
    }
    .field("Data, last 30 days", summary.data_last_30_days.to_string())
    .field("Spend this month", summary.spent_this_period.to_string())
    .field("Monthly cap", cap)
    .with_fields(shared_budget_fields(summary))
    .field("Days left", summary.days_left_in_period.to_string())
}

/// One field per shared budget: "Team Platform budget: 820.00 USD of 1,000.00 USD".
fn shared_budget_fields(summary: &UsageSummary) -> Vec<(String, String)> {
    summary
        .shared_budgets
        .iter()
        .map(|b| (format!("{} budget", b.name), b.to_string()))
        .collect()
}

/// `/esim status`.
pub fn status_message(lines: &[(Line, String)], requests: &[(Request, String)]) -> Message {
    let mut message = Message::text(if lines.is_empty() && requests.is_empty() {
        "You have no lines and no open requests. Ask for one with `/esim request`."
    } else {
        "Your lines and requests:"
    });
    for (line, plan) in lines {
        let iccid = line
            .iccid
            .as_ref()
            .map_or("no ICCID yet".to_owned(), |i| i.to_string());
        message = message.field(format!("{plan} · {}", line.state), iccid);
    }
    for (request, label) in requests
        .iter()
        .filter(|(r, _)| r.state == RequestState::Pending)
    {
        message = message.field(
            format!("Request · {}", request.state.as_str()),
            label.clone(),
        );
    }
    message
}

fn with_usage(mut message: Message, ctx: &CardContext) -> Message {
    if let Some(usage) = &ctx.usage {
        message = message
            .field("Data, last 30 days", usage.data_last_30_days.to_string())
            .field("Spent this month", usage.spent_this_period.to_string())
            .field(
                "Monthly cap",
                usage.cap.map_or("none".to_owned(), |c| c.to_string()),
            )
            .with_fields(shared_budget_fields(usage));
    }
    if let Some(plan) = &ctx.plan_label {
        message = message.field("Plan", plan.clone());
    }
    message
}

/// "Approved by Maria Tester at 2026-05-01 10:00 UTC".
pub fn outcome_line(request: &Request, ctx: &CardContext) -> String {
    let by = ctx.decided_by_name.clone().or_else(|| {
        request.decided_by.as_deref().map(|d| {
            if d == "policy" {
                "policy".to_owned()
            } else {
                "an approver".to_owned()
            }
        })
    });
    let at = request.decided_at.map(|t| {
        format!(
            " at {} UTC",
            t.format(&time::macros::format_description!(
                "[year]-[month]-[day] [hour]:[minute]"
            ))
            .unwrap_or_default()
        )
    });
    let verb = match request.state {
        RequestState::Pending => return "Waiting for a decision".into(),
        RequestState::Approved | RequestState::Fulfilled => "Approved",
        RequestState::Denied => "Denied",
        RequestState::Expired => return "Expired without a decision".into(),
        RequestState::Cancelled => "Cancelled",
        RequestState::Failed => "Approved, then failed",
    };
    format!(
        "{verb} by {}{}",
        by.unwrap_or_else(|| "someone".into()),
        at.unwrap_or_default()
    )
}

fn short(request: &Request) -> String {
    request.id.to_string()[..8].to_owned()
}

#[cfg(test)]
mod carrier_tests {
    use super::*;

    #[test]
    fn the_delivery_names_the_carrier_first() {
        let message = naming_carrier(Message::text("Scan the QR code"), "Standby");
        assert_eq!(
            message.title.as_deref(),
            Some("Your eSIM from Standby is ready")
        );
        assert_eq!(message.fields[0].label, "Carrier");
        assert_eq!(message.fields[0].value, "Standby");
    }
}
