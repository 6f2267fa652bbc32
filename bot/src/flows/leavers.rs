//! Leavers' lines in their grace period: the card to the leaver's manager (Keep for a
//! successor, Terminate now, Release the number), its buttons, the successor picker, the
//! reminder, and every copy of the card brought up to date once a choice is carried out.
//! The decision itself, and who may make it, is core's.

use lineup_core::CoreError;
use lineup_core::audit::Actor;
use lineup_core::ids::{OffboardingCaseId, TenantId};
use lineup_core::messaging::chat::{Platform, Workspace};
use lineup_core::messaging::chat_message::Message;
use lineup_core::organisation::offboarding::grace::commands::default_choice;
use lineup_core::organisation::offboarding::grace::{
    CaseDecider, CaseState, GraceChoice, GraceEvent, OffboardingCase, cards,
};

use super::ChatFlows;
use super::conversation::{failure, private};
use crate::chat::{Answer, Speaker};

impl ChatFlows {
    pub(super) async fn act_on_offboarding(
        &self,
        ws: Workspace,
        speaker: &Speaker,
        action_id: &str,
        value: &str,
    ) -> Answer {
        let (case_id, choice, successor) = if action_id.starts_with(cards::KEEP_FOR) {
            match cards::parse_successor_value(value) {
                Some((case, successor)) => (case, GraceChoice::Keep, Some(successor)),
                None => return private("That button is out of date."),
            }
        } else {
            let Ok(case) = value.parse::<OffboardingCaseId>() else {
                return private("That button is out of date.");
            };
            let choice = match action_id {
                cards::KEEP => return self.pick_successor(&ws, speaker, case).await,
                cards::TERMINATE => GraceChoice::Terminate,
                cards::RELEASE => GraceChoice::Release,
                other => return private(format!("I don't know the action `{other}`.")),
            };
            (case, choice, None)
        };
        let me = match self.employee(&ws, speaker).await {
            Ok(me) => me,
            Err(answer) => return answer,
        };
        let t = ws.tenant;
        let decided = match self
            .lineup
            .decide_offboarding_case(t, CaseDecider::Employee(me), case_id, choice, successor)
            .await
        {
            Ok(decided) => decided,
            Err(e) => return failure(&e),
        };
        if !decided.won {
            return match self.lineup.case_context(t, &decided.case).await {
                Ok(ctx) => {
                    let settled = cards::settled_card(&decided.case, &ctx);
                    private(format!(
                        "Already decided: {}. {}",
                        settled.title.unwrap_or_default(),
                        settled.context.unwrap_or_default()
                    ))
                }
                Err(e) => failure(&e),
            };
        }
        let flows = self.clone();
        tokio::spawn(async move {
            let outcome = flows
                .lineup
                .carry_out_offboarding_case(t, &Actor::Employee(me), case_id)
                .await;
            match outcome {
                Ok(case) => flows.refresh_case_cards(&case).await,
                Err(e) => {
                    tracing::warn!(case = %case_id, error = %e, "carrying out a leaver's line choice failed")
                }
            }
        });
        private(format!(
            "Got it: {}. I'll update the card when it is done.",
            choice.describe()
        ))
    }

    /// The answer to Keep: a button per possible successor, for someone who may decide.
    async fn pick_successor(
        &self,
        ws: &Workspace,
        speaker: &Speaker,
        case_id: OffboardingCaseId,
    ) -> Answer {
        let me = match self.employee(ws, speaker).await {
            Ok(me) => me,
            Err(answer) => return answer,
        };
        let t = ws.tenant;
        let picker = async {
            let case = self.lineup.offboarding_case(t, case_id).await?;
            let ctx = self.lineup.case_context(t, &case).await?;
            if case.state != CaseState::Open {
                return Ok(Message::text(format!(
                    "Already decided: {}",
                    cards::settled_card(&case, &ctx).title.unwrap_or_default()
                )));
            }
            let candidates = self.lineup.successor_candidates(t, &case, me).await?;
            Ok::<_, CoreError>(cards::successor_picker(&case, &ctx, &candidates))
        };
        match picker.await {
            Ok(message) => Answer::Private(message),
            Err(e) => failure(&e),
        }
    }

