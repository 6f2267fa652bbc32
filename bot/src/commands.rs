//! The `/esim` command line: parse the text after the command, or say exactly what is wrong
//! and how to write it.

use time::Date;
use time::macros::format_description;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EsimCommand {
    Help,
    Request,
    Status,
    Usage,
    Cap {
        amount_minor: i64,
        reason: String,
    },
    Roaming {
        country: String,
        from: Date,
        to: Date,
        reason: String,
    },
}

pub const HELP: &str = "*Lineup — your company eSIM*\n\
    `/esim request` — ask for a new eSIM line (opens a form)\n\
    `/esim status` — your lines and open requests\n\
    `/esim usage` — your data, spend, cap and days left this month\n\
    `/esim cap <amount> <reason>` — ask for a higher monthly cap, e.g. `/esim cap 25 conference week`\n\
    `/esim roaming <country> <from> <to> <reason>` — roaming for a trip, e.g. \
    `/esim roaming FR 2026-12-01 2026-12-05 client visit`\n\
    `/esim help` — this message";

const CAP_USAGE: &str =
    "Write it as `/esim cap <amount> <reason>`, e.g. `/esim cap 25 conference week`.";
const ROAMING_USAGE: &str = "Write it as `/esim roaming <country> <from> <to> <reason>`, e.g. \
    `/esim roaming FR 2026-12-01 2026-12-05 client visit`.";

/// A usage hint: what was wrong, then how to write it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem} {usage}")]
pub struct UsageHint {
    pub problem: String,
    pub usage: &'static str,
}

fn hint(problem: impl Into<String>, usage: &'static str) -> UsageHint {
    UsageHint {
        problem: problem.into(),
        usage,
    }
}

pub fn parse(text: &str) -> Result<EsimCommand, UsageHint> {
    let mut words = text.split_whitespace();
    let Some(sub) = words.next() else {
        return Ok(EsimCommand::Help);
    };
    let rest: Vec<&str> = words.collect();
    match sub.to_ascii_lowercase().as_str() {
        "help" => Ok(EsimCommand::Help),
        "request" | "new" => Ok(EsimCommand::Request),
        "status" => Ok(EsimCommand::Status),
        "usage" => Ok(EsimCommand::Usage),
        "cap" => parse_cap(&rest),
        "roaming" => parse_roaming(&rest),
        other => Err(hint(
            format!("I don't know `{other}`."),
            "Try `/esim help` for what I can do.",
        )),
    }
}

fn parse_cap(args: &[&str]) -> Result<EsimCommand, UsageHint> {
    let Some(amount) = args.first() else {
        return Err(hint("How much more do you need?", CAP_USAGE));
    };
    let amount_minor = parse_amount(amount).ok_or_else(|| {
        hint(
            format!("`{amount}` is not an amount like 25 or 25.50."),
            CAP_USAGE,
        )
    })?;
    if amount_minor <= 0 {
        return Err(hint("The amount must be more than zero.", CAP_USAGE));
    }
    let reason = args[1..].join(" ");
    if reason.is_empty() {
        return Err(hint(
            "Please add a reason so your approver can decide.",
            CAP_USAGE,
        ));
    }
    Ok(EsimCommand::Cap {
        amount_minor,
        reason,
    })
}

fn parse_roaming(args: &[&str]) -> Result<EsimCommand, UsageHint> {
    let [country, from, to, reason @ ..] = args else {
        return Err(hint(
            "I need a country, a start date and an end date.",
            ROAMING_USAGE,
        ));
    };
    let country = country.to_ascii_uppercase();
    if country.len() != 2 || !country.chars().all(|c| c.is_ascii_uppercase()) {
        return Err(hint(
            format!("`{country}` is not a two-letter country code like FR or JP."),
            ROAMING_USAGE,
        ));
    }
    let date = |s: &str| Date::parse(s, format_description!("[year]-[month]-[day]"));
    let from_date = date(from).map_err(|_| {
        hint(
            format!("`{from}` is not a date like 2026-12-01."),
            ROAMING_USAGE,
        )
    })?;
    let to_date = date(to).map_err(|_| {
        hint(
            format!("`{to}` is not a date like 2026-12-05."),
            ROAMING_USAGE,
        )
    })?;
    if to_date < from_date {
        return Err(hint("The trip ends before it starts.", ROAMING_USAGE));
    }
    if reason.is_empty() {
        return Err(hint(
            "Please add a reason so your approver can decide.",
            ROAMING_USAGE,
        ));
    }
    Ok(EsimCommand::Roaming {
        country,
        from: from_date,
        to: to_date,
        reason: reason.join(" "),
    })
}

/// `25`, `25.5`, `25.50`, `$25`, `€25.00` → minor units (two decimals).
fn parse_amount(text: &str) -> Option<i64> {
    let digits = text.trim_start_matches(['$', '€', '£']);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() || !whole.chars().all(|c| c.is_ascii_digit()) || fraction.len() > 2 {
        return None;
    }
    if !fraction.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let cents: i64 = format!("{fraction:0<2}").parse().ok()?;
    whole
        .parse::<i64>()
        .ok()?
        .checked_mul(100)?
        .checked_add(cents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn parses_every_subcommand() {
        assert_eq!(parse(""), Ok(EsimCommand::Help));
        assert_eq!(parse("HELP"), Ok(EsimCommand::Help));
        assert_eq!(parse("request"), Ok(EsimCommand::Request));
        assert_eq!(parse("status"), Ok(EsimCommand::Status));
        assert_eq!(parse("usage"), Ok(EsimCommand::Usage));
        assert_eq!(
            parse("cap $25.5 conference week"),
            Ok(EsimCommand::Cap {
                amount_minor: 2550,
                reason: "conference week".into()
            })
        );
        assert_eq!(
            parse("roaming fr 2026-12-01 2026-12-05 client visit"),
            Ok(EsimCommand::Roaming {
                country: "FR".into(),
                from: date!(2026 - 12 - 01),
                to: date!(2026 - 12 - 05),
                reason: "client visit".into()
            })
        );
    }

    #[test]
    fn bad_arguments_say_what_was_wrong() {
        let problem = |text: &str| parse(text).unwrap_err().problem;
        assert_eq!(problem("cap"), "How much more do you need?");
        assert_eq!(
            problem("cap lots because"),
            "`lots` is not an amount like 25 or 25.50."
        );
        assert_eq!(
            problem("cap 0 nothing"),
            "The amount must be more than zero."
        );
        assert_eq!(
            problem("cap 25"),
            "Please add a reason so your approver can decide."
        );
        assert_eq!(
            problem("cap 2.555 x"),
            "`2.555` is not an amount like 25 or 25.50."
        );
        assert_eq!(
            problem("roaming FR"),
            "I need a country, a start date and an end date."
        );
        assert_eq!(
            problem("roaming France 2026-12-01 2026-12-05 x"),
            "`FRANCE` is not a two-letter country code like FR or JP."
        );
        assert_eq!(
            problem("roaming FR 12/01 2026-12-05 x"),
            "`12/01` is not a date like 2026-12-01."
        );
        assert_eq!(
            problem("roaming FR 2026-12-05 2026-12-01 x"),
            "The trip ends before it starts."
        );
        assert_eq!(
            problem("roaming FR 2026-12-01 2026-12-05"),
            "Please add a reason so your approver can decide."
        );
        assert_eq!(problem("dance"), "I don't know `dance`.");
        assert!(
            parse("cap")
                .unwrap_err()
                .to_string()
                .contains("/esim cap <amount> <reason>")
        );
    }
}
