//! Maps a key path such as `trigger.paths[1]` to its line in the YAML source.
//!
//! `serde_yaml::Value` keeps no positions, so this scans the text of block-style YAML by
//! indentation: `key:` lines and `- ` sequence items become a small tree. Anything it does not
//! understand (flow style `[a, b]`, multi-line scalars) simply has no children, so a lookup falls
//! back to the nearest parent that it did find.

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// Renders a path as `trigger.paths[1]`.
pub(crate) fn dotted(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if out.is_empty() => out.push_str(k),
            Seg::Key(k) => {
                out.push('.');
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

struct Node {
    line: usize,
    /// `None` for a sequence item.
    key: Option<String>,
    children: Vec<usize>,
}

struct Open {
    indent: usize,
    node: usize,
    /// A key whose value starts on the next line (`paths:`), which may hold items at its own
    /// indentation.
    block_key: bool,
}

pub(crate) struct Locator {
    nodes: Vec<Node>,
}

impl Locator {
    pub(crate) fn new(source: &str) -> Self {
        let mut this = Locator {
            nodes: vec![Node {
                line: 0,
                key: None,
                children: Vec::new(),
            }],
        };
        let mut stack: Vec<Open> = Vec::new();
        // Indentation of the key that owns a `|` or `>` block scalar being skipped.
        let mut block_scalar: Option<usize> = None;
        for (index, raw) in source.lines().enumerate() {
            let line = index + 1;
            let indent = raw.len() - raw.trim_start_matches(' ').len();
            let content = raw[indent..].trim_end();
            if let Some(owner) = block_scalar {
                if content.is_empty() || indent > owner {
                    continue;
                }
                block_scalar = None;
            }
            if content.is_empty() || content.starts_with('#') || is_marker(content) {
                continue;
            }
            let (mut col, mut rest) = (indent, content);
            loop {
                if rest == "-" || rest.starts_with("- ") {
                    this.push(&mut stack, line, col, None, false);
                    let item_col = col;
                    let after = rest[1..].trim_start_matches(' ');
                    col += rest.len() - after.len();
                    rest = after;
                    if rest.starts_with(['|', '>']) {
                        block_scalar = Some(item_col);
                        break;
                    }
                    if rest.is_empty() || rest.starts_with('#') {
                        break;
                    }
                } else if let Some((key, value)) = split_key(rest) {
                    let value = strip_comment(value);
                    let block_key = value.is_empty() || value.starts_with(['&', '!']);
                    if value.starts_with(['|', '>']) {
                        block_scalar = Some(col);
                    }
                    this.push(&mut stack, line, col, Some(key), block_key);
                    break;
                } else {
                    break;
                }
            }
        }
        this
    }

    fn push(
        &mut self,
        stack: &mut Vec<Open>,
        line: usize,
        indent: usize,
        key: Option<String>,
        block_key: bool,
    ) {
        let is_item = key.is_none();
        while let Some(top) = stack.last() {
            let items_under_key = is_item && top.indent == indent && top.block_key;
            if top.indent < indent || items_under_key {
                break;
            }
            stack.pop();
        }
        let parent = stack.last().map_or(0, |open| open.node);
        let node = self.nodes.len();
        self.nodes.push(Node {
            line,
            key,
            children: Vec::new(),
        });
        self.nodes[parent].children.push(node);
        stack.push(Open {
            indent,
            node,
            block_key,
        });
    }

    /// The 1-based line of `path`, or of its deepest prefix found; `None` if not even the first
    /// step is found.
    pub(crate) fn line(&self, path: &[Seg]) -> Option<usize> {
        let mut node = 0;
        let mut best = None;
        for seg in path {
            let children = self.nodes[node].children.iter().copied();
            let found = match seg {
                Seg::Key(k) => children
                    .into_iter()
                    .find(|&c| self.nodes[c].key.as_deref() == Some(k.as_str())),
                Seg::Index(i) => children
                    .into_iter()
                    .filter(|&c| self.nodes[c].key.is_none())
                    .nth(*i),
            };
            match found {
                Some(child) => {
                    node = child;
                    best = Some(self.nodes[child].line);
                }
                None => break,
            }
        }
        best
    }
}

fn is_marker(content: &str) -> bool {
    ["---", "..."]
        .iter()
        .any(|m| content == *m || content.starts_with(&format!("{m} ")))
}

/// Splits `key: value` (plain, single- or double-quoted key); `None` if the text is not a key.
fn split_key(text: &str) -> Option<(String, &str)> {
    let (key, after) = if let Some(body) = text.strip_prefix('"') {
        let mut escaped = false;
        let end = body.char_indices().find_map(|(i, c)| match c {
            _ if escaped => {
                escaped = false;
                None
            }
            '\\' => {
                escaped = true;
                None
            }
            '"' => Some(i),
            _ => None,
        })?;
        (body[..end].replace("\\\"", "\""), &body[end + 1..])
    } else if let Some(body) = text.strip_prefix('\'') {
        let mut i = 0;
        let bytes = body.as_bytes();
        loop {
            match bytes.get(i) {
                None => return None,
                Some(b'\'') if bytes.get(i + 1) == Some(&b'\'') => i += 2,
                Some(b'\'') => break,
                Some(_) => i += 1,
            }
        }
        (body[..i].replace("''", "'"), &body[i + 1..])
    } else {
        if text.starts_with(['{', '[', '?', '#', '&', '*', '!', '|', '>']) {
            return None;
        }
        let comment = text.find(" #").unwrap_or(text.len());
        let colon = text[..comment]
            .match_indices(':')
            .map(|(i, _)| i)
            .find(|&i| matches!(text[i + 1..].chars().next(), None | Some(' ' | '\t')))?;
        (text[..colon].trim_end().to_string(), &text[colon..])
    };
    let after = after.trim_start_matches(' ').strip_prefix(':')?;
    if !(after.is_empty() || after.starts_with([' ', '\t'])) {
        return None;
    }
    Some((key, after.trim()))
}

/// Drops a trailing ` # comment` from a plain value.
fn strip_comment(value: &str) -> &str {
    if value.starts_with('#') {
        return "";
    }
    if value.starts_with(['"', '\'']) {
        return value;
    }
    match value.find(" #") {
        Some(i) => value[..i].trim_end(),
        None => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(spec: &str) -> Vec<Seg> {
        spec.split('.')
            .map(|s| match s.parse() {
                Ok(i) => Seg::Index(i),
                Err(_) => Seg::Key(s.to_string()),
            })
            .collect()
    }

    const SOURCE: &str = r#"# a function
id: ""

description: |
  text with key: value
  trigger: not a key
"trigger":   # comment
  type: https
  'method': GET
  paths:
  - /one   # first
  - /two
  domains: [a, b]
execution:
  call: ping
list:
  - name: a
    deep:
      - x
      - y
  -
    name: b
  - - nested
  - |
    text: not a key
  - last: item
"#;

    #[test]
    fn finds_keys_and_items() {
        let loc = Locator::new(SOURCE);
        let line = |p: &str| loc.line(&path(p));
        assert_eq!(line("id"), Some(2));
        assert_eq!(line("description"), Some(4));
        assert_eq!(line("trigger"), Some(7));
        assert_eq!(line("trigger.type"), Some(8));
        assert_eq!(line("trigger.method"), Some(9));
        assert_eq!(line("trigger.paths.0"), Some(11));
        assert_eq!(line("trigger.paths.1"), Some(12));
        assert_eq!(line("execution.call"), Some(15));
        assert_eq!(line("list.0.name"), Some(17));
        assert_eq!(line("list.0.deep.1"), Some(20));
        assert_eq!(line("list.1.name"), Some(22));
        assert_eq!(line("list.2.0"), Some(23));
        assert_eq!(line("list.3"), Some(24));
        assert_eq!(line("list.3.text"), Some(24));
        assert_eq!(line("list.4.last"), Some(26));
    }

    #[test]
    fn falls_back_to_the_parent() {
        let loc = Locator::new(SOURCE);
        assert_eq!(loc.line(&path("trigger.domains.1")), Some(13));
        assert_eq!(loc.line(&path("trigger.paths.7")), Some(10));
        assert_eq!(loc.line(&path("execution.memory")), Some(14));
        assert_eq!(loc.line(&path("nothing.here")), None);
        assert_eq!(loc.line(&[]), None);
    }

    #[test]
    fn scalar_text_is_not_a_key() {
        let loc = Locator::new(SOURCE);
        assert_eq!(loc.line(&path("description.trigger")), Some(4));
        assert_eq!(loc.line(&path("trigger")), Some(7));
    }

    #[test]
    fn flow_mappings_and_urls() {
        let loc = Locator::new("a: {b: 1}\nurl: http://x:80/y\nc:\n  d: e\n");
        assert_eq!(loc.line(&path("a.b")), Some(1));
        assert_eq!(loc.line(&path("url")), Some(2));
        assert_eq!(loc.line(&path("c.d")), Some(4));
    }

    #[test]
    fn dotted_paths() {
        assert_eq!(dotted(&path("trigger.paths.1")), "trigger.paths[1]");
        assert_eq!(dotted(&[]), "");
    }
}
