//! Problems found while loading a project, each with a file, a line and a field.

use std::fmt;
use std::path::PathBuf;

/// How bad a [`Diagnostic`] is: any error keeps the project from loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in a project folder, printed as
/// `functions/ping.yaml:7: error: trigger.methd: unknown field `methd`, did you mean `method`?`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// The file, relative to the project root; empty for a problem with the folder itself.
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted path of the field, such as `trigger.paths[1]`; empty for the whole file.
    pub field: String,
    pub message: String,
}

impl Diagnostic {
    pub fn error(
        file: impl Into<PathBuf>,
        line: Option<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(Severity::Error, file, line, field, message)
    }

    pub fn warning(
        file: impl Into<PathBuf>,
        line: Option<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self::new(Severity::Warning, file, line, field, message)
    }

    pub fn new(
        severity: Severity,
        file: impl Into<PathBuf>,
        line: Option<usize>,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            severity,
            file: file.into(),
            line,
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.file.as_os_str().is_empty() {
            write!(f, "{}", self.file.display())?;
            if let Some(line) = self.line {
                write!(f, ":{line}")?;
            }
            f.write_str(": ")?;
        }
        f.write_str(match self.severity {
            Severity::Error => "error: ",
            Severity::Warning => "warning: ",
        })?;
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// Sorts by file, then line (problems without a line first); the sort is stable, so problems on
/// one line keep the order they were found in.
pub(crate) fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
}

/// `Some(candidate)` closest to `word` by edit distance, when close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let word = word.to_lowercase();
    let limit = match word.chars().count() {
        0..=3 => 1,
        4..=8 => 2,
        _ => 3,
    };
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word, &c.to_lowercase()), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}

/// `", did you mean `x`?"`, or nothing.
pub(crate) fn hint<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    did_you_mean(word, candidates)
        .map(|c| format!(", did you mean `{c}`?"))
        .unwrap_or_default()
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (diagonal + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(above + 1);
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_forms() {
        let d = Diagnostic::error("functions/ping.yaml", Some(7), "trigger.methd", "unknown");
        assert_eq!(
            d.to_string(),
            "functions/ping.yaml:7: error: trigger.methd: unknown"
        );
        let d = Diagnostic::warning("functions/ping.yaml", None, "", "skipped");
        assert_eq!(d.to_string(), "functions/ping.yaml: warning: skipped");
        let d = Diagnostic::error("", None, "", "no folder");
        assert_eq!(d.to_string(), "error: no folder");
    }

    #[test]
    fn distance_and_hints() {
        assert_eq!(edit_distance("methd", "method"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(did_you_mean("methd", ["paths", "method"]), Some("method"));
        assert_eq!(did_you_mean("Method", ["method"]), Some("method"));
        assert_eq!(did_you_mean("zzzzzz", ["method"]), None);
        assert_eq!(hint("pathes", ["paths"]), ", did you mean `paths`?");
    }

    #[test]
    fn sorting_is_by_file_then_line() {
        let mut v = vec![
            Diagnostic::error("b.yaml", Some(1), "", "3"),
            Diagnostic::error("a.yaml", Some(5), "", "2"),
            Diagnostic::error("a.yaml", None, "", "1"),
        ];
        sort(&mut v);
        let order: Vec<_> = v.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(order, ["1", "2", "3"]);
    }
}
