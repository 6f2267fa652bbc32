use serde::Deserialize;
use serde_json::{Value, json};

use crate::model::*;
use crate::state::State;

const GIB: u64 = 1024 * 1024 * 1024;

const GLOBAL_COUNTRIES: [&str; 30] = [
    "US", "GB", "FR", "DE", "ES", "IT", "NL", "JP", "CA", "MX", "BR", "AU", "SG", "IE", "PT", "BE",
    "AT", "CH", "SE", "NO", "DK", "FI", "PL", "NZ", "KR", "HK", "AE", "IN", "ZA", "AR",
];

const EU_COUNTRIES: [&str; 27] = [
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV",
    "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE",
];

/// A product offering as accepted by `POST /_sim/fixtures` (the public offering shape).
#[derive(Deserialize)]
pub struct OfferingInput {
    /// The fixture account when absent.
    #[serde(default)]
    account_id: Option<String>,
    name: String,
    #[serde(rename = "type", default = "plan_type")]
    kind: String,
    #[serde(default)]
    allowances: AllowancesInput,
    #[serde(default)]
    throttle: Option<ThrottleInput>,
    #[serde(default)]
    price: Option<PriceInput>,
    #[serde(default = "monthly")]
    recurrence: String,
}

#[derive(Deserialize, Default)]
struct AllowancesInput {
    data_bytes: Option<u64>,
    voice_seconds: Option<u64>,
    sms: Option<u64>,
    #[serde(default)]
    coverage_countries: Vec<String>,
}

#[derive(Deserialize)]
struct ThrottleInput {
    after_cap_kbps: u32,
}

#[derive(Deserialize)]
struct PriceInput {
    amount: u64,
    currency: String,
}

#[derive(Deserialize)]
pub struct AccountInput {
    name: String,
    #[serde(default = "us")]
    country: String,
}

#[derive(Deserialize)]
pub struct SubscriberInput {
    account_id: Option<String>,
    first_name: String,
    last_name: String,
    email: String,
    employee_id: Option<String>,
    group: Option<String>,
}

#[derive(Deserialize)]
pub struct TemplateInput {
    /// The fixture account when absent.
    #[serde(default)]
    account_id: Option<String>,
    name: String,
    product_offering_ids: Vec<String>,
}

/// Body of `POST /_sim/fixtures`: extra entities to add on top of the current ones.
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct FixturesInput {
    accounts: Vec<AccountInput>,
    subscribers: Vec<SubscriberInput>,
    product_offerings: Vec<OfferingInput>,
    order_templates: Vec<TemplateInput>,
}

fn plan_type() -> String {
    "plan".into()
}
fn monthly() -> String {
    "monthly".into()
}
fn us() -> String {
    "US".into()
}

impl State {
    pub fn load_default_fixtures(&mut self) {
        let account_id = self.add_account("Lineup Demo Co", "US");
        self.fixture_account_id = account_id.clone();
        self.seed_catalogue(&account_id);
        self.add_subscriber(SubscriberInput {
            account_id: Some(account_id),
            first_name: "Ada".into(),
            last_name: "Lovelace".into(),
            email: "ada@lineup.example".into(),
            employee_id: Some("E-0001".into()),
            group: Some("Engineering".into()),
        });
        self.ensure_trial_account();
    }

    /// The standard plans, the top-up and one order template per plan, owned by `account_id`.
    pub fn seed_catalogue(&mut self, account_id: &str) {
        let owned = |offering: Offering| Offering {
            account_id: account_id.to_string(),
            ..offering
        };
        let plans = [
            self.add_offering(owned(plan("US 1GB", Some(GIB), &["US"], 1000))),
            self.add_offering(owned(plan("US 5GB", Some(5 * GIB), &["US"], 2000))),
            self.add_offering(owned(Offering {
                throttle_kbps: Some(128),
                ..plan("Global 10GB", Some(10 * GIB), &GLOBAL_COUNTRIES, 4500)
            })),
            self.add_offering(owned(plan(
                "Europe 10GB",
                Some(10 * GIB),
                &EU_COUNTRIES,
                2500,
            ))),
            self.add_offering(owned(plan("Unlimited US", None, &["US"], 6000))),
        ];
        self.add_offering(owned(Offering {
            kind: OfferingType::Addon,
            recurrence: Recurrence::OneTime,
            ..plan("Top-up 1GB", Some(GIB), &GLOBAL_COUNTRIES, 1000)
        }));
        for offering_id in plans {
            let name = format!("Employee line: {}", self.offerings[&offering_id].name);
            self.add_template(account_id, name, vec![offering_id]);
        }
    }

