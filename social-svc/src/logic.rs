//! Pure rules of social-svc.

use crate::error::Error;

/// Longest room name, in characters.
pub const MAX_ROOM_NAME_CHARS: usize = 32;

/// Most search results returned, whatever the caller asks.
pub const MAX_SEARCH_RESULTS: u32 = 50;

/// Search results when the caller does not say.
pub const DEFAULT_SEARCH_RESULTS: u32 = 20;

/// Longest search query, in characters (usernames have at most 8).
pub const MAX_QUERY_CHARS: usize = 32;

/// Checks and normalises a room name: 1 to 32 characters after trimming, no control
/// characters.
pub fn room_name(name: &str) -> Result<String, Error> {
    let name = service_kit::normalize_name(name.trim());
    if name.is_empty() {
        return Err(Error::Invalid("enter a group name"));
    }
    if name.chars().count() > MAX_ROOM_NAME_CHARS {
        return Err(Error::Invalid("a group name has at most 32 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(Error::Invalid(
            "a group name cannot contain control characters",
        ));
    }
    if name.chars().any(invisible) {
        return Err(Error::Invalid(
            "a group name cannot contain invisible characters (direction overrides, zero-width \
             characters or byte-order marks)",
        ));
    }
    Ok(name)
}

/// Characters that change how a name reads without showing: bidirectional embeddings,
/// overrides and isolates, zero-width characters, the word joiner and the byte-order mark.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}' | '\u{FEFF}'
    )
}

/// The `LIKE` pattern matching keys that start with `prefix`, with `\` escaping `%`, `_` and
/// itself, so a query is taken literally on both SQLite and PostgreSQL.
pub fn prefix_pattern(prefix: &str) -> String {
    let mut pattern = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push('%');
    pattern
}

/// How many results a search returns for the caller's `limit` (0 = the default).
pub fn search_limit(limit: u32) -> u64 {
    u64::from(match limit {
        0 => DEFAULT_SEARCH_RESULTS,
        n => n.min(MAX_SEARCH_RESULTS),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names() {
        assert_eq!(room_name("  学习小组  ").unwrap(), "学习小组");
        assert!(room_name("   ").is_err());
        assert!(room_name(&"x".repeat(33)).is_err());
        assert!(room_name("a\u{7}b").is_err());
        for sneaky in [
            "admin\u{202E}",
            "a\u{200B}b",
            "\u{FEFF}club",
            "x\u{2066}y\u{2069}",
        ] {
            assert!(room_name(sneaky).is_err(), "{sneaky:?}");
        }
    }

    #[test]
    fn patterns_escape_wildcards() {
        assert_eq!(prefix_pattern("a_b%c\\"), "a\\_b\\%c\\\\%");
    }

    #[test]
    fn limits() {
        assert_eq!(search_limit(0), 20);
        assert_eq!(search_limit(5), 5);
        assert_eq!(search_limit(1000), 50);
    }
}
