//! `wisp serve --settings FILE` (once `--config FILE`, still accepted): a deployment's
//! settings kept in one YAML file.
//!
//! The keys are `serve`'s own long option names without the dashes (`listen`,
//! `cluster`, `node-id`, `max-request-body`, ...) and `project` for the folder; the
//! values are written as on the command line (`8MiB`, `10s`), a list where a flag may
//! be repeated (`cluster: [nats://a:4222, nats://b:4222]`), `true`/`false` for a switch.
//!
//! A setting becomes an argument (`--listen=127.0.0.1:9000`) ahead of the command
//! line's own, and only where the command line and the environment left the default.
//! So a flag beats its environment variable, which beats the file, which beats the
//! default. Every value, used or not, goes through its flag's own parser, so a bad one
//! is reported as a bad flag would be, with the file and the key.

use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Command};
use serde_yaml::Value;
use std::path::PathBuf;

/// The `serve` option that names the settings file.
pub const OPTION: &str = "settings";

/// The arguments the file named by `--settings` adds to `serve`'s command line (none
/// without `--settings`), given the command and what the command line and environment
/// set. An error names the file, and the key or line.
pub fn arguments(serve: &Command, matches: &ArgMatches) -> Result<Vec<String>, String> {
    let Some(path) = matches.get_one::<PathBuf>(OPTION) else {
        return Ok(Vec::new());
    };
    let file = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|error| format!("cannot read the settings file {file}: {error}"))?;
    let settings = match serde_yaml::from_str(&text) {
        Ok(Value::Mapping(settings)) => settings,
        Ok(Value::Null) => return Ok(Vec::new()),
        Ok(_) => return Err(format!("{file}: expected `key: value` lines")),
        Err(error) => return Err(format!("{file}: not valid YAML: {error}")),
    };
    let mut arguments = Vec::new();
    for (key, value) in &settings {
        let Some(key) = key.as_str() else {
            return Err(format!(
                "{file}: a setting's name must be text, not {key:?}"
            ));
        };
        let Some(arg) = settable(serve).find(|arg| name(arg) == key) else {
            let valid: Vec<&str> = settable(serve).map(name).collect();
            return Err(format!(
                "{file}: unknown setting `{key}`; the settings are: {}",
                valid.join(", ")
            ));
        };
        let given = tokens(arg, value).map_err(|why| format!("{file}: `{key}` {why}"))?;
        for (token, text) in &given {
            check(serve, token)
                .map_err(|why| format!("{file}: invalid value '{text}' for `{key}`: {why}"))?;
        }
        let source = matches.value_source(arg.get_id().as_str());
        if matches!(source, None | Some(ValueSource::DefaultValue)) {
            arguments.extend(given.into_iter().map(|(token, _)| token));
        }
    }
    Ok(arguments)
}

/// The options a file may set: all of `serve`'s but help and `--settings` itself.
fn settable(serve: &Command) -> impl Iterator<Item = &Arg> {
    serve
        .get_arguments()
        .filter(|arg| !matches!(arg.get_id().as_str(), "help" | OPTION) && !arg.is_hide_set())
}

/// An option's key in the file: its long name, or a positional argument's id.
fn name(arg: &Arg) -> &str {
    arg.get_long().unwrap_or_else(|| arg.get_id().as_str())
}

/// One setting as command-line arguments, each with the value as written.
fn tokens(arg: &Arg, value: &Value) -> Result<Vec<(String, String)>, String> {
    let Some(long) = arg.get_long() else {
        let value = scalar(value)?;
        return Ok(vec![(value.clone(), value)]);
    };
    if !arg.get_action().takes_values() {
        return match value {
            Value::Bool(true) => Ok(vec![(format!("--{long}"), "true".into())]),
            Value::Bool(false) => Ok(Vec::new()),
            _ => Err("is a switch: true or false".into()),
        };
    }
    let values = match value {
        Value::Sequence(items) if matches!(arg.get_action(), clap::ArgAction::Append) => {
            items.iter().map(scalar).collect::<Result<_, _>>()?
        }
        Value::Sequence(_) => return Err("takes one value, not a list".into()),
        value => vec![scalar(value)?],
    };
    Ok(values
        .into_iter()
        .map(|value| (format!("--{long}={value}"), value))
        .collect())
}

