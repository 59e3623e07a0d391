//! Rules over the API: every rule (the config's, then the stored ones), create and delete.

use super::{AlertService, AlertsError};
use crate::rule::{Origin, Rule, RuleSpec};
use serde::Serialize;
use serde_json::Value;

/// A rule as `GET /v1/models/{model}/rules` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RuleView {
    pub model: String,
    pub origin: Origin,
    #[serde(flatten)]
    pub spec: RuleSpec,
}

impl AlertService {
    /// Every rule: the config's, then the API's. A stored rule that no longer validates (a
    /// notifier removed from the config) is skipped with a warning.
    pub fn all_rules(&self) -> Result<Vec<Rule>, AlertsError> {
        let names = self.sender.names();
        let mut out = self.config_rules.clone();
        for (model, spec) in self.db.rules()? {
            let name = spec.name.clone();
            match spec.validate(&model, Origin::Api, &names) {
                Ok(r) => out.push(r),
                Err(e) => {
                    tracing::warn!(model = %model, rule = %name, error = %e, "stored rule skipped")
                }
            }
        }
        Ok(out)
    }

    pub fn rules(&self, model: &str) -> Result<Vec<RuleView>, AlertsError> {
        Ok(self
            .all_rules()?
            .into_iter()
            .filter(|r| r.model == model)
            .map(|r| RuleView {
                model: r.model,
                origin: r.origin,
                spec: r.spec,
            })
            .collect())
    }

    pub fn create_rule(&self, model: &str, body: Value) -> Result<RuleView, AlertsError> {
        let rule = RuleSpec::from_json(body)?.validate(model, Origin::Api, &self.sender.names())?;
        if self
            .config_rules
            .iter()
            .any(|r| r.model == model && r.spec.name == rule.spec.name)
        {
            return Err(AlertsError::Conflict(format!(
                "model `{model}` already has a rule `{}` (from the config file)",
                rule.spec.name
            )));
        }
        if !self.db.insert_rule(model, &rule.spec, self.now())? {
            return Err(AlertsError::Conflict(format!(
                "model `{model}` already has a rule `{}`: delete it first",
                rule.spec.name
            )));
        }
        self.mark_dirty(model);
        Ok(RuleView {
            model: model.to_owned(),
            origin: Origin::Api,
            spec: rule.spec,
        })
    }

    pub fn delete_rule(&self, model: &str, name: &str) -> Result<(), AlertsError> {
        if self
            .config_rules
            .iter()
            .any(|r| r.model == model && r.spec.name == name)
        {
            return Err(AlertsError::Conflict(format!(
                "rule `{name}` of model `{model}` is defined in the config file: remove it there"
            )));
        }
        if !self.db.delete_rule(model, name)? {
            return Err(AlertsError::NotFound(format!(
                "model `{model}` has no rule `{name}`"
            )));
        }
        self.mark_dirty(model);
        Ok(())
    }
}
