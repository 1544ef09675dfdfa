//! Checks across files: domain names that functions use, and routes served twice.

use std::collections::BTreeMap;

use super::diagnostics::{hint, Diagnostic};
use super::domain::Domain;
use super::function::{Function, Parsed, Trigger};

/// Resolves each function's domain names to host names: a function may use the domains of its
/// own application and those of the project.
pub(crate) fn resolve_domains(
    functions: &mut [Parsed],
    domains: &[Domain],
    diagnostics: &mut Vec<Diagnostic>,
) {
    for parsed in functions {
        let visible: Vec<&Domain> = domains
            .iter()
            .filter(|d| d.application.is_none() || d.application == parsed.application)
            .collect();
        let mut fqdns = Vec::new();
        for reference in &parsed.domains {
            // The application's own domain wins over a project domain of the same name.
            let found = visible
                .iter()
                .filter(|d| d.name == reference.name)
                .max_by_key(|d| d.application.is_some());
            if let Some(domain) = found {
                if !fqdns.contains(&domain.fqdn) {
                    fqdns.push(domain.fqdn.clone());
                }
                continue;
            }
            let elsewhere = domains
                .iter()
                .find(|d| d.name == reference.name)
                .and_then(|d| d.application.as_deref());
            let name = &reference.name;
            let message = match elsewhere {
                Some(app) => format!(
                    "domain `{name}` belongs to application `{app}`: a function can use the \
                     domains of its own application and of the project"
                ),
                None => {
                    let hint = hint(name, visible.iter().map(|d| d.name.as_str()));
                    format!("unknown domain `{name}`{hint}")
                }
            };
            let (file, line, field) = (&parsed.file, reference.line, &reference.field);
            diagnostics.push(Diagnostic::error(file, line, field, message));
        }
        if let Some(Function {
            trigger: Trigger::Http { hosts, .. },
            ..
        }) = &mut parsed.function
        {
            *hosts = fqdns;
        }
    }
}

/// Method, path and host (`None` for any host).
type Route<'a> = (&'a str, &'a str, Option<&'a str>);

/// Reports every http route (method, path, host) that two or more functions serve, once in
/// each of their files. A function without domains serves its paths on any host, which is a
/// host of its own for this check.
pub(crate) fn duplicate_routes(functions: &[Parsed], diagnostics: &mut Vec<Diagnostic>) {
    let mut routes: BTreeMap<Route, Vec<(usize, usize)>> = BTreeMap::new();
    let usable = |f: usize| functions[f].function.as_ref();
    for (f, parsed) in functions.iter().enumerate() {
        let Some(Function {
            trigger:
                Trigger::Http {
                    method,
                    paths,
                    hosts,
                    ..
                },
            ..
        }) = &parsed.function
        else {
            continue;
        };
        let hosts: Vec<Option<&str>> = if hosts.is_empty() {
            vec![None]
        } else {
            hosts.iter().map(|h| Some(h.as_str())).collect()
        };
        for (p, path) in paths.iter().enumerate() {
            for &host in &hosts {
                // Function index and path index of each function serving the route.
                let users = routes.entry((method, path, host)).or_default();
                // A path listed twice in one function was reported as such.
                if !users.iter().any(|&(other, _)| other == f) {
                    users.push((f, p));
                }
            }
        }
    }
    for ((method, path, host), users) in routes {
        if users.len() < 2 {
            continue;
        }
        let on = host.map_or("any host".to_string(), |h| format!("host {h}"));
        for &(f, p) in &users {
            let others: Vec<String> = users
                .iter()
                .filter(|&&(other, _)| other != f)
                .filter_map(|&(other, _)| usable(other))
                .map(|other| format!("function `{}` ({})", other.name, other.file.display()))
                .collect();
            let parsed = &functions[f];
            diagnostics.push(Diagnostic::error(
                &parsed.file,
                parsed.path_lines.get(p).copied().flatten(),
                format!("trigger.paths[{p}]"),
                format!(
                    "route {method} {path} on {on} is also served by {}",
                    others.join(", ")
                ),
            ));
        }
    }
}
