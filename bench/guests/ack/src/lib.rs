//! The benchmark's pub/sub function (figure 7): reads each message on `bench-fn-in` and
//! publishes its first 16 bytes (the load generator's sequence number, in hex) to
//! `bench-fn-ack`, where a WebSocket client counts completed invocations.
//!
//! Reading the whole message and publishing from inside the function makes each counted ack
//! prove a full invocation: the event was delivered, the data read through the host calls, and
//! the guest ran to its publish.

use wisp_sdk::{pubsub, Event, Result};

/// Where acks go; a messaging resource in `bench/project` enables its WebSocket bridge.
const ACK_CHANNEL: &str = "bench-fn-ack";

/// How much of each message the ack carries: the sequence number the load generator wrote.
const ACK_LEN: usize = 16;

#[wisp_sdk::function]
fn ack(event: Event) -> Result<()> {
    let data = event.pubsub()?.data()?;
    let ack = &data[..data.len().min(ACK_LEN)];
    pubsub::channel(ACK_CHANNEL)?.publish(ack)
}
