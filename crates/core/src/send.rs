//! Validation of a send request.

use magpie_types::{ClientMsgId, Content, ConvId, UserId};

use crate::error::ErrorKind;
use crate::limits::Limits;

/// A send that passed every check that needs no storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatedSend {
    /// The conversation the message goes to.
    pub conv: ConvId,
    /// The users whose devices receive it (for 1:1: sender and recipient).
    pub parties: Vec<UserId>,
    /// The recipient (for 1:1).
    pub recipient: UserId,
    /// The dedup key.
    pub client_msg_id: ClientMsgId,
    /// The content.
    pub content: Content,
}

/// Why a send was refused before storage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendRefused {
    /// The content is larger than allowed.
    #[error("message content of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The content size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Too many metadata entries.
    #[error("{count} metadata entries exceed the limit of {max}")]
    TooMuchMetadata {
        /// The entry count.
        count: usize,
        /// The limit.
        max: usize,
    },
}

impl SendRefused {
    /// The error kind this refusal maps to.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::TooLarge { .. } => ErrorKind::MessageTooLarge,
            Self::TooMuchMetadata { .. } => ErrorKind::InvalidArgument,
        }
    }
}

/// Checks content against the size limits (every message kind: 1:1, group, room).
pub fn validate_content(limits: &Limits, content: &Content) -> Result<(), SendRefused> {
    if content.metadata.len() > limits.max_metadata_entries {
        return Err(SendRefused::TooMuchMetadata {
            count: content.metadata.len(),
            max: limits.max_metadata_entries,
        });
    }
    let size = content.size();
    if size > limits.max_message_bytes {
        return Err(SendRefused::TooLarge {
            size,
            max: limits.max_message_bytes,
        });
    }
    Ok(())
}

/// Validates a 1:1 send from `sender` to `recipient`. The sender is always the
/// authenticated user of the connection: the protocol has no field to claim another.
pub fn validate_direct(
    limits: &Limits,
    sender: &UserId,
    recipient: UserId,
    client_msg_id: ClientMsgId,
    content: Content,
) -> Result<ValidatedSend, SendRefused> {
    validate_content(limits, &content)?;
    let conv = ConvId::direct(sender, &recipient);
    let parties = if sender == &recipient {
        vec![sender.clone()]
    } else {
        vec![sender.clone(), recipient.clone()]
    };
    Ok(ValidatedSend {
        conv,
        parties,
        recipient,
        client_msg_id,
        content,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> UserId {
        UserId::new(s).unwrap()
    }

    #[test]
    fn sizes_are_enforced() {
        let limits = Limits {
            max_message_bytes: 10,
            ..Limits::default()
        };
        let cm = ClientMsgId::new("c").unwrap();
        let ok = validate_direct(
            &limits,
            &u("a"),
            u("b"),
            cm.clone(),
            Content::text("0123456789"),
        );
        assert_eq!(ok.unwrap().parties, vec![u("a"), u("b")]);
        let err = validate_direct(
            &limits,
            &u("a"),
            u("b"),
            cm.clone(),
            Content::text("01234567890"),
        );
        assert_eq!(err.unwrap_err().kind(), ErrorKind::MessageTooLarge);
        let mut c = Content::text("");
        for i in 0..40 {
            c.metadata.insert(format!("{i}"), String::new());
        }
        let err = validate_direct(&Limits::default(), &u("a"), u("b"), cm, c);
        assert_eq!(err.unwrap_err().kind(), ErrorKind::InvalidArgument);
    }

    #[test]
    fn note_to_self_has_one_party() {
        let v = validate_direct(
            &Limits::default(),
            &u("a"),
            u("a"),
            ClientMsgId::new("c").unwrap(),
            Content::text("x"),
        )
        .unwrap();
        assert_eq!(v.parties, vec![u("a")]);
        assert_eq!(v.conv.as_str(), "p2p:a:a");
    }
}
