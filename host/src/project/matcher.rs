//! Channel matchers: which channel names a messaging resource covers.

use regex::Regex;

/// How a messaging resource's `match`/`matcher` string selects channels.
///
/// - `Exact`: the channel name equals the string (`/ws/chan`).
/// - `Wildcard`: not a regex and contains `*`; each `*` matches any run of characters except
///   `/`, so `/notifications/*` covers `/notifications/alice` but not `/notifications/a/b`.
/// - `Regex`: the whole channel name must match (`/chat/[^/]+`).
#[derive(Debug, Clone)]
pub enum ChannelMatcher {
    Exact(String),
    Wildcard { pattern: String, regex: Regex },
    Regex { pattern: String, regex: Regex },
}

/// Characters that make a short-form `matcher` a regex when `regex:` is not given.
const REGEX_MARKERS: &[char] = &['[', ']', '(', ')', '{', '}', '+', '?', '^', '$', '|', '\\'];

impl ChannelMatcher {
    /// Builds the matcher for `pattern`; `regex` is the `regex:` setting, `None` when not given,
    /// in which case a pattern holding any of `[ ] ( ) { } + ? ^ $ | \` is taken as a regex.
    pub fn new(pattern: &str, regex: Option<bool>) -> Result<Self, String> {
        let is_regex = regex.unwrap_or_else(|| pattern.contains(REGEX_MARKERS));
        if is_regex {
            // Compiled alone first so that the error text refers to what the user wrote.
            Regex::new(pattern)
                .map_err(|e| format!("invalid regex `{pattern}`: {}", regex_error(&e)))?;
            let regex = Regex::new(&format!("^(?:{pattern})$"))
                .map_err(|e| format!("invalid regex `{pattern}`: {}", regex_error(&e)))?;
            Ok(ChannelMatcher::Regex {
                pattern: pattern.to_string(),
                regex,
            })
        } else if pattern.contains('*') {
            let body: Vec<String> = pattern.split('*').map(regex::escape).collect();
            let regex = Regex::new(&format!("^{}$", body.join("[^/]*")))
                .map_err(|e| format!("invalid wildcard `{pattern}`: {}", regex_error(&e)))?;
            Ok(ChannelMatcher::Wildcard {
                pattern: pattern.to_string(),
                regex,
            })
        } else {
            Ok(ChannelMatcher::Exact(pattern.to_string()))
        }
    }

    pub fn matches(&self, channel: &str) -> bool {
        match self {
            ChannelMatcher::Exact(name) => name == channel,
            ChannelMatcher::Wildcard { regex, .. } | ChannelMatcher::Regex { regex, .. } => {
                regex.is_match(channel)
            }
        }
    }

    /// The string as written in the YAML file.
    pub fn pattern(&self) -> &str {
        match self {
            ChannelMatcher::Exact(pattern)
            | ChannelMatcher::Wildcard { pattern, .. }
            | ChannelMatcher::Regex { pattern, .. } => pattern,
        }
    }

    /// `exact`, `wildcard` or `regex`.
    pub fn style(&self) -> &'static str {
        match self {
            ChannelMatcher::Exact(_) => "exact",
            ChannelMatcher::Wildcard { .. } => "wildcard",
            ChannelMatcher::Regex { .. } => "regex",
        }
    }
}

/// The one-line reason from a regex error, whose text spans several lines with a caret.
fn regex_error(error: &regex::Error) -> String {
    let text = error.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or_else(|| text.lines().last().unwrap_or_default())
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact() {
        let m = ChannelMatcher::new("/ws/chan", None).unwrap();
        assert_eq!(m.style(), "exact");
        assert!(m.matches("/ws/chan"));
        assert!(!m.matches("/ws/chan2"));
        assert!(!m.matches("/ws"));
        // `.` alone does not make a regex.
        let m = ChannelMatcher::new("a.b", None).unwrap();
        assert!(m.matches("a.b") && !m.matches("axb"));
    }

    #[test]
    fn wildcard() {
        let m = ChannelMatcher::new("/notifications/*", None).unwrap();
        assert_eq!(m.style(), "wildcard");
        assert!(m.matches("/notifications/alice"));
        assert!(m.matches("/notifications/"));
        assert!(!m.matches("/notifications/a/b"));
        assert!(!m.matches("/other/alice"));
        let m = ChannelMatcher::new("notifications-*", Some(false)).unwrap();
        assert!(m.matches("notifications-42"));
        assert!(!m.matches("xnotifications-42"));
        let m = ChannelMatcher::new("a.*.c", None).unwrap();
        assert!(m.matches("a.b.c") && !m.matches("aXbXc"));
    }

    #[test]
    fn regex_detected_or_forced() {
        let m = ChannelMatcher::new("/chat/[^/]+", None).unwrap();
        assert_eq!(m.style(), "regex");
        assert!(m.matches("/chat/room"));
        assert!(!m.matches("/chat/room/x"));
        assert!(!m.matches("x/chat/room"));
        let m = ChannelMatcher::new("notifications/.*", Some(true)).unwrap();
        assert!(m.matches("notifications/a/b"));
        assert!(!m.matches("other"));
        // Alternation is anchored as a whole.
        let m = ChannelMatcher::new("a|b", None).unwrap();
        assert!(m.matches("a") && m.matches("b") && !m.matches("ab"));
        // `regex: false` keeps regex characters literal.
        let m = ChannelMatcher::new("/x/(y)", Some(false)).unwrap();
        assert!(m.matches("/x/(y)"));
        assert_eq!(m.pattern(), "/x/(y)");
    }

    #[test]
    fn invalid_regex() {
        let err = ChannelMatcher::new("/chat/[^/+", None).unwrap_err();
        assert_eq!(err, "invalid regex `/chat/[^/+`: unclosed character class");
    }
}
