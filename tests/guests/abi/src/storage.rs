//! The storage host calls through `wisp_sdk::storage`, and through the raw calls where a
//! guest could pass what the SDK never does (unknown handles, bad pointers).
//!
//! | export | storage opened | body |
//! |---|---|---|
//! | `storage_walk` | `media` (versioned) | one `<step>=<outcome>` line per step: add, read, versions, cid, list, used, delete |
//! | `storage_errors` | `plain` (no versions, 64 bytes) and `media` | one `<case>=<outcome or errno>` line per case |

use std::io::Read;

use wisp_sdk::storage::{self, Storage};
use wisp_sdk::{sys, Event};

use crate::{outcome, Result};

fn read_all(storage: &Storage, name: &str, version: u32) -> wisp_sdk::Result<String> {
    let mut text = String::new();
    let mut reader = storage.file(name).version(version).get()?;
    reader
        .read_to_string(&mut text)
        .map_err(|err| wisp_sdk::Error::new(err.to_string()))?;
    reader.close()?;
    Ok(text)
}

fn list(versions: wisp_sdk::Result<Vec<u32>>) -> String {
    outcome(versions.map(|v| {
        let v: Vec<String> = v.iter().map(u32::to_string).collect();
        v.join(",")
    }))
}

#[wisp_sdk::function]
fn storage_walk(event: Event) -> Result<()> {
    let http = event.http()?;
    let media = storage::new("media")?;
    let video = media.file("video");
    let mut out = String::new();
    let mut line = |step: &str, value: String| out += &format!("{step}={value}\n");

    line(
        "add1",
        outcome(
            media
                .add_file("video", b"first version", false)
                .map(|v| v.to_string()),
        ),
    );
    line(
        "add2",
        outcome(video.add(b"second version", false).map(|v| v.to_string())),
    );
    line("read1", outcome(read_all(&media, "video", 1)));
    line("read_latest", outcome(read_all(&media, "video", 0)));
    line(
        "current",
        outcome(video.current_version().map(|v| v.to_string())),
    );
    line("versions", list(video.versions()));
    let cid = media.cid("video");
    line(
        "cid",
        outcome(cid.as_ref().map(|c| c.to_string()).map_err(Clone::clone)),
    );
    let hex = cid.map(|c| c.as_bytes().iter().map(|b| format!("{b:02x}")).collect());
    line("cid_hex", outcome(hex));
    let files = media.list_files().map(|files| {
        let files: Vec<String> = files
            .iter()
            .map(|f| format!("{}@{}", f.name(), f.pinned_version().unwrap_or(0)))
            .collect();
        files.join(",")
    });
    line("files", outcome(files));
    line("used", outcome(media.used().map(|u| u.to_string())));
    line("capacity", outcome(media.capacity().map(|c| c.to_string())));
    line(
        "remaining",
        outcome(media.remaining_capacity().map(|c| c.to_string())),
    );
    line(
        "delete1",
        outcome(video.version(1).delete().map(|()| "done".into())),
    );
    line("after_delete", list(video.versions()));
    line(
        "overwrite",
        outcome(video.add(b"SECOND", true).map(|v| v.to_string())),
    );
    line("read_overwritten", outcome(read_all(&media, "video", 2)));
    line(
        "delete_all",
        outcome(video.delete_all_versions().map(|()| "done".into())),
    );
    line("after_delete_all", list(video.versions()));
    line("used_at_end", outcome(media.used().map(|u| u.to_string())));
    http.write(out.as_bytes())?;
    Ok(())
}

/// The errno of a raw call, as text.
fn errno(code: u32) -> String {
    code.to_string()
}

