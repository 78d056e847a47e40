//! Message content: a type, a body and optional metadata.

use std::collections::BTreeMap;

/// What a message carries. The server stores and forwards every type alike; the type tells
/// clients how to render the body (for media, the body usually holds a JSON descriptor with
/// the file URL, since files travel over HTTP, never through the message connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContentType {
    /// UTF-8 text.
    Text,
    /// An image reference.
    Image,
    /// A file reference.
    File,
    /// An audio clip reference.
    Audio,
    /// A video reference.
    Video,
    /// A location.
    Location,
    /// Application-defined content.
    Custom,
}

impl ContentType {
    /// Stable numeric code, shared by the wire format and storage.
    pub fn code(self) -> u8 {
        match self {
            Self::Text => 1,
            Self::Image => 2,
            Self::File => 3,
            Self::Audio => 4,
            Self::Video => 5,
            Self::Location => 6,
            Self::Custom => 7,
        }
    }

    /// The type for a numeric code, if it is known.
    pub fn from_code(code: u32) -> Option<Self> {
        Some(match code {
            1 => Self::Text,
            2 => Self::Image,
            3 => Self::File,
            4 => Self::Audio,
            5 => Self::Video,
            6 => Self::Location,
            7 => Self::Custom,
            _ => return None,
        })
    }

    /// Lower-case name, as used in JSON output.
    pub fn name(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Image => "image",
            Self::File => "file",
            Self::Audio => "audio",
            Self::Video => "video",
            Self::Location => "location",
            Self::Custom => "custom",
        }
    }
}

/// The content of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Content {
    /// How to interpret `body`.
    pub kind: ContentType,
    /// The payload; UTF-8 for [`ContentType::Text`].
    pub body: Vec<u8>,
    /// Optional application metadata.
    pub metadata: BTreeMap<String, String>,
}

impl Content {
    /// Text content.
    pub fn text(s: impl Into<String>) -> Self {
        Self {
            kind: ContentType::Text,
            body: s.into().into_bytes(),
            metadata: BTreeMap::new(),
        }
    }

    /// The body as text, for text content that is valid UTF-8.
    pub fn as_text(&self) -> Option<&str> {
        match self.kind {
            ContentType::Text => std::str::from_utf8(&self.body).ok(),
            _ => None,
        }
    }

    /// Bytes this content occupies, counted against the message size limit.
    pub fn size(&self) -> usize {
        self.body.len()
            + self
                .metadata
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_roundtrip() {
        for code in 0..10 {
            if let Some(t) = ContentType::from_code(code) {
                assert_eq!(u32::from(t.code()), code);
            }
        }
        assert_eq!(ContentType::from_code(0), None);
        assert_eq!(Content::text("hi").as_text(), Some("hi"));
    }
}