    /// The periodic sweep of leavers' lines: new cases' cards posted, reminders sent, and
    /// the cards of settled cases (the default at the deadline) updated everywhere.
    pub async fn run_offboarding_sweep(
        &self,
        now: time::OffsetDateTime,
    ) -> Result<usize, CoreError> {
        let events = self.lineup.sweep_offboarding(now).await?;
        let count = events.len();
        for event in events {
            let outcome = match event {
                GraceEvent::Announce(case) => self.announce_case(&case).await,
                GraceEvent::Remind(case) => self.remind_case(&case).await,
                GraceEvent::Settled(case) => {
                    self.refresh_case_cards(&case).await;
                    Ok(())
                }
            };
            if let Err(e) = outcome {
                tracing::warn!(error = %e, "delivering a leaver's line card failed");
            }
        }
        Ok(count)
    }

    /// The card to whoever is asked, on the first of the tenant's platforms that reaches
    /// them; where it went is kept on the case.
    async fn announce_case(&self, case: &OffboardingCase) -> Result<(), CoreError> {
        let Some(asked) = case.asked_id else {
            tracing::info!(case = %case.id, "a leaver has no active manager: admins decide in the portal");
            return Ok(());
        };
        let t = case.tenant_id;
        let settings = self.lineup.tenant(t).await?.settings;
        let ctx = self.lineup.case_context(t, case).await?;
        let card = cards::grace_card(case, &ctx, default_choice(&settings));
        for platform in Platform::ALL {
            let (Some(ws), Some(transport)) = (
                self.lineup.workspace_of_tenant(t, platform).await?,
                self.transport(platform),
            ) else {
                continue;
            };
            let Some(user) = self.chat_user(&ws, platform, asked).await else {
                continue;
            };
            match transport.send_direct(&ws, &user, &card).await {
                Ok(at) => {
                    let mut refs = self.lineup.offboarding_case(t, case.id).await?.chat_refs;
                    refs.origin
                        .get_or_insert_with(|| platform.as_str().to_owned());
                    refs.on(platform).cards.push(at);
                    self.lineup
                        .set_offboarding_case_chat_refs(t, case.id, &refs)
                        .await?;
                    // A decision may have landed between posting and remembering.
                    let current = self.lineup.offboarding_case(t, case.id).await?;
                    if current.state != CaseState::Open {
                        self.refresh_case_cards(&current).await;
                    }
                    return Ok(());
                }
                Err(e) => {
                    tracing::warn!(case = %case.id, platform = platform.as_str(), error = %e, "posting a leaver's line card failed")
                }
            }
        }
        tracing::warn!(case = %case.id, "no chat platform reaches the leaver's manager");
        Ok(())
    }

    async fn remind_case(&self, case: &OffboardingCase) -> Result<(), CoreError> {
        let Some(asked) = case.asked_id else {
            return Ok(());
        };
        let t = case.tenant_id;
        let settings = self.lineup.tenant(t).await?.settings;
        let ctx = self.lineup.case_context(t, case).await?;
        let reminder = cards::reminder(case, &ctx, default_choice(&settings));
        for (platform, ws) in self.case_workspaces(case).await {
            self.send_to_employee(&ws, platform, asked, &reminder).await;
        }
        Ok(())
    }

    /// The platforms and workspaces the case's cards went to.
    async fn case_workspaces(&self, case: &OffboardingCase) -> Vec<(Platform, Workspace)> {
        let mut found = Vec::new();
        for platform in Platform::ALL {
            if case.chat_refs.platforms.contains_key(platform.as_str())
                && let Ok(Some(ws)) = self
                    .lineup
                    .workspace_of_tenant(case.tenant_id, platform)
                    .await
            {
                found.push((platform, ws));
            }
        }
        found
    }

    /// Replace every copy of the case's card with its current form: no stale buttons.
    async fn refresh_case_cards(&self, case: &OffboardingCase) {
        let t: TenantId = case.tenant_id;
        let case = match self.lineup.offboarding_case(t, case.id).await {
            Ok(current) => current,
            Err(e) => {
                tracing::warn!(case = %case.id, error = %e, "loading an offboarding case failed");
                return;
            }
        };
        let card = match self.lineup.case_context(t, &case).await {
            Ok(ctx) => cards::settled_card(&case, &ctx),
            Err(e) => {
                tracing::warn!(case = %case.id, error = %e, "building a leaver's line card failed");
                return;
            }
        };
        let workspaces = self.case_workspaces(&case).await;
        for (platform, at) in case.chat_refs.cards() {
            let (Some(transport), Some((_, ws))) = (
                self.transport(platform),
                workspaces.iter().find(|(p, _)| *p == platform),
            ) else {
                continue;
            };
            if let Err(e) = transport.update(ws, at, &card).await {
                tracing::warn!(channel = at.channel, error = %e, "updating a leaver's line card failed");
            }
        }
    }
}
