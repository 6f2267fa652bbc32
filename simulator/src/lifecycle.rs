//! Time-driven state rules: due orders, profile auto-install, renewals, expiries.
use serde_json::json;
use time::Duration;

use crate::clock::{add_months, rfc3339, rfc3339_opt};
use crate::connect::ConnectEvent;
use crate::error::{ApiError, ApiResult};
use crate::model::*;
use crate::state::State;

impl State {
    /// Runs everything that has become due by the simulated clock.
    pub fn tick(&mut self) {
        let mut changed = self.settle_due_orders();
        changed |= self.install_due_profiles();
        changed |= self.renew_due_subscriptions();
        changed |= self.expire_due_products();
        changed |= self.purge_idempotency_records();
        if changed {
            self.unsaved_changes = true;
        }
        self.tick_gigs();
        let now = self.now();
        self.tokens.retain(|_, token| token.expires_at > now);
    }

    pub fn create_profile(&mut self, subscription_id: &str, eid: Option<String>) -> String {
        let now = self.now();
        let mut iccid = self.ids.iccid();
        while self.profiles.contains_key(&iccid) {
            iccid = self.ids.iccid();
        }
        let matching_id = self.ids.matching_id();
        let confirmation_code = self
            .config
            .confirmation_code_required
            .then(|| self.ids.digits(8));
        let install_at = self
            .config
            .auto_install
            .enabled
            .then(|| now + Duration::milliseconds(self.config.auto_install.after_ms as i64));
        self.profiles.insert(
            iccid.clone(),
            SimProfile {
                iccid: iccid.clone(),
                subscription_id: subscription_id.to_string(),
                eid,
                status: ProfileStatus::Released,
                matching_id,
                confirmation_code,
                last_modified: now,
                install_at,
            },
        );
        if let Some(subscription) = self.subscriptions.get_mut(subscription_id) {
            subscription.iccid = Some(iccid.clone());
        }
        iccid
    }

    /// Moves a profile along its state machine and announces the download progress.
    pub fn move_profile(
        &mut self,
        iccid: &str,
        next: ProfileStatus,
        eid: Option<String>,
    ) -> ApiResult<()> {
        let now = self.now();
        let profile = self
            .profiles
            .get_mut(iccid)
            .ok_or_else(|| ApiError::not_found("sim profile", iccid))?;
        if !profile.status.can_move_to(next) {
            return Err(ApiError::invalid_transition(format!(
                "sim profile cannot go from {} to {}",
                profile.status.as_str(),
                next.as_str()
            )));
        }
        if let Some(eid) = eid.filter(|eid| profile.eid.as_ref() != Some(eid)) {
            if profile.eid.is_some()
                && !matches!(
                    profile.status,
                    ProfileStatus::Released | ProfileStatus::Deleted
                )
            {
                return Err(ApiError::invalid_transition(
                    "the EID can change only while the profile is released or deleted",
                ));
            }
            profile.eid = Some(eid);
        }
        if matches!(next, ProfileStatus::Installed | ProfileStatus::Enabled)
            && profile.eid.is_none()
        {
            profile.eid = Some(self.ids.eid());
        }
        profile.status = next;
        profile.last_modified = now;
        profile.install_at = None;
        let (step, status) = next.progress_step();
        let eid = profile.eid.clone();
        let account_id = self
            .subscriptions
            .get(&profile.subscription_id)
            .map(|s| s.account_id.clone())
            .unwrap_or_default();
        self.emit(
            &account_id,
            "sim_profile.download_progress",
            json!({"iccid": iccid, "eid": eid, "step": step, "status": status, "profile_status": next.as_str()}),
        );
        self.notify_connect(iccid, ConnectEvent::DownloadProgress, |id| {
            json!({
                "id": id,
                "iccid": iccid,
                "eid": eid,
                "type": "DOWNLOAD_PROGRESS",
                "download_progress_step": step,
                "notification_point_description": format!("profile {}", next.as_str()),
                "notification_status": status,
            })
        });
        Ok(())
    }

    /// Returns whether anything was due.
    fn install_due_profiles(&mut self) -> bool {
        let now = self.now();
        let due: Vec<String> = self
            .profiles
            .values()
            .filter(|p| {
                p.status == ProfileStatus::Released && p.install_at.is_some_and(|at| at <= now)
            })
            .map(|p| p.iccid.clone())
            .collect();
        let any_due = !due.is_empty();
        for iccid in due {
            let _ = self.move_profile(&iccid, ProfileStatus::Downloaded, None);
            let _ = self.move_profile(&iccid, ProfileStatus::Installed, None);
        }
        any_due
    }

