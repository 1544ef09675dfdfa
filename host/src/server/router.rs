//! HTTP routing: method + exact path + Host, as Taubyte matches functions.

use crate::load::Route as Trigger;
use std::collections::HashMap;

/// What a request resolves to.
#[derive(Debug, PartialEq, Eq)]
pub enum RouteMatch {
    /// The index of the function to run.
    Found(usize),
    /// The path is served, but not for this method: these are.
    MethodNotAllowed(Vec<String>),
    NotFound,
}

#[derive(Debug, Clone)]
struct Route {
    method: String,
    /// Lower-case host without port; `None` matches any host.
    host: Option<String>,
    target: usize,
}

/// Routes by exact path first (one hash lookup), then host, then method.
#[derive(Debug, Default)]
pub struct Router {
    by_path: HashMap<String, Vec<Route>>,
}

impl Router {
    /// A router serving every HTTP trigger of a loaded project.
    pub fn new(triggers: &[Trigger]) -> Self {
        let mut router = Router::default();
        for t in triggers {
            router.add(&t.method, &t.path, &t.hosts, t.function);
        }
        router
    }

    /// Serves `method path` with function `target` on `hosts` (empty: any host).
    pub fn add(&mut self, method: &str, path: &str, hosts: &[String], target: usize) {
        let routes = self.by_path.entry(path.to_owned()).or_default();
        let method = method.to_ascii_uppercase();
        if hosts.is_empty() {
            routes.push(Route {
                method: method.clone(),
                host: None,
                target,
            });
        }
        for host in hosts {
            routes.push(Route {
                method: method.clone(),
                host: Some(host.to_ascii_lowercase()),
                target,
            });
        }
    }

    /// Resolves a request. `host` is the Host header as received (port allowed).
    /// Nothing is allocated unless the method is not allowed: this runs on every
    /// request.
    pub fn find(&self, method: &str, host: &str, path: &str) -> RouteMatch {
        let Some(routes) = self.by_path.get(path) else {
            return RouteMatch::NotFound;
        };
        let host = host_name(host);
        // Routes bound to this host win over routes for any host.
        let bound = |r: &&Route| {
            r.host
                .as_deref()
                .is_some_and(|h| h.eq_ignore_ascii_case(host))
        };
        let any_bound = routes.iter().any(|r| bound(&r));
        let candidates = |r: &&Route| {
            if any_bound {
                bound(r)
            } else {
                r.host.is_none()
            }
        };
        let by_method = |m: &str| routes.iter().filter(candidates).find(|r| r.method == m);
        if let Some(route) =
            by_method(method).or_else(|| (method == "HEAD").then(|| by_method("GET")).flatten())
        {
            return RouteMatch::Found(route.target);
        }
        let mut allow: Vec<String> = routes
            .iter()
            .filter(candidates)
            .map(|r| r.method.clone())
            .collect();
        if allow.is_empty() {
            return RouteMatch::NotFound;
        }
        allow.sort();
        allow.dedup();
        RouteMatch::MethodNotAllowed(allow)
    }

    /// Every route, for the start-up banner: (method, path, host, target).
    pub fn routes(&self) -> Vec<(String, String, Option<String>, usize)> {
        let mut all: Vec<_> = self
            .by_path
            .iter()
            .flat_map(|(path, routes)| {
                routes
                    .iter()
                    .map(move |r| (r.method.clone(), path.clone(), r.host.clone(), r.target))
            })
            .collect();
        all.sort();
        all
    }
}

/// `Example.COM:8080` → `Example.COM`; `[::1]:80` → `[::1]`: the name, compared
/// case-insensitively with the routes' lower-case hosts.
fn host_name(host: &str) -> &str {
    let host = if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or(host)
    } else {
        host.rsplit_once(':').map_or(host, |(name, _port)| name)
    };
    host.trim_end_matches('.')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        let mut r = Router::default();
        r.add("get", "/ping", &[], 0);
        r.add("POST", "/echo", &[], 1);
        r.add("GET", "/site", &["example.com".into()], 2);
        r.add("GET", "/site", &[], 3);
        r
    }

    #[test]
    fn matches_method_and_exact_path() {
        let r = router();
        assert_eq!(
            r.find("GET", "localhost:8080", "/ping"),
            RouteMatch::Found(0)
        );
        assert_eq!(r.find("HEAD", "localhost", "/ping"), RouteMatch::Found(0));
        assert_eq!(r.find("GET", "localhost", "/ping/"), RouteMatch::NotFound);
        assert_eq!(r.find("GET", "localhost", "/nope"), RouteMatch::NotFound);
    }

    #[test]
    fn wrong_method_lists_the_allowed_ones() {
        let r = router();
        assert_eq!(
            r.find("GET", "localhost", "/echo"),
            RouteMatch::MethodNotAllowed(vec!["POST".into()])
        );
    }

    #[test]
    fn host_bound_routes_win_and_ignore_port_and_case() {
        let r = router();
        assert_eq!(
            r.find("GET", "Example.COM:9000", "/site"),
            RouteMatch::Found(2)
        );
        assert_eq!(r.find("GET", "other.org", "/site"), RouteMatch::Found(3));
        assert_eq!(host_name("[::1]:80"), "[::1]");
        assert_eq!(host_name("example.com."), "example.com");
    }

    #[test]
    fn a_path_served_only_for_other_hosts_is_not_found() {
        let mut r = Router::default();
        r.add("GET", "/only", &["example.com".into()], 0);
        assert_eq!(r.find("GET", "other.org", "/only"), RouteMatch::NotFound);
        assert_eq!(
            r.find("POST", "example.com", "/only"),
            RouteMatch::MethodNotAllowed(vec!["GET".into()])
        );
    }
}
