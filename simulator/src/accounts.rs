//! Provider accounts and the OAuth2 clients bound to them: every client acts for exactly one
//! account, and the enterprise API shows each client only that account's data.
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::{TRIAL_ACCOUNT_ID, TRIAL_CLIENT_ID, TRIAL_CLIENT_SECRET};
use crate::error::{ApiError, ApiResult, ErrorType};
use crate::state::{Sim, State as SimState};

/// An OAuth2 client other than the default one, and the account it acts for.
#[derive(Clone, Serialize, Deserialize)]
pub struct Client {
    pub client_id: String,
    pub client_secret: String,
    pub account_id: String,
}

/// What a new account's owner needs to connect to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountCredentials {
    pub account_id: String,
    pub client_id: String,
    pub client_secret: String,
}

/// The authenticated client and its account, available to handlers behind `authenticate`.
#[derive(Clone)]
pub struct Caller {
    pub client_id: String,
    pub account_id: String,
}

/// Why an account could not be added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddAccountError {
    Invalid(String),
    ClientIdTaken(String),
}

impl std::fmt::Display for AddAccountError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Invalid(reason) => f.write_str(reason),
            Self::ClientIdTaken(client_id) => write!(f, "client_id {client_id} is already taken"),
        }
    }
}

impl std::error::Error for AddAccountError {}

impl Caller {
    /// 404 rather than 403 for another account's record: its existence is not revealed.
    pub fn owns(&self, account_id: &str, what: &str, id: &str) -> ApiResult<()> {
        if self.account_id == account_id {
            Ok(())
        } else {
            Err(ApiError::not_found(what, id))
        }
    }
}

impl Sim {
    /// The account a client acts for; `None` for an unknown client.
    pub fn account_of_client(&self, state: &SimState, client_id: &str) -> Option<String> {
        if client_id == self.credentials().client_id {
            return Some(state.fixture_account_id.clone());
        }
        state
            .clients
            .get(client_id)
            .map(|client| client.account_id.clone())
    }

    /// Whether the pair is a known client with its secret.
    pub fn client_is_valid(&self, state: &SimState, client_id: &str, client_secret: &str) -> bool {
        let default = self.credentials();
        if client_id == default.client_id {
            return client_secret == default.client_secret;
        }
        state
            .clients
            .get(client_id)
            .is_some_and(|client| client.client_secret == client_secret)
    }

    /// Opens an account with the default catalogue and a client bound to it; a missing client
    /// id or secret is generated.
    pub fn add_account(
        &self,
        name: &str,
        client_id: Option<&str>,
        client_secret: Option<&str>,
    ) -> Result<AccountCredentials, AddAccountError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(AddAccountError::Invalid("name is required".into()));
        }
        if client_id.is_some_and(|id| id.trim().is_empty() || id.contains(':')) {
            return Err(AddAccountError::Invalid(
                "client_id must not be empty or contain ':'".into(),
            ));
        }
        if client_secret.is_some_and(str::is_empty) {
            return Err(AddAccountError::Invalid(
                "client_secret must not be empty".into(),
            ));
        }
        let mut state = self.lock();
        let client_id = match client_id {
            Some(id) => id.to_string(),
            None => state.ids.next("client").to_lowercase(),
        };
        if client_id == self.credentials().client_id || state.clients.contains_key(&client_id) {
            return Err(AddAccountError::ClientIdTaken(client_id));
        }
        let client_secret = client_secret.map_or_else(
            || format!("secret_{}", uuid::Uuid::new_v4().simple()),
            str::to_string,
        );
        let account_id = state.ids.next("acc");
        state.open_account(&account_id, name, &client_id, &client_secret);
        state.unsaved_changes = true;
        Ok(AccountCredentials {
            account_id,
            client_id,
            client_secret,
        })
    }
}

impl SimState {
    /// The account, its catalogue (the fixture account's offerings, templates and prices) and
    /// its client.
    fn open_account(&mut self, account_id: &str, name: &str, client_id: &str, secret: &str) {
        self.insert_account(account_id, name, "US");
        self.seed_catalogue(account_id);
        self.clients.insert(
            client_id.to_string(),
            Client {
                client_id: client_id.to_string(),
                client_secret: secret.to_string(),
                account_id: account_id.to_string(),
            },
        );
    }

    /// The ready-made trial account with documented credentials, unless it is there already.
    pub fn ensure_trial_account(&mut self) {
        if !self.clients.contains_key(TRIAL_CLIENT_ID)
            && !self.accounts.contains_key(TRIAL_ACCOUNT_ID)
        {
            self.open_account(
                TRIAL_ACCOUNT_ID,
                "Lineup Trial Co",
                TRIAL_CLIENT_ID,
                TRIAL_CLIENT_SECRET,
            );
        }
    }
}

#[derive(Deserialize)]
struct NewAccountInput {
    name: String,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// `POST /_sim/accounts`: 201 with the new account's credentials, 409 for a taken client id.
pub async fn create_account(
    State(sim): State<Sim>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let input: NewAccountInput = serde_json::from_slice(&body)
        .map_err(|error| ApiError::bad_request(format!("invalid account: {error}")))?;
    let created = sim
        .add_account(
            &input.name,
            input.client_id.as_deref(),
            input.client_secret.as_deref(),
        )
        .map_err(|error| match error {
            AddAccountError::Invalid(_) => ApiError::bad_request(error.to_string()),
            AddAccountError::ClientIdTaken(_) => {
                ApiError::new(ErrorType::Conflict, error.to_string())
            }
        })?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "account_id": created.account_id,
            "client_id": created.client_id,
            "client_secret": created.client_secret,
            "name": input.name.trim(),
        })),
    ))
}