    /// Returns whether anything was due.
    fn renew_due_subscriptions(&mut self) -> bool {
        let now = self.now();
        let due: Vec<String> = self
            .subscriptions
            .values()
            .filter(|s| s.status.is_live() && s.current_period.is_some_and(|(_, end)| end <= now))
            .map(|s| s.id.clone())
            .collect();
        let any_due = !due.is_empty();
        for id in due {
            while let Some((_, end)) = self.subscriptions[&id]
                .current_period
                .filter(|(_, end)| *end <= now)
            {
                let period = (end, add_months(end, 1));
                self.subscriptions
                    .get_mut(&id)
                    .expect("exists")
                    .current_period = Some(period);
                self.renew_plan(&id, period);
            }
        }
        any_due
    }

    fn renew_plan(
        &mut self,
        subscription_id: &str,
        (start, end): (time::OffsetDateTime, time::OffsetDateTime),
    ) {
        let subscription = self.subscriptions.get_mut(subscription_id).expect("exists");
        if let Some(offering_id) = subscription.next_plan_offering_id.take() {
            if let Some(old) = subscription
                .plan_product_id
                .as_ref()
                .and_then(|id| self.products.get_mut(id))
            {
                old.status = ProductStatus::Expired;
                old.expires_at = Some(start);
            }
            let product_id = self.new_product(subscription_id, &offering_id, start, Some(end));
            self.subscriptions
                .get_mut(subscription_id)
                .expect("exists")
                .plan_product_id = Some(product_id);
            return;
        }
        let Some(product) = subscription
            .plan_product_id
            .as_ref()
            .and_then(|id| self.products.get_mut(id))
        else {
            return;
        };
        let monthly = self
            .offerings
            .get(&product.offering_id)
            .is_some_and(|o| o.recurrence == Recurrence::Monthly);
        if monthly
            && matches!(
                product.status,
                ProductStatus::Active | ProductStatus::Depleted
            )
        {
            product.used_bytes = 0;
            product.status = ProductStatus::Active;
            product.starts_at = start;
            product.expires_at = Some(end);
            product.thresholds_fired.clear();
        }
    }

    /// Returns whether anything was due.
    fn expire_due_products(&mut self) -> bool {
        let now = self.now();
        let due: Vec<String> = self
            .products
            .values()
            .filter(|p| {
                matches!(p.status, ProductStatus::Active | ProductStatus::Depleted)
                    && p.expires_at.is_some_and(|at| at <= now)
            })
            .map(|p| p.id.clone())
            .collect();
        let any_due = !due.is_empty();
        for id in due {
            let product = self.products.get_mut(&id).expect("exists");
            product.status = ProductStatus::Expired;
            let (account_id, subscription_id, offering_id, expires_at) = (
                product.account_id.clone(),
                product.subscription_id.clone(),
                product.offering_id.clone(),
                product.expires_at,
            );
            self.emit(
                &account_id,
                "product.expired",
                json!({"subscription_id": subscription_id, "product_id": id, "product_offering_id": offering_id}),
            );
            self.announce_subscription_end(&subscription_id, &id, expires_at);
        }
        any_due
    }

    /// Connect's `SUBSCRIPTION_END`, sent when a product is depleted or expires.
    pub fn announce_subscription_end(
        &mut self,
        subscription_id: &str,
        product_id: &str,
        expires_at: Option<time::OffsetDateTime>,
    ) {
        let Some(iccid) = self
            .subscriptions
            .get(subscription_id)
            .and_then(|s| s.iccid.clone())
        else {
            return;
        };
        self.notify_connect(&iccid, ConnectEvent::SubscriptionEnd, |id| {
            json!({
                "id": id,
                "type": "SUBSCRIPTION_END",
                "iccid": iccid,
                "subscription_id": subscription_id,
                "product_id": product_id,
                "expiration_date": rfc3339_opt(expires_at),
                "current_balance": 0,
            })
        });
    }

    pub fn clock_json(&self) -> serde_json::Value {
        json!({"now": rfc3339(self.now()), "offset_s": self.clock.offset_seconds()})
    }
}
