//! From a project folder to something to serve: YAML checks, then wasm checks.
//!
//! `wisp check` and `wisp serve` share this path, so `serve` refuses to start with
//! exactly the messages `check` prints.

use crate::messaging::scope::Scopes;
use crate::project::cors::{Cors, FunctionCors};
use crate::project::{self, Diagnostic, Function, Project, Severity, Trigger};
use crate::runtime::cache::ModuleCache;
use crate::runtime::deployment::{Deployment, InvocationLimits};
use crate::runtime::engine::EngineSettings;
use crate::runtime::function::{FunctionSpec, GuestFunction};
use crate::runtime::Runtime;
use std::path::Path;
use std::sync::Arc;

/// The path of Wisp's health endpoint, which no function route can take.
pub const HEALTH_PATH: &str = "/_wisp/health";

/// The path of Wisp's JavaScript client for channels, which no function route can take.
pub const CLIENT_JS_PATH: &str = "/_wisp/client.js";

/// How to run what is loaded.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Concurrent invocations (also the engine's instance pool size) and queueing.
    pub invocations: InvocationLimits,
    pub cache: ModuleCache,
}

/// A project with every servable function compiled and linked.
pub struct Loaded {
    pub project: Project,
    pub deployment: Deployment,
    pub scopes: Scopes,
    /// HTTP triggers, for the server's router.
    pub routes: Vec<Route>,
    /// Pub/sub triggers to subscribe at start.
    pub triggers: Vec<PubSubTrigger>,
    /// Each deployed function's own egress allow list (`wisp.egress`), by index.
    pub egress: Vec<Vec<crate::project::egress::Allow>>,
    /// What each deployed HTTP function allows other origins (`wisp.cors`, its own or
    /// the project's), by index; `None`: nothing.
    pub cors: Vec<Option<Arc<Cors>>>,
    /// Warnings (errors stop loading).
    pub warnings: Vec<Diagnostic>,
}

/// One HTTP trigger path: `method path` on `hosts` (empty: any host) runs `function`.
#[derive(Clone, Debug)]
pub struct Route {
    pub method: String,
    pub path: String,
    pub hosts: Vec<String>,
    /// The function's index in the deployment.
    pub function: usize,
}

/// A pub/sub function's trigger.
#[derive(Clone, Debug)]
pub struct PubSubTrigger {
    /// The function's index in the deployment.
    pub function: usize,
    pub channel: String,
    /// `trigger.local: true`: the function takes only messages published on its node.
    pub local: bool,
    /// `wisp.presence-events`: the function takes the channel's joins and leaves instead.
    pub presence_events: bool,
}

/// Every problem found, errors and warnings, in file order.
#[derive(Debug)]
pub struct Problems(pub Vec<Diagnostic>);

impl std::fmt::Display for Problems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        let errors = self
            .0
            .iter()
            .filter(|d| matches!(d.severity, Severity::Error))
            .count();
        write!(f, "{errors} error{}", if errors == 1 { "" } else { "s" })
    }
}

impl std::error::Error for Problems {}

