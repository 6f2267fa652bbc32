//! The asynchronous step of orders: completing (applying the change) or canceling.
use serde_json::{Value, json};

use crate::clock::add_months;
use crate::error::{ApiError, ApiResult};
use crate::model::*;
use crate::orders::pushed_eid;
use crate::state::State;

pub const PROVISIONING_FAILED: &str = "PROVISIONING_FAILED";
pub const INVALID_STATE: &str = "INVALID_STATE";

impl State {
    /// Returns whether any order was due.
    pub fn settle_due_orders(&mut self) -> bool {
        let now = self.now();
        let mut due: Vec<(time::OffsetDateTime, String)> = self
            .orders
            .values()
            .filter(|order| order.status == OrderStatus::Pending && order.due_at <= now)
            .map(|order| (order.due_at, order.id.clone()))
            .collect();
        due.sort();
        let any_due = !due.is_empty();
        for (_, id) in due {
            let forced = self.orders[&id].forced_failure.clone();
            let failure_rate = self.config.order_failure_rate;
            match forced {
                Some(code) => self.cancel_order(&id, &code, "order-level fault injected"),
                None if self.roll(failure_rate) => self.cancel_order(
                    &id,
                    PROVISIONING_FAILED,
                    "the network could not provision the request",
                ),
                None => self.complete_order(&id),
            }
        }
        any_due
    }

    /// `POST /_sim/orders/{id}/complete`: settles now, ignoring failure knobs.
    pub fn complete_order_by_hand(&mut self, id: &str) -> ApiResult<Value> {
        self.pending_order(id)?;
        self.complete_order(id);
        Ok(self.orders[id].to_json())
    }

    pub fn cancel_order_by_hand(&mut self, id: &str, code: &str) -> ApiResult<Value> {
        self.pending_order(id)?;
        self.cancel_order(id, code, "canceled through the control plane");
        Ok(self.orders[id].to_json())
    }

    fn pending_order(&self, id: &str) -> ApiResult<()> {
        let order = self
            .orders
            .get(id)
            .ok_or_else(|| ApiError::not_found("order", id))?;
        if order.status != OrderStatus::Pending {
            return Err(ApiError::invalid_transition(format!(
                "order {id} is already {}",
                order.status.as_str()
            )));
        }
        Ok(())
    }

    fn complete_order(&mut self, id: &str) {
        match self.apply_order(id) {
            Ok(()) => {
                let now = self.now();
                let order = self.orders.get_mut(id).expect("order exists");
                order.status = OrderStatus::Completed;
                order.completed_at = Some(now);
                let (account_id, data) = (order.account_id.clone(), order.to_json());
                self.emit(&account_id, "order.completed", data);
            }
            Err(message) => self.cancel_order(id, INVALID_STATE, &message),
        }
    }

    pub fn cancel_order(&mut self, id: &str, code: &str, message: &str) {
        let now = self.now();
        let Some(order) = self.orders.get_mut(id) else {
            return;
        };
        order.status = OrderStatus::Canceled;
        order.canceled_at = Some(now);
        order.failure = Some(Failure {
            code: code.to_string(),
            message: message.to_string(),
        });
        let (kind, subscription_id) = (order.kind, order.subscription_id.clone());
        let (account_id, data) = (order.account_id.clone(), order.to_json());
        if let (OrderType::ActivateSubscription, Some(subscription_id)) = (kind, subscription_id) {
            self.abandon_pending_subscription(&subscription_id);
        }
        self.emit(&account_id, "order.canceled", data);
    }

    /// A line whose activation failed never becomes usable.
    fn abandon_pending_subscription(&mut self, subscription_id: &str) {
        let now = self.now();
        if self.subscriptions.get(subscription_id).map(|s| s.status)
            != Some(SubscriptionStatus::Pending)
        {
            return;
        }
        self.set_subscription_status(subscription_id, SubscriptionStatus::Terminated);
        for product in self
            .products
            .values_mut()
            .filter(|p| p.subscription_id == subscription_id)
        {
            product.status = ProductStatus::Terminated;
            product.expires_at = Some(now);
        }
    }

    fn apply_order(&mut self, id: &str) -> Result<(), String> {
        let order = &self.orders[id];
        let (kind, offering_id, request) =
            (order.kind, order.offering_id.clone(), order.request.clone());
        let subscription_id = order.subscription_id.clone().unwrap_or_default();
        let status = self
            .subscriptions
            .get(&subscription_id)
            .map(|s| s.status)
            .ok_or_else(|| format!("subscription {subscription_id} no longer exists"))?;
        let expect = |ok: bool| {
            if ok {
                Ok(())
            } else {
                Err(format!("subscription is {} now", status.as_str()))
            }
        };
        match kind {
            OrderType::ActivateSubscription => {
                expect(status == SubscriptionStatus::Pending)?;
                self.activate_subscription(&subscription_id);
            }
            OrderType::SuspendSubscription => {
                expect(status == SubscriptionStatus::Active)?;
                self.set_subscription_status(&subscription_id, SubscriptionStatus::Suspended);
            }
            OrderType::ResumeSubscription => {
                expect(status == SubscriptionStatus::Suspended)?;
                self.set_subscription_status(&subscription_id, SubscriptionStatus::Active);
            }
            OrderType::TerminateSubscription => {
                expect(status.is_live())?;
                self.terminate_subscription(&subscription_id);
            }
            OrderType::ChangePlan => {
                expect(status.is_live())?;
                let offering_id = offering_id.unwrap_or_default();
                if request.get("effective").and_then(Value::as_str) == Some("next_period") {
                    self.subscriptions
                        .get_mut(&subscription_id)
                        .expect("exists")
                        .next_plan_offering_id = Some(offering_id);
                } else {
                    self.replace_plan(&subscription_id, &offering_id);
                }
            }
            OrderType::AddProduct => {
                expect(status.is_live())?;
                self.add_product(&subscription_id, &offering_id.unwrap_or_default());
            }
            OrderType::SetSpeedLimit => {
                expect(status.is_live())?;
                let limit = crate::orders::speed_limit(&request)
                    .map_err(|_| "max_kbps is not a speed limit".to_owned())?;
                self.subscriptions
                    .get_mut(&subscription_id)
                    .expect("exists")
                    .speed_limit_kbps = limit;
            }
            OrderType::ChangeSimProfile => {
                expect(status.is_live())?;
                self.swap_profile(
                    &subscription_id,
                    request.get("sim_profile").cloned().unwrap_or(Value::Null),
                );
            }
        }
        Ok(())
    }