#[wisp_sdk::function]
fn storage_errors(event: Event) -> Result<()> {
    let http = event.http()?;
    let plain = storage::new("plain")?;
    let media = Storage::open("media")?;
    let mut out = String::new();
    let mut line = |case: &str, value: String| out += &format!("{case}={value}\n");

    let version = |r: wisp_sdk::Result<u32>| outcome(r.map(|v| v.to_string()));
    line(
        "unknown_name_new",
        outcome(storage::new("nothing").map(|s| s.id().to_string())),
    );
    line(
        "unknown_name_open",
        outcome(Storage::open("nothing").map(|s| s.id().to_string())),
    );
    line(
        "past_capacity",
        version(plain.add_file("big", &[7; 100], false)),
    );
    line(
        "used_after_refusal",
        outcome(plain.used().map(|u| u.to_string())),
    );
    line("capacity", outcome(plain.capacity().map(|u| u.to_string())));
    line("first_add", version(plain.add_file("a", b"x", false)));
    line("second_add", version(plain.add_file("a", b"y", false)));
    line("overwrite", version(plain.add_file("a", b"z", true)));
    line("read_back", outcome(read_all(&plain, "a", 0)));
    line("versions", list(plain.file("a").versions()));
    line("empty_name", version(plain.add_file("", b"x", false)));
    line(
        "missing_file",
        outcome(plain.file("nope").get().map(|_| "opened".into())),
    );
    line(
        "missing_cid",
        outcome(plain.cid("nope").map(|c| c.to_string())),
    );
    line(
        "missing_delete",
        outcome(plain.file("nope").delete().map(|()| "done".into())),
    );
    line("missing_versions", list(plain.file("nope").versions()));

    // One read that fills the buffer exactly is 0 with its bytes; EOF only on the next.
    let (id, p) = (plain.id(), "a");
    let mut fd = 0;
    let mut buf = [0u8; 1];
    let mut count = 9;
    // SAFETY (for every raw call below): each pointer is to a live local of the size the
    // call writes, or deliberately out of the guest's memory, which the host must refuse.
    unsafe {
        line(
            "get_file",
            errno(sys::storageGetFile(id, p.as_ptr(), p.len(), 0, &mut fd)),
        );
        let read = sys::storageReadFile(id, fd, buf.as_mut_ptr(), 1, &mut count);
        line(
            "exact_read",
            format!("{}:{count}:{}", errno(read), buf[0] as char),
        );
        let read = sys::storageReadFile(id, fd, buf.as_mut_ptr(), 1, &mut count);
        line("read_at_end", format!("{}:{count}", errno(read)));
        let read = sys::storageReadFile(media.id(), fd, buf.as_mut_ptr(), 1, &mut count);
        line("fd_of_other_storage", errno(read));
        line("close", errno(sys::storageCloseFile(id, fd)));
        line("close_again", errno(sys::storageCloseFile(id, fd)));
        let read = sys::storageReadFile(id, 77, buf.as_mut_ptr(), 1, &mut count);
        line("unknown_fd", errno(read));

        let mut size = 0usize;
        line(
            "unknown_storage",
            errno(sys::storageUsedSize(999, &mut size)),
        );
        line("handle_zero", errno(sys::storageCapacitySize(0, &mut size)));
        line(
            "nil_out_pointer",
            errno(sys::storageUsedSize(id, std::ptr::null_mut())),
        );
        let mut v = 0;
        let far = usize::MAX - 8;
        let add = sys::storageAddFile(id, p.as_ptr(), p.len(), &mut v, far as *const u8, 16, 0);
        line("data_out_of_memory", errno(add));
        let get = sys::storageGetFile(id, far as *const u8, 4, 0, &mut fd);
        line("name_out_of_memory", errno(get));
        let mut list = [0u8; 64];
        line(
            "files_without_size",
            errno(sys::storageListFiles(id, list.as_mut_ptr())),
        );
        let current = sys::storageCurrentVersion(p.as_ptr(), p.len(), list.as_mut_ptr());
        line("current_without_size", errno(current));
        let cid = sys::storageCid(id, p.as_ptr(), p.len(), (usize::MAX - 20) as *mut u8);
        line("cid_out_of_memory", errno(cid));
    }
    line("used_at_end", outcome(plain.used().map(|u| u.to_string())));
    http.write(out.as_bytes())?;
    Ok(())
}
