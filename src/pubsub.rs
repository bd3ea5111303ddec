//! The topic grammar of the host's publish/subscribe service (WIT interface
//! `ws-edge:websocket/pubsub`), in one place for the host that enforces it
//! and the components that build topics from user input.
//!
//! A topic is 1 to [`MAX_TOPIC_LEN`] bytes of at most [`MAX_TOPIC_TOKENS`]
//! tokens separated by `.`; each token is one or more of `A`–`Z`, `a`–`z`,
//! `0`–`9`, `-` and `_`. That is a subset of NATS subjects without
//! wildcards, so a topic maps to a NATS subject unchanged. A topic whose
//! first token starts with `_` is *reserved*: components may subscribe to
//! it, only the host's operator publishes on it.

use std::fmt;

/// The longest topic, in bytes.
pub const MAX_TOPIC_LEN: usize = 128;

/// The most tokens a topic may have.
pub const MAX_TOPIC_TOKENS: usize = 16;

/// Why a string is not a topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicError {
    /// The topic is empty.
    Empty,
    /// The topic is longer than [`MAX_TOPIC_LEN`] bytes.
    TooLong,
    /// The topic has more than [`MAX_TOPIC_TOKENS`] tokens.
    TooManyTokens,
    /// A token is empty (a leading, trailing or doubled `.`).
    EmptyToken,
    /// A byte outside `A-Za-z0-9-_.` (wildcards `*` and `>` included).
    InvalidByte(u8),
}

impl fmt::Display for TopicError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TopicError::Empty => f.write_str("the topic is empty"),
            TopicError::TooLong => write!(f, "the topic is longer than {MAX_TOPIC_LEN} bytes"),
            TopicError::TooManyTokens => {
                write!(f, "the topic has more than {MAX_TOPIC_TOKENS} tokens")
            }
            TopicError::EmptyToken => f.write_str("the topic has an empty token"),
            TopicError::InvalidByte(b) => write!(
                f,
                "the topic contains byte 0x{b:02x}; tokens are A-Z a-z 0-9 - _ separated by '.'"
            ),
        }
    }
}

impl std::error::Error for TopicError {}

/// Checks `topic` against the grammar.
pub fn check_topic(topic: &str) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty);
    }
    if topic.len() > MAX_TOPIC_LEN {
        return Err(TopicError::TooLong);
    }
    let mut tokens = 0;
    for token in topic.split('.') {
        tokens += 1;
        if tokens > MAX_TOPIC_TOKENS {
            return Err(TopicError::TooManyTokens);
        }
        if token.is_empty() {
            return Err(TopicError::EmptyToken);
        }
        if let Some(&b) = token.as_bytes().iter().find(|&&b| !is_token_byte(b)) {
            return Err(TopicError::InvalidByte(b));
        }
    }
    Ok(())
}

/// Whether `topic` (assumed valid) is reserved for the operator: its first
/// token starts with `_`.
pub fn is_reserved(topic: &str) -> bool {
    topic.starts_with('_')
}

/// Whether `b` may appear in a token.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_nats_style_tokens() {
        for topic in ["a", "rooms.lobby", "rooms.room-7_b", "_announce", "A.B.C9"] {
            assert_eq!(check_topic(topic), Ok(()), "{topic}");
        }
        let longest = "a".repeat(MAX_TOPIC_LEN);
        assert_eq!(check_topic(&longest), Ok(()));
        let deepest = vec!["t"; MAX_TOPIC_TOKENS].join(".");
        assert_eq!(check_topic(&deepest), Ok(()));
    }

    #[test]
    fn rejects_what_nats_would_read_differently() {
        assert_eq!(check_topic(""), Err(TopicError::Empty));
        assert_eq!(check_topic("rooms."), Err(TopicError::EmptyToken));
        assert_eq!(check_topic(".rooms"), Err(TopicError::EmptyToken));
        assert_eq!(check_topic("a..b"), Err(TopicError::EmptyToken));
        assert_eq!(check_topic("rooms.*"), Err(TopicError::InvalidByte(b'*')));
        assert_eq!(check_topic("rooms.>"), Err(TopicError::InvalidByte(b'>')));
        assert_eq!(check_topic("a b"), Err(TopicError::InvalidByte(b' ')));
        assert_eq!(check_topic("caf\u{e9}"), Err(TopicError::InvalidByte(0xc3)));
        assert_eq!(
            check_topic(&"a".repeat(MAX_TOPIC_LEN + 1)),
            Err(TopicError::TooLong)
        );
        let deep = vec!["t"; MAX_TOPIC_TOKENS + 1].join(".");
        assert_eq!(check_topic(&deep), Err(TopicError::TooManyTokens));
    }

    #[test]
    fn reserved_topics_start_with_an_underscore() {
        assert!(is_reserved("_announce"));
        assert!(is_reserved("_ops.deploys"));
        assert!(!is_reserved("rooms._x"));
    }
}
