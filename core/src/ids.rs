//! Typed identifiers: a `LineId` can never be passed where an `EmployeeId` is expected.

macro_rules! uuid_id {
    ($($name:ident),* $(,)?) => {$(
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize, sqlx::Type,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            /// Time-ordered (UUIDv7), so new rows append to indexes.
            pub fn new() -> Self {
                Self(uuid::Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                uuid::Uuid::parse_str(s).map(Self)
            }
        }
    )*};
}

uuid_id!(
    TenantId,
    UserId,
    EmployeeId,
    TeamId,
    CostCentreId,
    PlanId,
    LineId,
    RequestId,
    OperationId,
    AuditEventId,
    JobId,
    AlertId,
    GuardrailActionId,
    ImportId,
    ProviderConnectionId,
    ProviderRouteId,
    ScimTokenId,
    OffboardingCaseId,
    JoinerPolicyId,
    StagedUsageId,
);