    fn activate_subscription(&mut self, subscription_id: &str) {
        let now = self.now();
        let period_end = add_months(now, 1);
        let subscription = self.subscriptions.get_mut(subscription_id).expect("exists");
        subscription.activated_at = Some(now);
        subscription.current_period = Some((now, period_end));
        if let Some(product) = subscription
            .plan_product_id
            .as_ref()
            .and_then(|id| self.products.get_mut(id))
        {
            product.status = ProductStatus::Active;
            product.starts_at = now;
            product.expires_at = Some(period_end);
        }
        self.set_subscription_status(subscription_id, SubscriptionStatus::Active);
        let eid = pushed_eid(&self.subscriptions[subscription_id].sim_request);
        self.create_profile(subscription_id, eid);
    }

    pub fn set_subscription_status(&mut self, subscription_id: &str, to: SubscriptionStatus) {
        let now = self.now();
        let Some(subscription) = self.subscriptions.get_mut(subscription_id) else {
            return;
        };
        let (from, account_id) = (subscription.status, subscription.account_id.clone());
        subscription.status = to;
        match to {
            SubscriptionStatus::Suspended => subscription.suspended_at = Some(now),
            SubscriptionStatus::Active => subscription.suspended_at = None,
            SubscriptionStatus::Terminated => subscription.terminated_at = Some(now),
            SubscriptionStatus::Pending => {}
        }
        self.emit(
            &account_id,
            "subscription.status_changed",
            json!({"subscription_id": subscription_id, "from": from.as_str(), "to": to.as_str()}),
        );
    }

    fn terminate_subscription(&mut self, subscription_id: &str) {
        let now = self.now();
        self.set_subscription_status(subscription_id, SubscriptionStatus::Terminated);
        for product in self.products.values_mut().filter(|p| {
            p.subscription_id == subscription_id
                && matches!(
                    p.status,
                    ProductStatus::Pending | ProductStatus::Active | ProductStatus::Depleted
                )
        }) {
            product.status = ProductStatus::Terminated;
            product.expires_at = Some(now);
        }
        if let Some(iccid) = self.subscriptions[subscription_id].iccid.clone() {
            let _ = self.move_profile(&iccid, ProfileStatus::Deleted, None);
        }
    }

    /// `change_plan` now: the old plan product ends, the new one runs to the period end.
    pub fn replace_plan(&mut self, subscription_id: &str, offering_id: &str) {
        let now = self.now();
        let subscription = &self.subscriptions[subscription_id];
        let period_end = subscription.current_period.map(|(_, end)| end);
        if let Some(old) = subscription
            .plan_product_id
            .as_ref()
            .and_then(|id| self.products.get_mut(id))
        {
            old.status = ProductStatus::Terminated;
            old.expires_at = Some(now);
        }
        let product_id = self.new_product(subscription_id, offering_id, now, period_end);
        self.subscriptions
            .get_mut(subscription_id)
            .expect("exists")
            .plan_product_id = Some(product_id);
    }

    fn add_product(&mut self, subscription_id: &str, offering_id: &str) {
        let now = self.now();
        let months = self
            .offerings
            .get(offering_id)
            .map_or(1, |o| o.validity_months);
        self.new_product(
            subscription_id,
            offering_id,
            now,
            Some(add_months(now, months)),
        );
    }

    pub fn new_product(
        &mut self,
        subscription_id: &str,
        offering_id: &str,
        starts_at: time::OffsetDateTime,
        expires_at: Option<time::OffsetDateTime>,
    ) -> String {
        let id = self.ids.next("prd");
        let account_id = self.subscriptions[subscription_id].account_id.clone();
        let allowance_bytes = self.offerings.get(offering_id).and_then(|o| o.data_bytes);
        self.products.insert(
            id.clone(),
            Product {
                id: id.clone(),
                account_id,
                subscription_id: subscription_id.to_string(),
                offering_id: offering_id.to_string(),
                status: ProductStatus::Active,
                allowance_bytes,
                used_bytes: 0,
                starts_at,
                expires_at,
                thresholds_fired: Vec::new(),
            },
        );
        id
    }

    fn swap_profile(&mut self, subscription_id: &str, sim_request: Value) {
        if let Some(old_iccid) = self.subscriptions[subscription_id].iccid.clone() {
            let _ = self.move_profile(&old_iccid, ProfileStatus::Deleted, None);
        }
        let eid = pushed_eid(&sim_request);
        self.subscriptions
            .get_mut(subscription_id)
            .expect("exists")
            .sim_request = sim_request;
        self.create_profile(subscription_id, eid);
    }
}
