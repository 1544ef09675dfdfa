// Wisp's channel client: one WebSocket channel that reconnects by itself and resumes where
// it left off. Served by Wisp at /_wisp/client.js; no build step, no dependencies.
//
//   <script src="/_wisp/client.js"></script>
//   const room = Wisp.channel(websocketUrl, {
//     last: 50,                             // on first connect, replay the newest 50 kept
//     onMessage(m) { ... },                 // m: {channel, offset, epoch, time, data, binary}
//     onStatus(status, detail) { ... },     // "connecting" | "open" | "reconnecting" | "closed"
//     onGap(gap) { ... },                   // {reason, offset, epoch}: messages may be missing
//   });
//   room.send("hello");                     // publishes on the channel (false if not open)
//   room.close();                           // for good; no more reconnects
//
// The URL is what a function's `WebSocket().Url()` returns (Taubyte's form, with no leading
// slash: `ws-<hash>/<channel>`), a path with one, or an absolute ws://, wss://, http:// or
// https:// URL. Relative URLs are taken from the page's host, on ws:// or wss:// as the page.
//
// Frames are asked for in Wisp's JSON envelope (`?envelope=json`), which carries each
// message's offset and its channel's epoch. On a channel that keeps history (`wisp.history`)
// a reconnect asks for everything after the last offset seen (`?since=&epoch=`), so nothing
// sent meanwhile is missed and nothing is delivered twice. When the server cannot honour that
// (close 4412: the history was reset or has been trimmed past that offset), onGap is called
// and the client reconnects with `last` instead. On a channel without history, messages sent
// while disconnected are not recovered (their offset is null).
//
// Reconnects back off exponentially from 250 ms to 10 s with full jitter, so that many
// clients of a restarted server do not all come back in the same instant; a reconnect is
// tried at once when the browser comes back online.
"use strict";

