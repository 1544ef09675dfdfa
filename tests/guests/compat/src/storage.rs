//! Taubyte's own storage test (`storagetest`), step for step, written with `taubyte-sdk`:
//! add a file, read version 1 back with one read of its exact size, current version, CID,
//! a second version, the version and file lists, delete version 1. Writes
//! `{"ping": "pong"}` when every step holds, else status 500 and the step that failed.

use std::error::Error;
use std::io::Read;

use taubyte_sdk::event::Event;
use taubyte_sdk::storage::Storage;

/// The name the guest opens its storage by (a `storages/*.yaml` resource's `match`).
const STORAGE: &str = "/basic/123";

#[no_mangle]
pub fn storagetest(event: Event) {
    let http = event.http().unwrap();
    match steps() {
        Ok(()) => {
            http.write(br#"{"ping": "pong"}"#).unwrap();
            http.return_code(200).unwrap();
        }
        Err(err) => {
            http.return_code(500).unwrap();
            http.write(format!("storagetest failed with: {err}").as_bytes())
                .unwrap();
        }
    }
}

/// Errs unless `held`, naming the step.
fn expect(held: bool, step: impl Into<String>) -> Result<(), Box<dyn Error>> {
    if held {
        Ok(())
    } else {
        Err(step.into().into())
    }
}

/// Reads `version` of `video` with one read into a buffer of exactly `want`'s size.
fn read_back(storage: &Storage, version: u32, want: &[u8]) -> Result<(), Box<dyn Error>> {
    let mut reader = storage.file("video").as_versioned(version).get()?;
    let mut buf = vec![0; want.len()];
    let n = reader.read(&mut buf)?;
    expect(
        n == want.len() && buf == want,
        format!("reading v{version}: {n} bytes"),
    )
}

fn steps() -> Result<(), Box<dyn Error>> {
    let storage = Storage::new(STORAGE)?;
    let video = storage.file("video");

    let version = video.add(b"first version", false)?;
    expect(version == 1, format!("first add gave version {version}"))?;
    read_back(&storage, 1, b"first version")?;
    let current = video.latest_version()?;
    expect(current == 1, format!("current version {current}"))?;
    let cid = storage.cid("video")?;
    // A CIDv1, raw codec, sha2-256 (`bafkrei...`): Wisp's, not the dag-pb of an IPFS add.
    let cid = cid.to_string();
    expect(cid.starts_with("bafkrei"), format!("cid {cid}"))?;

    let version = video.add(b"second version", false)?;
    expect(version == 2, format!("second add gave version {version}"))?;
    read_back(&storage, 2, b"second version")?;
    let versions = video.versions()?;
    expect(versions == [1, 2], format!("versions {versions:?}"))?;

    let files: Vec<(String, u32)> = storage
        .list_files()?
        .iter()
        .map(|f| (f.file.name.clone(), f.version()))
        .collect();
    let want = [("video".to_owned(), 1), ("video".to_owned(), 2)];
    expect(files == want, format!("files {files:?}"))?;

    video.as_versioned(1).delete()?;
    let versions = video.versions()?;
    expect(
        versions == [2],
        format!("versions after delete {versions:?}"),
    )?;

    // `video` (5 bytes) and `second version` (14) are what is left.
    let (used, capacity) = (storage.used()?, storage.capacity()?);
    expect(
        used == 19 && capacity == 5000,
        format!("used {used}, capacity {capacity}"),
    )
}
