//! HTTP routing: method + exact path + Host, as Taubyte matches functions.

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
    pub fn find(&self, method: &str, host: &str, path: &str) -> RouteMatch {
        let Some(routes) = self.by_path.get(path) else {
            return RouteMatch::NotFound;
        };
        let host = normalize_host(host);
        // Routes bound to this host win over routes for any host.
        let for_host: Vec<&Route> = routes
            .iter()
            .filter(|r| r.host.as_deref() == Some(host.as_str()))
            .collect();
        let candidates = if for_host.is_empty() {
            routes.iter().filter(|r| r.host.is_none()).collect()
        } else {
            for_host
        };
        if candidates.is_empty() {
            return RouteMatch::NotFound;
        }
        let by_method = |m: &str| candidates.iter().find(|r| r.method == m);
        if let Some(route) =
            by_method(method).or_else(|| (method == "HEAD").then(|| by_method("GET")).flatten())
        {
            return RouteMatch::Found(route.target);
        }
        let mut allow: Vec<String> = candidates.iter().map(|r| r.method.clone()).collect();
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

/// `Example.COM:8080` → `example.com`; `[::1]:80` → `[::1]`.
fn normalize_host(host: &str) -> String {
    let host = if host.starts_with('[') {
        host.split_inclusive(']').next().unwrap_or(host)
    } else {
        host.rsplit_once(':').map_or(host, |(name, _port)| name)
    };
    host.trim_end_matches('.').to_ascii_lowercase()
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
        assert_eq!(normalize_host("[::1]:80"), "[::1]");
    }
}
