//! How a control acts on what it finds, for policies, limits, the guard and the classifier.

use serde::Deserialize;

#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Enforce,
    /// Decide and audit "would_deny", but let the request through.
    Monitor,
}
