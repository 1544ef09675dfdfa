//! Figure 8's function: `?op=put` or `?op=get` and `n=<count>` runs that many database
//! calls on keys `k0` ... `k999` (100-byte values) and answers `done`, so the figure
//! measures the host's database calls, not the guest.

use wisp_sdk::{database, Event, Result};

/// Keys cycled through: a working set that stays the same size however long it runs.
const KEYS: usize = 1000;

#[wisp_sdk::function]
fn kv(event: Event) -> Result<()> {
    let http = event.http()?;
    let query = http.query();
    let op = query.get("op")?;
    let n: usize = query.get("n")?.parse().unwrap_or(0);
    let db = database::new("bench")?;
    let value = [b'v'; 100];
    let keys: Vec<String> = (0..KEYS).map(|i| format!("k{i}")).collect();
    for i in 0..n {
        let key = &keys[i % KEYS];
        match op.as_str() {
            "put" => db.put(key, &value)?,
            _ => {
                db.get(key)?;
            }
        }
    }
    http.write(b"done")?;
    http.return_code(200)
}
