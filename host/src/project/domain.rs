//! `domains/*.yaml`: a name for a host (`fqdn`) that functions refer to.

use std::path::PathBuf;

use super::yaml::Map;

/// A domain resource; functions list it by `name` to be served only for that Host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    pub name: String,
    pub application: Option<String>,
    /// Relative to the project root.
    pub file: PathBuf,
    /// Lower-case host name, such as `api.example.com`.
    pub fqdn: String,
}

/// Reads a domain file; `None` when it has no usable `fqdn`.
pub(crate) fn parse(
    top: Map,
    name: &str,
    application: Option<&str>,
    file: PathBuf,
) -> Option<Domain> {
    top.string("id");
    top.string("description");
    top.strings("tags");
    top.strings("smartops");
    let certificate = top.section("certificate");
    for key in ["type", "cert", "key"] {
        certificate.string(key);
    }
    certificate.finish();
    let fqdn = top
        .required_string("fqdn", " (the host name, such as `api.example.com`)")
        .map(|f| f.trim().trim_end_matches('.').to_ascii_lowercase());
    let fqdn = match fqdn {
        Some(fqdn) if valid_fqdn(&fqdn) => Some(fqdn),
        Some(fqdn) => {
            top.error("fqdn", format!("`{fqdn}` is not a valid host name"));
            None
        }
        None => None,
    };
    top.finish();
    Some(Domain {
        name: name.to_string(),
        application: application.map(str::to_string),
        file,
        fqdn: fqdn?,
    })
}

/// Dot-separated labels of letters, digits, `_` and inner hyphens.
fn valid_fqdn(fqdn: &str) -> bool {
    fqdn.len() <= 253
        && fqdn.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names() {
        assert!(valid_fqdn("example.com"));
        assert!(valid_fqdn("localhost"));
        assert!(!valid_fqdn("*.example.com"));
        assert!(valid_fqdn("a-b.x1.io"));
        assert!(!valid_fqdn("-a.com"));
        assert!(!valid_fqdn("a..com"));
        assert!(!valid_fqdn("http://a.com"));
        assert!(!valid_fqdn(""));
    }
}
