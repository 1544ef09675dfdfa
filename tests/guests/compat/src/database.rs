//! Taubyte's own database test guest (`database.rs` of Taubyte's fixtures), rewritten
//! against `taubyte-sdk` 0.1.6: put three keys, read one back, delete it, list.

use taubyte_sdk::database::Database;
use taubyte_sdk::event::Event;

/// `GET /db?name=<database>`: writes `DatabaseTest` and then what each step saw, or
/// `databasetest failed with: <error>` at the first failing step.
#[no_mangle]
pub fn compat_database(event: Event) {
    let http = event.http().unwrap();
    let name = http.queries().get("name").unwrap_or_else(|_| "someDatabase".into());
    let report = match steps(&name) {
        Ok(report) => report,
        Err(error) => format!("databasetest failed with: {error}"),
    };
    http.write(format!("DatabaseTest {report}").as_bytes()).unwrap();
}

fn steps(name: &str) -> Result<String, Box<dyn std::error::Error>> {
    let db = Database::new(name)?;
    for key in ["test", "test/1", "test/1s"] {
        db.put(key, b"DatabaseTest")?;
    }
    let value = db.get("test")?;
    if value != b"DatabaseTest" {
        return Err(format!("read back {:?}", String::from_utf8_lossy(&value)).into());
    }
    db.delete("test")?;
    let after_delete = match db.get("test") {
        Ok(_) => "still there".to_string(),
        Err(error) => format!("gone ({error})"),
    };
    let all = db.list("")?;
    let under_test = db.list("test")?;
    db.close()?;
    Ok(format!(
        "get-after-delete={after_delete} list={all:?} list-test={under_test:?}"
    ))
}
