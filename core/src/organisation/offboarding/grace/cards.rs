//! The grace workflow's chat messages: the card the leaver's manager chooses on, its settled
//! form, the reminder and the successor picker. Action ids follow the `noun.verb` convention
//! of approval cards; a successor button's value names the case and the successor.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{CaseState, GraceChoice, OffboardingCase};
use crate::ids::{EmployeeId, OffboardingCaseId};
use crate::messaging::chat_message::{Action, ActionStyle, Message};

pub const KEEP: &str = "offboarding.keep";
/// Successor buttons are `offboarding.keep_for.<n>`: Slack wants action ids unique in a message.
pub const KEEP_FOR: &str = "offboarding.keep_for";
pub const TERMINATE: &str = "offboarding.terminate";
pub const RELEASE: &str = "offboarding.release";

/// What a card shows besides the case itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseContext {
    pub leaver_name: String,
    /// The plan and the ICCID's last digits.
    pub line_label: String,
    /// Who is asked to choose.
    pub asked_name: Option<String>,
    pub successor_name: Option<String>,
    pub chooser_name: Option<String>,
    /// Whether the tenant's provider can port numbers out (else no Release button).
    pub can_port_out: bool,
}

fn minute(at: time::OffsetDateTime) -> String {
    crate::spend::alert::minute_utc(at)
}

fn button(id: &str, label: &str, style: ActionStyle, value: String) -> Action {
    Action {
        id: id.to_owned(),
        label: label.to_owned(),
        style,
        value,
        confirm: None,
    }
}

/// The card with the three choices, to the leaver's manager.
pub fn grace_card(case: &OffboardingCase, ctx: &CaseContext, default: GraceChoice) -> Message {
    let value = case.id.to_string();
    let mut actions = vec![button(
        KEEP,
        "Keep for a successor",
        ActionStyle::Primary,
        value.clone(),
    )];
    let mut terminate = button(
        TERMINATE,
        "Terminate now",
        ActionStyle::Danger,
        value.clone(),
    );
    terminate.confirm = Some(format!(
        "Terminate {}'s line for good? The number is lost.",
        ctx.leaver_name
    ));
    actions.push(terminate);
    if ctx.can_port_out {
        actions.push(button(
            RELEASE,
            "Release the number to them",
            ActionStyle::Default,
            value,
        ));
    }
    Message {
        title: Some(format!(
            "{} has left: what becomes of their line?",
            ctx.leaver_name
        )),
        text: format!(
            "{}'s line is suspended. Choose by *{}*; otherwise it will be: {}.",
            ctx.leaver_name,
            minute(case.deadline_at),
            default.describe()
        ),
        fields: vec![],
        actions,
        image: None,
        context: Some(format!("Offboarding case {}", case.id)),
    }
    .field("Line", ctx.line_label.clone())
    .field("Deadline", minute(case.deadline_at))
}

/// The card once a choice won: what was chosen, by whom and when, and how it ended.
pub fn settled_card(case: &OffboardingCase, ctx: &CaseContext) -> Message {
    let choice = case.choice.map_or("nothing", GraceChoice::describe);
    let by = if case.by_default {
        "nobody chose in time, so the organisation's default was taken".to_owned()
    } else {
        format!(
            "chosen by {} at {}",
            ctx.chooser_name
                .clone()
                .unwrap_or_else(|| "an admin".into()),
            case.chosen_at.map(minute).unwrap_or_default()
        )
    };
    let outcome = match (case.state, case.choice) {
        (CaseState::Failed, _) => format!(
            "It could not be carried out: {}. An admin can finish it from the line's page.",
            case.failure_reason.clone().unwrap_or_default()
        ),
        (CaseState::Decided | CaseState::Open, _) => "Carrying it out…".to_owned(),
        (CaseState::Done, Some(GraceChoice::Keep)) => format!(
            "The line now belongs to {} and works again.",
            ctx.successor_name.clone().unwrap_or_default()
        ),
        (CaseState::Done, Some(GraceChoice::Terminate)) => "The line is terminated.".to_owned(),
        (CaseState::Done, Some(GraceChoice::Release)) => match &case.porting {
            Some(p) => format!(
                "Give {} their porting code *{}* for {} (valid until {}); their new operator \
                 takes the number with it.",
                ctx.leaver_name,
                p.code,
                p.msisdn,
                minute(p.expires_at)
            ),
            None => "The number is released.".to_owned(),
        },
        (CaseState::Done, _) => "The line stays suspended for an admin to decide.".to_owned(),
    };
    Message {
        title: Some(format!("{}'s line: {choice}", ctx.leaver_name)),
        text: outcome,
        context: Some(format!("Decided: {by}.")),
        ..Message::default()
    }
    .field("Line", ctx.line_label.clone())
}

pub fn reminder(case: &OffboardingCase, ctx: &CaseContext, default: GraceChoice) -> Message {
    Message::text(format!(
        "Reminder: {}'s line ({}) is waiting for your choice. On {} it will be: {}.",
        ctx.leaver_name,
        ctx.line_label,
        minute(case.deadline_at),
        default.describe()
    ))
}

/// The follow-up to Keep: one button per possible successor.
pub fn successor_picker(
    case: &OffboardingCase,
    ctx: &CaseContext,
    candidates: &[(EmployeeId, String)],
) -> Message {
    if candidates.is_empty() {
        return Message::text(format!(
            "Nobody active works with {} to take the line over. Transfer it from the line's \
             page in the portal, or choose another option.",
            ctx.leaver_name
        ));
    }
    let actions = candidates
        .iter()
        .enumerate()
        .map(|(n, (id, name))| {
            button(
                &format!("{KEEP_FOR}.{}", n + 1),
                name,
                ActionStyle::Default,
                successor_value(case.id, *id),
            )
        })
        .collect();
    Message {
        text: format!("Who takes over {}'s line?", ctx.leaver_name),
        actions,
        context: Some("Someone else? Transfer the line from its page in the portal.".to_owned()),
        ..Message::default()
    }
}

/// A successor button's value: the case and the successor, each as 22 base64url characters
/// (Discord's `custom_id` holds at most 100).
pub fn successor_value(case: OffboardingCaseId, successor: EmployeeId) -> String {
    format!(
        "{}:{}",
        URL_SAFE_NO_PAD.encode(case.0.as_bytes()),
        URL_SAFE_NO_PAD.encode(successor.0.as_bytes())
    )
}

pub fn parse_successor_value(value: &str) -> Option<(OffboardingCaseId, EmployeeId)> {
    let uuid = |text: &str| {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        uuid::Uuid::from_slice(&bytes).ok()
    };
    let (case, successor) = value.split_once(':')?;
    Some((OffboardingCaseId(uuid(case)?), EmployeeId(uuid(successor)?)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_successor_value_round_trips_and_fits_a_discord_custom_id() {
        let (case, successor) = (OffboardingCaseId::new(), EmployeeId::new());
        let value = successor_value(case, successor);
        assert_eq!(value.len(), 45);
        assert_eq!(parse_successor_value(&value), Some((case, successor)));
        assert_eq!(parse_successor_value("nonsense"), None);
        assert_eq!(parse_successor_value(&format!("{case}:{successor}")), None);
    }
}
