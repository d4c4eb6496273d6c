//! Durations written as operators write them: `90d`, `12h`, `30m`, `5s`, `2w`.

use std::fmt;
use std::time::Duration;

/// Parses `<number><unit>` with the unit one of `ms`, `s`, `m`, `h`, `d`, `w`.
///
/// ```
/// use std::time::Duration;
/// use rocket_api_key::__private::cli::parse_duration;
///
/// assert_eq!(parse_duration("90d"), Ok(Duration::from_secs(90 * 86_400)));
/// assert!(parse_duration("90").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 604_800_000,
        _ => return Err(DurationError::BadUnit(text.to_owned())),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit_ms))
        .map(Duration::from_millis)
        .ok_or_else(|| DurationError::BadNumber(text.to_owned()))
}

/// Text that [`parse_duration`] refuses; each carries the text, trimmed. Messages quote it with
/// control characters escaped, so a configuration value cannot forge a log line.
///
/// ```
/// use rocket_api_key::{__private::cli::parse_duration, __private::cli::DurationError};
///
/// assert_eq!(parse_duration("90"), Err(DurationError::BadUnit("90".into())));
/// assert_eq!(
///     parse_duration("d").unwrap_err().to_string(),
///     "`d` is not a duration: the number is missing or too large"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DurationError {
    /// No unit, or one that is not `ms`, `s`, `m`, `h`, `d` or `w`.
    BadUnit(String),
    /// A unit without a number before it, or a duration too large to represent.
    BadNumber(String),
}

impl fmt::Display for DurationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurationError::BadUnit(text) => write!(
                f,
                "`{}` is not a duration; write a number and a unit: `50ms`, `30s`, `5m`, `12h`, `90d`, `2w`",
                text.escape_debug()
            ),
            DurationError::BadNumber(text) => write!(
                f,
                "`{}` is not a duration: the number is missing or too large",
                text.escape_debug()
            ),
        }
    }
}

impl std::error::Error for DurationError {}

/// Serde support: a duration string (`"7d"`) or a number of seconds.
pub(crate) mod serde_duration {
    use std::time::Duration;

    use serde::{de, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}ms", d.as_millis()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(n) => Ok(Duration::from_secs(n)),
            Raw::Text(t) => super::parse_duration(&t).map_err(de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("50ms"), Ok(Duration::from_millis(50)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(43_200)));
        assert_eq!(parse_duration("2w"), Ok(Duration::from_secs(1_209_600)));
        assert_eq!(parse_duration(" 0s "), Ok(Duration::ZERO));
        for bad in [
            "",
            "d",
            "5",
            "5x",
            "-5d",
            "5 d",
            "1.5h",
            "99999999999999999999d",
            "\u{1b}",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
        assert!(!parse_duration("\u{1b}[31m")
            .unwrap_err()
            .to_string()
            .contains('\u{1b}'));
        assert_eq!(
            parse_duration("5x").unwrap_err().to_string(),
            "`5x` is not a duration; write a number and a unit: `50ms`, `30s`, `5m`, `12h`, `90d`, `2w`"
        );
        assert_eq!(
            parse_duration(" 99999999999999999999d ")
                .unwrap_err()
                .to_string(),
            "`99999999999999999999d` is not a duration: the number is missing or too large"
        );
    }
}