(function (global) {
  const MIN_DELAY_MS = 250;
  const MAX_DELAY_MS = 10000;
  /** The close code for a `since` the server cannot honour. */
  const HISTORY_GONE = 4412;
  const decoder = new TextDecoder();

  /** The absolute ws:// or wss:// URL of `url`, resolved against the page. */
  function resolve(url) {
    const text = String(url);
    const page = global.location;
    const secure = page && page.protocol === "https:";
    let absolute;
    if (/^(wss?|https?):\/\//i.test(text)) {
      absolute = new URL(text);
    } else {
      if (!page || !page.host) throw new Error("Wisp.channel: a relative URL needs a page; give ws://host/...");
      // Taubyte's URLs have no leading slash and are always from the host's root.
      absolute = new URL((secure ? "wss://" : "ws://") + page.host + "/" + text.replace(/^\/+/, ""));
    }
    if (absolute.protocol === "http:") absolute.protocol = "ws:";
    if (absolute.protocol === "https:") absolute.protocol = "wss:";
    return absolute;
  }

  /** Decodes one enveloped frame; `null` if it is not one (then it is delivered raw). */
  function unwrap(text) {
    let envelope;
    try {
      envelope = JSON.parse(text);
    } catch (_) {
      return null;
    }
    if (!envelope || typeof envelope !== "object" || !("data" in envelope) || !("offset" in envelope)) {
      return null;
    }
    let data = envelope.data;
    if (envelope.binary) {
      const raw = atob(String(data));
      data = new Uint8Array(raw.length);
      for (let i = 0; i < raw.length; i++) data[i] = raw.charCodeAt(i);
    }
    return {
      channel: envelope.channel,
      offset: typeof envelope.offset === "number" ? envelope.offset : null,
      epoch: typeof envelope.epoch === "string" ? envelope.epoch : null,
      time: typeof envelope.time === "number" ? new Date(envelope.time) : null,
      data: data,
      binary: !!envelope.binary,
    };
  }

  class Channel {
    constructor(url, options) {
      this.options = Object.assign({ last: 0 }, options || {});
      this.url = resolve(url);
      this.status = "connecting";
      /** The offset and epoch of the newest message seen, once one carried them. */
      this.offset = null;
      this.epoch = null;
      this.socket = null;
      this.attempt = 0;
      this.timer = null;
      this.closed = false;
      /** Set after a 4412, so the next connect asks for `last` instead of `since`. */
      this.resumeFailed = false;
      /** Set when a gap was reported by close code, so the jump after it is not again. */
      this.gapReported = false;
      this.onlineListener = () => {
        if (this.timer !== null) {
          clearTimeout(this.timer);
          this.timer = null;
          this.connect();
        }
      };
      if (global.addEventListener) global.addEventListener("online", this.onlineListener);
      this.connect();
    }

    /** The URL of the next connect: resume from what was seen, else `last`. */
    connectUrl() {
      const url = new URL(this.url.href);
      url.searchParams.set("envelope", "json");
      url.searchParams.delete("last");
      url.searchParams.delete("since");
      url.searchParams.delete("epoch");
      if (this.offset !== null && this.epoch !== null && !this.resumeFailed) {
        url.searchParams.set("since", String(this.offset));
        url.searchParams.set("epoch", this.epoch);
      } else if (this.options.last > 0) {
        url.searchParams.set("last", String(this.options.last));
      }
      return url.href;
    }

    connect() {
      if (this.closed) return;
      this.setStatus(this.attempt === 0 && this.offset === null ? "connecting" : "reconnecting");
      let socket;
      try {
        socket = new WebSocket(this.connectUrl());
      } catch (error) {
        this.report(error);
        this.retry();
        return;
      }
      socket.binaryType = "arraybuffer";
      this.socket = socket;
      socket.onopen = () => {
        if (socket !== this.socket) return;
        this.attempt = 0;
        this.resumeFailed = false;
        this.setStatus("open");
      };
      socket.onmessage = (event) => {
        if (socket !== this.socket) return;
        this.receive(event.data);
      };
      socket.onclose = (event) => {
        if (socket !== this.socket) return;
        this.socket = null;
        if (event.code === HISTORY_GONE) {
          this.resumeFailed = true;
          this.gapReported = true;
          this.gap(event.reason || "the channel's history cannot resume from here");
        }
        if (this.closed) {
          this.setStatus("closed");
          return;
        }
        this.setStatus("reconnecting", { code: event.code, reason: event.reason });
        // After a 4412 the server is up and answering: come back at once, with `last`.
        if (event.code === HISTORY_GONE) this.connect();
        else this.retry();
      };
    }

    receive(raw) {
      const text = typeof raw === "string" ? raw : null;
      const message = text === null ? null : unwrap(text);
      if (message === null) {
        // Not an envelope (a binary frame or a server that does not wrap): as it came.
        const binary = typeof raw !== "string";
        this.deliver({ channel: null, offset: null, epoch: null, time: null,
                       data: binary ? new Uint8Array(raw) : raw, binary: binary });
        return;
      }
      if (message.offset !== null && message.epoch !== null) {
        if (message.epoch === this.epoch && this.offset !== null && message.offset <= this.offset) {
          return; // Seen already: a replay overlapping what was delivered.
        }
        if (this.gapReported) {
          this.gapReported = false;
        } else if (this.epoch !== null && message.epoch !== this.epoch) {
          this.gap("the channel's history was reset (new epoch)");
        } else if (this.offset !== null && message.offset > this.offset + 1) {
          this.gap("messages " + (this.offset + 1) + " to " + (message.offset - 1) + " are no longer kept");
        }
        this.offset = message.offset;
        this.epoch = message.epoch;
      }
      this.deliver(message);
    }

    deliver(message) {
      if (this.options.onMessage) {
        try {
          this.options.onMessage(message);
        } catch (error) {
          this.report(error);
        }
      }
    }

    gap(reason) {
      if (this.options.onGap) this.options.onGap({ reason: reason, offset: this.offset, epoch: this.epoch });
    }

    retry() {
      if (this.closed) return;
      const ceiling = Math.min(MAX_DELAY_MS, MIN_DELAY_MS * Math.pow(2, this.attempt));
      this.attempt++;
      const delay = Math.random() * ceiling;
      this.timer = setTimeout(() => {
        this.timer = null;
        this.connect();
      }, delay);
    }

    setStatus(status, detail) {
      if (this.status === status && !detail) return;
      this.status = status;
      if (this.options.onStatus) this.options.onStatus(status, detail || {});
    }

    report(error) {
      if (this.options.onError) this.options.onError(error);
      else if (global.console) global.console.error("Wisp.channel:", error);
    }

    /** Publishes `data` (a string, ArrayBuffer or typed array) on the channel's socket. */
    send(data) {
      if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
      this.socket.send(data);
      return true;
    }

    /** Closes the channel for good. */
    close() {
      this.closed = true;
      if (this.timer !== null) clearTimeout(this.timer);
      this.timer = null;
      if (global.removeEventListener) global.removeEventListener("online", this.onlineListener);
      const socket = this.socket;
      this.socket = null;
      if (socket) socket.close(1000);
      this.setStatus("closed");
    }
  }

  global.Wisp = Object.freeze({
    channel: (url, options) => new Channel(url, options),
    resolve: (url) => resolve(url).href,
    decode: (data) => (typeof data === "string" ? data : decoder.decode(data)),
  });
})(typeof window !== "undefined" ? window : globalThis);