/// A plain value as the command line would spell it.
fn scalar(value: &Value) -> Result<String, String> {
    match value {
        Value::String(text) => Ok(text.clone()),
        Value::Number(number) => Ok(number.to_string()),
        Value::Bool(switch) => Ok(switch.to_string()),
        Value::Null => Err("has no value".into()),
        _ => Err("takes a plain value".into()),
    }
}

/// Runs one argument through `serve`'s parser: the reason it is refused, if it is.
fn check(serve: &Command, token: &str) -> Result<(), String> {
    let Err(error) = serve.clone().try_get_matches_from(["serve", token]) else {
        return Ok(());
    };
    Err(match std::error::Error::source(&error) {
        Some(reason) => reason.to_string(),
        None => {
            let text = error.render().to_string();
            let first = text.lines().next().unwrap_or_default();
            first.trim_start_matches("error: ").to_owned()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct Serve {
        #[arg(default_value = "config")]
        project: PathBuf,
        #[arg(long, alias = "config")]
        settings: Option<PathBuf>,
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        #[arg(long)]
        build: bool,
        #[arg(long, value_delimiter = ',')]
        cluster: Vec<String>,
    }

    fn arguments_for(yaml: &str, args: &[&str]) -> Result<Vec<String>, String> {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let file = dir.path().join("wisp.yaml");
        std::fs::write(&file, yaml).expect("writing the settings");
        let mut command = Serve::command();
        let file = file.to_str().expect("utf-8 path");
        let argv = ["serve", "--settings", file]
            .into_iter()
            .chain(args.iter().copied());
        let matches = command.try_get_matches_from_mut(argv).expect("valid flags");
        arguments(&command, &matches).map_err(|error| error.replace(file, "FILE"))
    }

    #[test]
    fn settings_become_arguments_where_the_command_line_left_the_default() {
        let yaml = "project: site\nlisten: 127.0.0.1:9000\nbuild: true\ncluster: [nats://a:1, nats://b:2]\n";
        assert_eq!(
            arguments_for(yaml, &[]).expect("valid settings"),
            [
                "site",
                "--listen=127.0.0.1:9000",
                "--build",
                "--cluster=nats://a:1",
                "--cluster=nats://b:2"
            ]
        );
        assert_eq!(
            arguments_for(yaml, &["here", "--listen", "0.0.0.0:1", "--build"]).expect("valid"),
            ["--cluster=nats://a:1", "--cluster=nats://b:2"]
        );
        assert_eq!(arguments_for("", &[]), Ok(Vec::new()));
        assert_eq!(arguments_for("build: false", &[]), Ok(Vec::new()));
    }

    #[test]
    fn a_bad_setting_names_the_file_and_the_key() {
        let cases = [
            (
                "listen: nowhere",
                "FILE: invalid value 'nowhere' for `listen`: invalid socket address syntax",
            ),
            (
                "listen: [a, b]",
                "FILE: `listen` takes one value, not a list",
            ),
            ("listen:", "FILE: `listen` has no value"),
            ("build: yes", "FILE: `build` is a switch: true or false"),
            (
                "config: other.yaml",
                "FILE: unknown setting `config`; the settings are: project, listen, build, cluster",
            ),
            ("[listen]", "FILE: expected `key: value` lines"),
        ];
        for (yaml, expected) in cases {
            assert_eq!(arguments_for(yaml, &[]), Err(expected.to_owned()), "{yaml}");
        }
        let malformed = arguments_for("listen: a\ncluster: [b\nbuild: true\n", &[]);
        assert!(
            malformed
                .as_ref()
                .is_err_and(|e| e.starts_with("FILE: not valid YAML") && e.contains("line ")),
            "{malformed:?}"
        );
    }
}
