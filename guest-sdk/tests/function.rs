//! The `#[function]` export glue, run on the host: there is no event here, so only the return
//! value of the export can be checked (0 ok, 1 failed).

use std::fmt;

use wisp_sdk::{Event, EventType};

// Export names are symbols in this test binary too: keep them unique.

#[wisp_sdk::function(name = "wisp_sdk_test_unit")]
fn unit(event: Event) {
    assert_eq!(event.id(), 42);
    assert_eq!(event.event_type(), EventType::Undefined);
}

#[wisp_sdk::function(name = "wisp_sdk_test_ok")]
fn succeeds(_event: Event) -> wisp_sdk::Result<()> {
    Ok(())
}

#[wisp_sdk::function(name = "wisp_sdk_test_sdk_error")]
fn sdk_error(event: Event) -> wisp_sdk::Result<()> {
    event.http()?;
    Ok(())
}

#[wisp_sdk::function(name = "wisp_sdk_test_boxed")]
fn boxed(_event: Event) -> Result<(), Box<dyn std::error::Error>> {
    Err("boxed".into())
}

#[wisp_sdk::function(name = "wisp_sdk_test_str")]
fn text(_event: Event) -> Result<(), &'static str> {
    Err("something broke")
}

struct Custom;

impl fmt::Display for Custom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("custom")
    }
}

#[wisp_sdk::function]
fn wisp_sdk_test_default_name(_event: Event) -> Result<(), Custom> {
    Err(Custom)
}

#[test]
fn exports_return_zero_on_success() {
    assert_eq!(__wisp_export_unit(42), 0);
    assert_eq!(__wisp_export_succeeds(1), 0);
}

#[test]
fn exports_return_one_on_error() {
    assert_eq!(__wisp_export_sdk_error(1), 1);
    assert_eq!(__wisp_export_boxed(1), 1);
    assert_eq!(__wisp_export_text(1), 1);
    assert_eq!(__wisp_export_wisp_sdk_test_default_name(1), 1);
}

#[test]
fn the_function_stays_callable() {
    assert_eq!(text(Event::from_id(1)), Err("something broke"));
}

// Names the generated glue also uses must not clash with it.

#[wisp_sdk::function(name = "wisp_sdk_test_named_event")]
fn event(_event: Event) {}

#[wisp_sdk::function(name = "wisp_sdk_test_named_event_id")]
fn event_id(event_id: Event) {
    assert_eq!(event_id.id(), 5);
}

#[test]
fn glue_names_do_not_shadow_the_function() {
    assert_eq!(__wisp_export_event(1), 0);
    assert_eq!(__wisp_export_event_id(5), 0);
}
