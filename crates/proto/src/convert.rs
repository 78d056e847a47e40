//! Conversions between wire types and domain types.
//!
//! Wire types live at the edges (gateway, client); these functions are where incoming data is
//! parsed into validated domain values, returning a [`ConvertError`] that maps to
//! `INVALID_ARGUMENT`.

use std::collections::BTreeMap;

use magpie_types::{Content, ContentType, IdError};

use crate::pb;

/// Why a wire value could not become a domain value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    /// A required field is absent.
    #[error("missing field `{0}`")]
    Missing(&'static str),
    /// An identifier is malformed.
    #[error(transparent)]
    Id(#[from] IdError),
    /// The content type is unknown.
    #[error("unknown content type {0}")]
    UnknownContentType(i32),
    /// Text content that is not UTF-8.
    #[error("text content must be valid UTF-8")]
    TextNotUtf8,
}

/// Parses wire content.
pub fn content_from_pb(c: pb::Content) -> Result<Content, ConvertError> {
    let kind = u32::try_from(c.r#type)
        .ok()
        .and_then(ContentType::from_code)
        .ok_or(ConvertError::UnknownContentType(c.r#type))?;
    if kind == ContentType::Text && std::str::from_utf8(&c.body).is_err() {
        return Err(ConvertError::TextNotUtf8);
    }
    Ok(Content {
        kind,
        body: c.body.to_vec(),
        metadata: c.metadata,
    })
}

/// Builds wire content.
pub fn content_to_pb(c: &Content) -> pb::Content {
    pb::Content {
        r#type: i32::from(c.kind.code()),
        body: bytes::Bytes::copy_from_slice(&c.body),
        metadata: c.metadata.clone(),
    }
}

/// Wire text content, for clients.
pub fn text_content(s: &str) -> pb::Content {
    pb::Content {
        r#type: pb::ContentType::Text as i32,
        body: bytes::Bytes::copy_from_slice(s.as_bytes()),
        metadata: BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_roundtrip_and_refusals() {
        let c = Content::text("héllo");
        assert_eq!(content_from_pb(content_to_pb(&c)).unwrap(), c);
        let mut bad = text_content("x");
        bad.body = bytes::Bytes::from_static(&[0xff, 0xfe]);
        assert_eq!(content_from_pb(bad), Err(ConvertError::TextNotUtf8));
        let mut unknown = text_content("x");
        unknown.r#type = 99;
        assert_eq!(
            content_from_pb(unknown),
            Err(ConvertError::UnknownContentType(99))
        );
    }
}
