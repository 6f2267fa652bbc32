//! A line's activation code at rest and who may see it. The code installs an eSIM on any
//! phone until it is used, so the `lines.activation_code` column holds it sealed with the
//! secrets key (the line id bound as associated data, so a sealed code cannot be moved onto
//! another line), and only [`Lineup::reveal_activation_code`] opens it: for the tenant's
//! owners and admins, and for the employee holding the line, while the profile is not yet
//! installed. Every reveal is audited.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use super::{Line, LineState};
use crate::app::{Lineup, record, required};
use crate::audit::{Actor, AuditEvent};
use crate::error::{CoreError, CoreResult};
use crate::identity::member::role_of;
use crate::ids::{EmployeeId, LineId, TenantId, UserId};
use crate::lines::activation_code::ActivationCode;
use crate::secret::SecretBox;
use crate::store;

/// Marks a sealed value in the text column; the version leaves room for another scheme.
const SEALED_PREFIX: &str = "sealed:v1:";

/// What `lines.activation_code` holds: `sealed:v1:` + base64(nonce ‖ ciphertext).
#[derive(Clone, PartialEq, Eq)]
pub struct SealedActivationCode(String);

impl fmt::Debug for SealedActivationCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_sealed() {
            "SealedActivationCode"
        } else {
            "SealedActivationCode(unsealed row)"
        })
    }
}

impl SealedActivationCode {
    pub(crate) fn seal(secrets: &SecretBox, line: LineId, code: &ActivationCode) -> Self {
        Self::seal_text(secrets, line, &code.to_string())
    }

    fn seal_text(secrets: &SecretBox, line: LineId, text: &str) -> Self {
        let sealed = secrets.seal(text, &seal_context(line));
        Self(format!("{SEALED_PREFIX}{}", STANDARD.encode(sealed)))
    }

    /// The column's text as read; rows written before sealing hold the plain code until
    /// [`Lineup::seal_stored_activation_codes`] runs.
    pub(crate) fn from_stored(text: String) -> Self {
        Self(text)
    }

    pub fn as_stored(&self) -> &str {
        &self.0
    }

    pub fn is_sealed(&self) -> bool {
        self.0.starts_with(SEALED_PREFIX)
    }

    fn open(&self, secrets: &SecretBox, line: LineId) -> CoreResult<ActivationCode> {
        let Some(encoded) = self.0.strip_prefix(SEALED_PREFIX) else {
            return Err(CoreError::Conflict(format!(
                "the activation code of line {line} is not sealed yet; restart Lineup to seal it"
            )));
        };
        let undecryptable = |e| CoreError::invalid("LINEUP_SECRET_KEY", e);
        let sealed = STANDARD
            .decode(encoded)
            .map_err(|_| undecryptable(crate::secret::SecretError::Undecryptable))?;
        let text = secrets
            .open(&sealed, &seal_context(line))
            .map_err(undecryptable)?;
        ActivationCode::parse(&text).map_err(|e| {
            CoreError::Store(store::StoreError::corrupt(
                "line activation code",
                format!("line {line}: {e}"),
            ))
        })
    }
}

fn seal_context(line: LineId) -> String {
    format!("line:{line}:activation_code")
}

/// Who asks for a line's activation code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revealer {
    /// A portal member; only roles that manage lines (owner, admin) are answered.
    Member(UserId),
    /// The employee holding the line, to receive it by direct message in chat.
    Holder(EmployeeId),
}

impl Revealer {
    fn actor(self) -> Actor {
        match self {
            Self::Member(user) => Actor::User(user),
            Self::Holder(employee) => Actor::Employee(employee),
        }
    }

    fn channel(self) -> &'static str {
        match self {
            Self::Member(_) => "portal",
            Self::Holder(_) => "chat",
        }
    }
}

