//! The per-app content filter: sensitive-word lists, each with an action.
//!
//! Every list is compiled once into an Aho-Corasick automaton, so checking a message costs
//! one pass over its text per list however many words the list holds. Matching works on
//! UTF-8 bytes, so Chinese (or any) text needs no segmentation; ASCII letters match without
//! regard to case. A `reject` list refuses the whole message on any match; a `mask` list
//! replaces each matched character with `*` (one star per character, not per byte, so the
//! masked text keeps its shape).

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use serde::{Deserialize, Serialize};

/// Most lists an app may have.
pub const MAX_LISTS: usize = 16;
/// Most words in one list.
pub const MAX_WORDS: usize = 20_000;
/// Longest word, bytes.
pub const MAX_WORD_BYTES: usize = 128;

/// What a list does to a message that contains one of its words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilterAction {
    /// Refuse the message.
    Reject,
    /// Replace the words with `*`.
    Mask,
}

/// One sensitive-word list, as configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WordList {
    /// The list's name (told to the sender on a rejection, never the word itself).
    pub name: String,
    /// What a match does.
    pub action: FilterAction,
    /// The words.
    pub words: Vec<String>,
}

/// Why a word list was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// Too many lists, words, or a word too long or empty.
    #[error("{0}")]
    Invalid(String),
}

/// What the filter made of a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filtered {
    /// Nothing matched.
    Clean,
    /// Some words were masked: the new text.
    Masked(String),
    /// A reject list matched: its name.
    Rejected(String),
}

/// Compiled word lists.
#[derive(Debug, Clone)]
pub struct WordFilter {
    lists: Vec<(String, FilterAction, AhoCorasick)>,
}

impl WordFilter {
    /// Checks and compiles `lists`; `None` when there is nothing to check.
    pub fn new(lists: &[WordList]) -> Result<Option<Self>, FilterError> {
        validate(lists)?;
        let mut compiled = Vec::new();
        for l in lists {
            let words: Vec<&str> = l.words.iter().map(|w| w.as_str()).collect();
            if words.is_empty() {
                continue;
            }
            let ac = AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::LeftmostLongest)
                .build(&words)
                .map_err(|e| FilterError::Invalid(format!("list {:?}: {e}", l.name)))?;
            compiled.push((l.name.clone(), l.action, ac));
        }
        Ok((!compiled.is_empty()).then_some(Self { lists: compiled }))
    }

    /// Applies every list to `text`: any reject list's match wins; otherwise every mask
    /// list's matches are masked.
    pub fn apply(&self, text: &str) -> Filtered {
        for (name, action, ac) in &self.lists {
            if *action == FilterAction::Reject && ac.is_match(text) {
                return Filtered::Rejected(name.clone());
            }
        }
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for (_, action, ac) in &self.lists {
            if *action == FilterAction::Mask {
                spans.extend(ac.find_iter(text).map(|m| (m.start(), m.end())));
            }
        }
        if spans.is_empty() {
            return Filtered::Clean;
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (start, end) in spans {
            // Overlapping matches from different lists: mask the union.
            let start = start.max(at);
            if end <= start {
                continue;
            }
            out.push_str(&text[at..start]);
            out.extend(std::iter::repeat_n('*', text[start..end].chars().count()));
            at = end;
        }
        out.push_str(&text[at..]);
        Filtered::Masked(out)
    }
}

/// Checks the shape of word lists (sizes, names, empty words).
pub fn validate(lists: &[WordList]) -> Result<(), FilterError> {
    if lists.len() > MAX_LISTS {
        return Err(FilterError::Invalid(format!(
            "at most {MAX_LISTS} word lists"
        )));
    }
    for l in lists {
        if l.name.is_empty() || l.name.len() > 64 {
            return Err(FilterError::Invalid(
                "a word list needs a name of 1 to 64 bytes".into(),
            ));
        }
        if l.words.len() > MAX_WORDS {
            return Err(FilterError::Invalid(format!(
                "list {:?} has more than {MAX_WORDS} words",
                l.name
            )));
        }
        if let Some(w) = l
            .words
            .iter()
            .find(|w| w.trim().is_empty() || w.len() > MAX_WORD_BYTES)
        {
            return Err(FilterError::Invalid(format!(
                "list {:?}: every word must be 1 to {MAX_WORD_BYTES} bytes and not blank (found {} bytes)",
                l.name,
                w.len()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(name: &str, action: FilterAction, words: &[&str]) -> WordList {
        WordList {
            name: name.into(),
            action,
            words: words.iter().map(|w| (*w).to_owned()).collect(),
        }
    }

    fn filter(lists: &[WordList]) -> WordFilter {
        WordFilter::new(lists).expect("valid").expect("non-empty")
    }

    #[test]
    fn masks_chinese_per_character_and_ascii_without_case() {
        let f = filter(&[list("rude", FilterAction::Mask, &["傻瓜", "darn"])]);
        assert_eq!(
            f.apply("你这个傻瓜, DARN it"),
            Filtered::Masked("你这个**, **** it".into())
        );
        assert_eq!(f.apply("hello 朋友"), Filtered::Clean);
    }

    #[test]
    fn reject_wins_over_mask_and_names_the_list() {
        let f = filter(&[
            list("rude", FilterAction::Mask, &["darn"]),
            list("banned", FilterAction::Reject, &["赌博"]),
        ]);
        assert_eq!(f.apply("darn 赌博"), Filtered::Rejected("banned".into()));
        assert_eq!(f.apply("darn"), Filtered::Masked("****".into()));
    }

    #[test]
    fn overlapping_matches_from_two_lists_mask_their_union() {
        let f = filter(&[
            list("a", FilterAction::Mask, &["abc"]),
            list("b", FilterAction::Mask, &["bcd"]),
        ]);
        assert_eq!(f.apply("xabcdy"), Filtered::Masked("x****y".into()));
    }

    #[test]
    fn empty_lists_compile_to_nothing_and_bad_lists_are_refused() {
        assert!(WordFilter::new(&[]).expect("ok").is_none());
        assert!(
            WordFilter::new(&[list("x", FilterAction::Mask, &[])])
                .expect("ok")
                .is_none()
        );
        assert!(WordFilter::new(&[list("x", FilterAction::Mask, &[" "])]).is_err());
        assert!(WordFilter::new(&[list("", FilterAction::Mask, &["a"])]).is_err());
        let many: Vec<WordList> = (0..=MAX_LISTS)
            .map(|i| list(&format!("l{i}"), FilterAction::Mask, &["a"]))
            .collect();
        assert!(WordFilter::new(&many).is_err());
    }
}