    pub fn add_fixtures(&mut self, input: FixturesInput) -> Result<Value, String> {
        let mut created = json!({"accounts": [], "subscribers": [], "product_offerings": [], "order_templates": []});
        for account in input.accounts {
            let id = self.add_account(&account.name, &account.country);
            push(&mut created, "accounts", id);
        }
        for offering in input.product_offerings {
            let offering = self.offering_from_input(offering)?;
            self.check_account(&offering.account_id)?;
            let id = self.add_offering(offering);
            push(&mut created, "product_offerings", id);
        }
        for template in input.order_templates {
            let account_id = template
                .account_id
                .unwrap_or_else(|| self.fixture_account_id.clone());
            self.check_account(&account_id)?;
            if let Some(missing) = template.product_offering_ids.iter().find(|id| {
                self.offerings
                    .get(*id)
                    .is_none_or(|offering| offering.account_id != account_id)
            }) {
                return Err(format!(
                    "product offering {missing} not found in account {account_id}"
                ));
            }
            let id = self.add_template(&account_id, template.name, template.product_offering_ids);
            push(&mut created, "order_templates", id);
        }
        for subscriber in input.subscribers {
            if let Some(account_id) = &subscriber.account_id {
                self.check_account(account_id)?;
            }
            let id = self.add_subscriber(subscriber);
            push(&mut created, "subscribers", id);
        }
        Ok(created)
    }

    fn check_account(&self, account_id: &str) -> Result<(), String> {
        if self.accounts.contains_key(account_id) {
            Ok(())
        } else {
            Err(format!("account {account_id} not found"))
        }
    }

    /// Every account, and the subscribers, templates and offerings of one (by default the
    /// fixture account).
    pub fn fixtures_json(&self, account_id: Option<&str>) -> Value {
        let account_id = account_id.unwrap_or(&self.fixture_account_id);
        json!({
            "account_id": account_id,
            "accounts": self.accounts.values().map(Account::to_json).collect::<Vec<_>>(),
            "subscribers": self.subscribers.values().filter(|s| s.account_id == account_id).map(Subscriber::to_json).collect::<Vec<_>>(),
            "order_templates": self.templates.values().filter(|t| t.account_id == account_id).map(OrderTemplate::to_json).collect::<Vec<_>>(),
            "product_offerings": self.offerings.values().filter(|o| o.account_id == account_id).map(Offering::to_json).collect::<Vec<_>>(),
        })
    }

    fn add_account(&mut self, name: &str, country: &str) -> String {
        let id = self.ids.next("acc");
        self.insert_account(&id, name, country);
        id
    }

    pub fn insert_account(&mut self, id: &str, name: &str, country: &str) {
        self.accounts.insert(
            id.to_string(),
            Account {
                id: id.to_string(),
                name: name.into(),
                country: country.to_uppercase(),
                status: "active".into(),
            },
        );
    }

    fn add_offering(&mut self, mut offering: Offering) -> String {
        offering.id = self.ids.next("prdoff");
        let id = offering.id.clone();
        self.offerings.insert(id.clone(), offering);
        id
    }

    fn add_template(
        &mut self,
        account_id: &str,
        name: String,
        product_offering_ids: Vec<String>,
    ) -> String {
        let id = self.ids.next("otpl");
        self.templates.insert(
            id.clone(),
            OrderTemplate {
                id: id.clone(),
                account_id: account_id.to_string(),
                name,
                product_offering_ids,
            },
        );
        id
    }

    fn add_subscriber(&mut self, input: SubscriberInput) -> String {
        let id = self.ids.next("sbr");
        let account_id = input
            .account_id
            .unwrap_or_else(|| self.fixture_account_id.clone());
        self.subscribers.insert(
            id.clone(),
            Subscriber {
                id: id.clone(),
                account_id,
                first_name: input.first_name,
                last_name: input.last_name,
                email: input.email,
                employee_id: input.employee_id,
                group: input.group,
            },
        );
        id
    }

    fn offering_from_input(&self, input: OfferingInput) -> Result<Offering, String> {
        let kind = match input.kind.as_str() {
            "plan" => OfferingType::Plan,
            "addon" => OfferingType::Addon,
            other => return Err(format!("unknown offering type {other}")),
        };
        let recurrence = match input.recurrence.as_str() {
            "monthly" => Recurrence::Monthly,
            "one_time" => Recurrence::OneTime,
            other => return Err(format!("unknown recurrence {other}")),
        };
        Ok(Offering {
            id: String::new(),
            account_id: input
                .account_id
                .unwrap_or_else(|| self.fixture_account_id.clone()),
            name: input.name,
            kind,
            status: "active".into(),
            data_bytes: input.allowances.data_bytes,
            voice_seconds: input.allowances.voice_seconds,
            sms: input.allowances.sms,
            validity_months: 1,
            coverage_countries: input.allowances.coverage_countries,
            throttle_kbps: input.throttle.map(|t| t.after_cap_kbps),
            price_minor: input.price.as_ref().map(|p| p.amount),
            currency: input.price.map_or_else(|| "USD".into(), |p| p.currency),
            recurrence,
        })
    }
}

fn plan(name: &str, data_bytes: Option<u64>, countries: &[&str], price_minor: u64) -> Offering {
    Offering {
        id: String::new(),
        account_id: String::new(),
        name: name.into(),
        kind: OfferingType::Plan,
        status: "active".into(),
        data_bytes,
        voice_seconds: None,
        sms: None,
        validity_months: 1,
        coverage_countries: countries.iter().map(|c| c.to_string()).collect(),
        throttle_kbps: None,
        price_minor: Some(price_minor),
        currency: "USD".into(),
        recurrence: Recurrence::Monthly,
    }
}

fn push(created: &mut Value, key: &str, id: String) {
    if let Some(list) = created[key].as_array_mut() {
        list.push(id.into());
    }
}