/// Loads and checks `root`. Problems of any kind, YAML or wasm, come back together
/// as one [`Problems`] error; other errors (the engine failed to start) are separate.
pub fn load(root: &Path, options: &LoadOptions) -> anyhow::Result<Loaded> {
    let loaded = project::load(root);
    let mut diagnostics = loaded.diagnostics;
    let Some(project) = loaded.project else {
        return Err(Problems(diagnostics).into());
    };
    let settings = EngineSettings {
        max_instances: u32::try_from(options.invocations.concurrent).unwrap_or(u32::MAX),
    };
    let runtime = Runtime::new(&settings, options.cache.clone())?;
    let scopes = Scopes::from_project(&project);

    let mut functions = Vec::new();
    let mut routes = Vec::new();
    let mut triggers = Vec::new();
    let mut egress = Vec::new();
    let mut cors = Vec::new();
    // Functions that take the project's settings share them.
    let project_cors = project.cors.clone().map(Arc::new);
    for function in &project.functions {
        if matches!(function.trigger, Trigger::P2p { .. }) {
            continue; // the loader already warned
        }
        let scope = scopes.index_of(function.application.as_deref());
        if let Trigger::PubSub {
            channel,
            presence_events,
            ..
        } = &function.trigger
        {
            if let Err(error) = scopes.get(scope).check(channel, false) {
                diagnostics.push(Diagnostic::error(
                    function.file.clone(),
                    None,
                    "trigger.channel",
                    format!("{error}: add a messaging resource for it, or the function never runs"),
                ));
                continue;
            }
            if *presence_events && !scopes.get(scope).presence(channel) {
                diagnostics.push(Diagnostic::error(
                    function.file.clone(),
                    None,
                    "wisp.presence-events",
                    format!("channel `{channel}` keeps no presence: give its messaging resource `wisp: {{presence: true}}`"),
                ));
                continue;
            }
        }
        let guest = match load_function(&project, function, &runtime) {
            Ok(guest) => guest,
            Err(diagnostic) => {
                diagnostics.push(diagnostic);
                continue;
            }
        };
        if !guest.stubbed.is_empty() {
            let calls: Vec<String> = guest.stubbed.iter().map(|c| format!("`{c}`")).collect();
            diagnostics.push(Diagnostic::warning(
                function.file.clone(),
                None,
                "source",
                format!(
                    "the module imports {}, which Wisp does not provide: it loads, and \
                     calling one traps",
                    calls.join(", ")
                ),
            ));
        }
        let index = functions.len();
        let owner = (
            Arc::from(function.application.as_deref().unwrap_or_default()),
            Arc::from(function.name.as_str()),
        );
        functions.push((Arc::new(guest), scope, owner));
        egress.push(function.egress.clone());
        cors.push(match (&function.cors, &function.trigger) {
            (_, Trigger::PubSub { .. } | Trigger::P2p { .. }) => None,
            (FunctionCors::Project, _) => project_cors.clone(),
            (FunctionCors::Off, _) => None,
            (FunctionCors::Own(own), _) => Some(Arc::new(own.clone())),
        });
        match &function.trigger {
            Trigger::Http {
                method,
                paths,
                hosts,
                ..
            } => {
                for (i, path) in paths.iter().enumerate() {
                    if path == HEALTH_PATH || path == CLIENT_JS_PATH {
                        diagnostics.push(Diagnostic::warning(
                            function.file.clone(),
                            None,
                            format!("trigger.paths[{i}]"),
                            format!("Wisp serves {path} itself; this function never gets it"),
                        ));
                    }
                    routes.push(Route {
                        method: method.clone(),
                        path: path.clone(),
                        hosts: hosts.clone(),
                        function: index,
                    });
                }
            }
            Trigger::PubSub {
                channel,
                local,
                presence_events,
            } => triggers.push(PubSubTrigger {
                function: index,
                channel: channel.clone(),
                local: *local,
                presence_events: *presence_events,
            }),
            Trigger::P2p { .. } => {}
        }
    }
    diagnostics.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
    if diagnostics
        .iter()
        .any(|d| matches!(d.severity, Severity::Error))
    {
        return Err(Problems(diagnostics).into());
    }
    Ok(Loaded {
        project,
        deployment: Deployment::new(runtime, functions, options.invocations),
        scopes,
        routes,
        triggers,
        egress,
        cors,
        warnings: diagnostics,
    })
}

fn load_function(
    project: &Project,
    function: &Function,
    runtime: &Runtime,
) -> Result<GuestFunction, Diagnostic> {
    let shown = function
        .wasm
        .strip_prefix(&project.root)
        .unwrap_or(&function.wasm)
        .display()
        .to_string();
    let spec = FunctionSpec {
        name: &function.name,
        call: &function.call,
        timeout: function.timeout,
        memory_limit: function.memory,
    };
    runtime
        .load_function(&function.wasm, &shown, &spec)
        .map_err(|problem| {
            let line = match problem.field {
                "execution.call" => function.call_line,
                "execution.memory" => function.memory_line,
                _ => None,
            };
            Diagnostic::error(function.file.clone(), line, problem.field, problem.message)
        })
}
