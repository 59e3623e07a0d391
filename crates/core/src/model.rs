use std::fmt;

/// A model's name as it appears in URLs, file names and metric labels.
///
/// Invariant: 1 to 128 characters from `[A-Za-z0-9._-]`, starting with a letter or digit, so a
/// name can never contain a path separator, a quote or a control character.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModelName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelNameError {
    #[error("model name is empty")]
    Empty,
    #[error("model name is longer than 128 characters")]
    TooLong,
    #[error("model name {0:?} must start with a letter or digit")]
    BadStart(String),
    #[error(
        "model name {name:?} contains {ch:?}: only letters, digits, '.', '_' and '-' are allowed"
    )]
    BadChar { name: String, ch: char },
}

impl crate::ServiceError for ModelNameError {
    fn code(&self) -> crate::ErrorCode {
        crate::ErrorCode::InvalidInput
    }
}

impl ModelName {
    pub fn new(name: &str) -> Result<Self, ModelNameError> {
        if name.is_empty() {
            return Err(ModelNameError::Empty);
        }
        if name.len() > 128 {
            return Err(ModelNameError::TooLong);
        }
        if let Some(ch) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(ModelNameError::BadChar {
                name: name.to_string(),
                ch,
            });
        }
        if !name.as_bytes()[0].is_ascii_alphanumeric() {
            return Err(ModelNameError::BadStart(name.to_string()));
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A model version label (`v3`, `2026-01-rc1`): 1 to 128 printable characters.
pub fn validate_version(version: &str) -> Result<(), String> {
    if version.is_empty() {
        return Err("model_version is empty".into());
    }
    if version.chars().count() > 128 {
        return Err("model_version is longer than 128 characters".into());
    }
    if version.chars().any(char::is_control) {
        return Err("model_version contains a control character".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names() {
        for n in ["fraud", "fraud-v2", "credit_risk.eu", "A1"] {
            assert_eq!(ModelName::new(n).unwrap().as_str(), n);
        }
    }

    #[test]
    fn rejects_path_quote_and_control_characters() {
        for n in [
            "../etc", "a/b", "a\"b", "a'b", "a\nb", "a b", "a\u{0}", ".hidden", "-x", "",
        ] {
            assert!(ModelName::new(n).is_err(), "{n:?} should be rejected");
        }
        assert!(ModelName::new(&"a".repeat(129)).is_err());
    }
}
