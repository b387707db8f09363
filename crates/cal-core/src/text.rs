//! Strings as they cross a boundary (the API, calctl, an event): every one
//! has a kind, and the kind sets its length and the characters it may hold.
//!
//! PostgreSQL refuses U+0000 in `text`, and an index row has a size limit,
//! so an unchecked string from a caller turns into an internal error (and an
//! ERROR log line anyone could trigger at will). Checking by type, once, at
//! the boundary means nothing deeper has to: a value of these types is
//! valid. Refusals never echo the value (it may be megabytes long).

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a text of one kind may be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TextKind {
    /// Longest allowed, in characters.
    pub max_chars: usize,
    /// Whether line breaks and tabs are allowed (free text such as a note).
    pub multiline: bool,
    /// Whether the empty string (or only white space) is allowed.
    pub may_be_blank: bool,
}

/// Identifiers: user ids, role codes, record ids, idempotency keys. Cognito
/// subjects are 36 characters and our own ids under 40; 128 leaves room for
/// a caller's own keys without letting an id bloat an index row.
pub const ID: TextKind = TextKind { max_chars: 128, multiline: false, may_be_blank: false };
/// A provider's note on an exception or a vacation.
pub const NOTE: TextKind = TextKind { max_chars: 500, multiline: true, may_be_blank: true };
/// A label a provider gives a connected calendar.
pub const LABEL: TextKind = TextKind { max_chars: 200, multiline: false, may_be_blank: true };
/// A URL a provider pastes (an ICS link). Browsers and servers commonly
/// accept about 2,000 characters; so do we.
pub const URL: TextKind = TextKind { max_chars: 2048, multiline: false, may_be_blank: false };

/// Why a text was refused. The message names the rule, never the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("must not be empty")]
    Blank,
    #[error("must be at most {max} characters, got {got}")]
    TooLong { max: usize, got: usize },
    /// A control character (U+0000 included) at a character position.
    #[error("must not contain control characters (found U+{code:04X} at character {at})")]
    ControlCharacter { code: u32, at: usize },
}

impl TextKind {
    /// Checks `text` against this kind.
    pub fn check(&self, text: &str) -> Result<(), TextError> {
        let mut count = 0;
        for (at, c) in text.chars().enumerate() {
            count += 1;
            if count > self.max_chars {
                return Err(TextError::TooLong { max: self.max_chars, got: text.chars().count() });
            }
            let allowed_space = self.multiline && matches!(c, '\n' | '\r' | '\t');
            if c.is_control() && !allowed_space {
                return Err(TextError::ControlCharacter { code: c as u32, at });
            }
        }
        if !self.may_be_blank && text.trim().is_empty() {
            return Err(TextError::Blank);
        }
        Ok(())
    }
}

macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The rules this type enforces.
            pub const KIND: TextKind = $kind;

            /// Checks and wraps `text`.
            pub fn parse(text: impl Into<String>) -> Result<Self, TextError> {
                let text = text.into();
                Self::KIND.check(&text)?;
                Ok($name(text))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = TextError;
            fn try_from(text: String) -> Result<Self, TextError> {
                $name::parse(text)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }

        impl std::ops::Deref for $name {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_type!(
    /// An identifier: 1 to 128 characters, no control characters.
    Id,
    ID
);
text_type!(
    /// Free text from a provider: at most 500 characters; line breaks and
    /// tabs allowed, other control characters not.
    Note,
    NOTE
);
text_type!(
    /// A short label: at most 200 characters on one line.
    Label,
    LABEL
);
text_type!(
    /// A URL as given: its length and characters only. Where it points is
    /// checked separately, by the one URL guard the poller also uses.
    UrlText,
    URL
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_refuse_nul_control_blank_and_long_values_without_echoing_them() {
        assert_eq!(Id::parse("prov-ana").unwrap().as_str(), "prov-ana");
        assert_eq!(Id::parse("a\0b"), Err(TextError::ControlCharacter { code: 0, at: 1 }));
        assert_eq!(Id::parse("line\nbreak"), Err(TextError::ControlCharacter { code: 10, at: 4 }));
        assert_eq!(Id::parse("  "), Err(TextError::Blank));
        assert_eq!(Id::parse(""), Err(TextError::Blank));
        let long = "x".repeat(10_000);
        let err = Id::parse(long.clone()).unwrap_err();
        assert_eq!(err, TextError::TooLong { max: 128, got: 10_000 });
        assert!(!err.to_string().contains("xxx"), "the message must not echo the value");
        // 128 characters (not bytes) are fine.
        assert!(Id::parse("é".repeat(128)).is_ok());
        assert!(Id::parse("é".repeat(129)).is_err());
    }

    #[test]
    fn notes_allow_line_breaks_and_blank_but_not_nul_or_a_megabyte() {
        assert!(Note::parse("Trade fair\nHall 3\tstand 12").is_ok());
        assert!(Note::parse("").is_ok());
        assert_eq!(Note::parse("x\u{0}"), Err(TextError::ControlCharacter { code: 0, at: 1 }));
        assert_eq!(Note::parse("bell\u{7}"), Err(TextError::ControlCharacter { code: 7, at: 4 }));
        assert!(matches!(Note::parse("n".repeat(1_000_000)), Err(TextError::TooLong { max: 500, .. })));
    }

    #[test]
    fn serde_reads_through_the_check() {
        let ok: Id = serde_json::from_str("\"hold_1\"").unwrap();
        assert_eq!(&*ok, "hold_1");
        let err = serde_json::from_str::<Id>("\"a\\u0000\"").unwrap_err();
        assert!(err.to_string().contains("control characters"), "{err}");
        assert_eq!(serde_json::to_string(&ok).unwrap(), "\"hold_1\"");
    }
}
