//! Databases and globals through `wisp-sdk`, each export answering in plain text.
//!
//! | export | query | body |
//! |---|---|---|
//! | `kv` | `db`, `op` (`put`, `get`, `delete`, `list`), `key`, `value` | `ok`, the value, `missing`, or the keys joined by `,` |
//! | `fill` | `db`, `size` | puts `k0`, `k1`, ... of `size` bytes each until one fails: `stored <n>; <error>` |
//! | `globals` | | Taubyte's globals test steps (u32, string, f32, f64 in three scopes): `<step>=<value>` lines |
//!
//! A failing call fails the function (status 500, the error as the body).

use wisp_sdk::globals::{self, Scope};
use wisp_sdk::{database, Event, HttpEvent};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn query(http: &HttpEvent, name: &str) -> String {
    http.query().get(name).unwrap_or_default()
}

#[wisp_sdk::function]
fn kv(event: Event) -> Result<()> {
    let http = event.http()?;
    let db = database::new(&query(&http, "db"))?;
    let key = query(&http, "key");
    let answer = match query(&http, "op").as_str() {
        "put" => db.put(&key, query(&http, "value").as_bytes()).map(|()| "ok".to_string())?,
        "get" => match db.get(&key)? {
            Some(value) => String::from_utf8_lossy(&value).into_owned(),
            None => "missing".to_string(),
        },
        "delete" => db.delete(&key).map(|()| "ok".to_string())?,
        "list" => db.list(&key)?.join(","),
        other => return Err(format!("unknown op `{other}`").into()),
    };
    http.write(answer.as_bytes())?;
    Ok(())
}

#[wisp_sdk::function]
fn fill(event: Event) -> Result<()> {
    let http = event.http()?;
    let db = database::new(&query(&http, "db"))?;
    let size: usize = query(&http, "size").parse()?;
    let value = vec![b'x'; size];
    let mut stored = 0;
    let error = loop {
        match db.put(&format!("k{stored}"), &value) {
            Ok(()) => stored += 1,
            Err(error) => break error,
        }
    };
    http.write(format!("stored {stored}; {error}").as_bytes())?;
    Ok(())
}

#[wisp_sdk::function]
fn globals(event: Event) -> Result<()> {
    let http = event.http()?;
    let mut lines = Vec::new();
    let created: u32 = globals::get_or_create("hello", Scope::Function)?;
    lines.push(format!("created={created}"));
    globals::set("hello", Scope::Function, 4u32)?;
    lines.push(format!("u32={:?}", globals::get::<u32>("hello", Scope::Function)?));
    lines.push(format!("u32-project={:?}", globals::get::<u32>("hello", Scope::Project)?));
    let _: String = globals::get_or_create("hello", Scope::Project)?;
    globals::set("hello", Scope::Project, "Hello, world!".to_string())?;
    lines.push(format!("string={:?}", globals::get::<String>("hello", Scope::Project)?));
    globals::set("hello", Scope::Project, String::new())?;
    lines.push(format!("empty={:?}", globals::get::<String>("hello", Scope::Project)?));
    globals::set("pie", Scope::Application, 3.14f32)?;
    globals::set("pie", Scope::Application, 6.28f64)?;
    lines.push(format!("f32={:?}", globals::get::<f32>("pie", Scope::Application)?));
    lines.push(format!("f64={:?}", globals::get::<f64>("pie", Scope::Application)?));
    lines.push(format!("never={:?}", globals::get::<u64>("never-set", Scope::Project)?));
    http.write(lines.join("\n").as_bytes())?;
    Ok(())
}