/// Why a line in `state` has no activation code to show, if it has none.
pub fn unrevealable_because(state: LineState) -> Option<&'static str> {
    match state {
        LineState::Ready => None,
        LineState::Requested | LineState::Provisioning => {
            Some("the eSIM is not issued yet, so there is no activation code")
        }
        LineState::Active | LineState::Suspended => Some(
            "the eSIM is installed on a device, so its activation code is no longer shown; \
             re-issue the profile (SIM swap) to get a new one",
        ),
        LineState::Terminated => Some("the line is terminated; its activation code is void"),
        LineState::Failed => Some("the eSIM could not be issued, so there is no activation code"),
    }
}

impl Lineup {
    /// The plain activation code of a ready line, for an owner or admin in the portal or for
    /// the employee holding the line; the reveal is audited (who, which line, whose) in the
    /// same transaction. Installed, terminated and unissued lines reveal nothing.
    pub async fn reveal_activation_code(
        &self,
        tenant: TenantId,
        revealer: Revealer,
        line_id: LineId,
    ) -> CoreResult<ActivationCode> {
        let secrets = self.secrets()?.clone();
        let mut tx = self.tenant_tx(tenant).await?;
        let line: Line = required(
            store::lines::get(&mut tx, tenant, line_id).await?,
            "line",
            line_id,
        )?;
        match revealer {
            Revealer::Member(user) => {
                if !role_of(&mut tx, tenant, user)
                    .await?
                    .reveals_activation_codes()
                {
                    return Err(CoreError::NotAuthorised(
                        "only owners and admins can see a line's activation code".into(),
                    ));
                }
            }
            Revealer::Holder(employee) => {
                if employee != line.employee_id {
                    return Err(CoreError::NotAuthorised(
                        "an activation code goes only to the employee holding the line".into(),
                    ));
                }
            }
        }
        if let Some(why) = unrevealable_because(line.state) {
            return Err(CoreError::Conflict(why.to_owned()));
        }
        let sealed = line
            .activation_code
            .as_ref()
            .ok_or_else(|| CoreError::Conflict("the line has no activation code yet".into()))?;
        let code = sealed.open(&secrets, line.id)?;
        let event = AuditEvent::new(
            tenant,
            &revealer.actor(),
            "line.activation_code_revealed",
            ("line", line.id.to_string()),
            None,
            Some(json!({ "employee_id": line.employee_id, "via": revealer.channel() })),
        );
        record(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(code)
    }

    /// Seal every activation code still stored in clear (rows written before codes were
    /// sealed), across tenants; run at start-up, after migrations. Idempotent: sealed rows
    /// are left alone. Returns how many rows it sealed.
    pub async fn seal_stored_activation_codes(&self) -> CoreResult<usize> {
        let secrets = self.secrets()?.clone();
        let mut tx = self.store().system().await?;
        let unsealed = store::lines::unsealed_activation_codes(&mut tx).await?;
        for (tenant, line, text) in &unsealed {
            let sealed = SealedActivationCode::seal_text(&secrets, *line, text);
            store::lines::set_activation_code(&mut tx, *tenant, *line, &sealed).await?;
            let event = AuditEvent::new(
                *tenant,
                &Actor::System,
                "line.activation_code_sealed",
                ("line", line.to_string()),
                None,
                None,
            );
            record(&mut tx, &event).await?;
        }
        tx.commit().await?;
        Ok(unsealed.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_code_opens_only_for_its_own_line() {
        let secrets = SecretBox::from_hex(&SecretBox::generate_hex_key()).unwrap();
        let code = ActivationCode::parse("LPA:1$rsp.sim.local$K2-ABCDE-FGHIJK").unwrap();
        let line = LineId::new();
        let sealed = SealedActivationCode::seal(&secrets, line, &code);
        assert!(sealed.as_stored().starts_with("sealed:v1:"));
        assert!(!sealed.as_stored().contains("K2-ABCDE"));
        assert!(!format!("{sealed:?}").contains("K2-ABCDE"));
        assert_eq!(sealed.open(&secrets, line).unwrap(), code);
        assert!(sealed.open(&secrets, LineId::new()).is_err());
        let plain = SealedActivationCode::from_stored(code.to_string());
        assert!(!plain.is_sealed());
        assert!(plain.open(&secrets, line).is_err());
    }
}
