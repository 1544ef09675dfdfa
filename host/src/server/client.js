// Wisp's browser client: one WebSocket channel that reconnects by itself and resumes where
// it left off (Wisp.channel), and one socket of the broker protocol for many channels,
// private messages, presence and typing (Wisp.broker). Served by Wisp at /_wisp/client.js;
// no build step, no dependencies.
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
// tried at once when the browser comes back online. When the page is left (`pagehide`,
// also when it goes into the back/forward cache) the socket is closed cleanly, so the
// server knows at once; a page shown again from that cache reconnects and resumes.
//
// The broker protocol (`/ws-<hash>`: SUBSCRIBE:, PUBLISH:, AUTH:, ...), on one socket:
//
//   const broker = Wisp.broker(url, {        // `ws-<hash>`, or a channel's URL (see below)
//     onMessage(channel, data) { ... },     // MSG:<channel>:<data> (data: a string, or a
//                                           //   Uint8Array for a binary message)
//     onPrivate(from, data) { ... },        // a private message to this user (sendTo)
//     onTyping(channel, who) { ... },       // somebody else on the channel is typing
//     onPresence(channel, members) { ... }, // [{user, connections}, ...], sorted by user
//     onJoin(channel, who) { ... },         // a user came onto a channel with presence
//     onLeave(channel, who) { ... },        // ... and left it (3 s after its last socket)
//     onError(reason) { ... },              // an ERROR:<reason> line
//     onStatus(status, detail) { ... },     // as Wisp.channel's
//   });
//   broker.subscribe("news");               // the channel's kept messages, then live ones
//   broker.unsubscribe("news");
//   broker.publish("news", "hi");           // kept in the channel's history, if it keeps one
//   broker.signal("news", "ping");          // delivered like publish, never kept (ephemeral)
//   broker.sendTo("bob", "psst");           // to every socket signed in as bob
//   broker.typing("news");                  // "I am typing": sent at most once a second
//   broker.presence("news");                // asks who is on it: onPresence answers
//   broker.online("news");                  // the users last known on it, sorted
//   broker.auth(token);                     // a token that opens private channels
//   broker.close();
//
// Given a channel's URL as a function hands it out (`ws-<hash>/<channel>?token=T`, in any
// of the forms Wisp.channel takes), the broker connects to that URL's socket (`/ws-<hash>`)
// and sends `AUTH:T` and `SUBSCRIBE:<channel>` itself. The first token that opens a private
// channel signs the socket in as the token's user: what sendTo needs, and what others see
// in the online list and typing indicators (an unsigned socket is `anon-…`). After a
// reconnect it sends every token and subscription again and asks again for the presence
// it was asked for; there is no resume: a channel that keeps history replays what it keeps
// on every SUBSCRIBE (use Wisp.channel for a channel's messages exactly once, in order).
// publish, signal, sendTo and typing return false when they could not be sent (the socket
// is not open, or typing was sent less than a second ago); subscribe, unsubscribe,
// presence and auth are kept and sent once the socket opens. Channel and user names are
// percent-encoded in commands as the protocol wants (`%` as %25, `:` as %3A, a leading `@`
// as %40) and decoded in what arrives.
"use strict";

(function (global) {
  const MIN_DELAY_MS = 250;
  const MAX_DELAY_MS = 10000;
  /** The close code for a `since` the server cannot honour. */
  const HISTORY_GONE = 4412;
  /** How often Broker.typing sends for one channel, at most. */
  const TYPING_EVERY_MS = 1000;
  /** How many tokens the server keeps per socket; the broker keeps as many. */
  const MAX_TOKENS = 16;
  const decoder = new TextDecoder();
  const encoder = new TextEncoder();

  /** The absolute ws:// or wss:// URL of `url`, resolved against the page. */
  function resolve(url, who) {
    const text = String(url);
    const page = global.location;
    const secure = page && page.protocol === "https:";
    let absolute;
    // Taubyte's frontends write `ws://host:port${url}`, and its URLs have no leading slash:
    // `ws://host:8080ws-<hash>/<channel>`. Given such a URL (a project hash is `Qm` and 44
    // base58 characters, which no host name ends with), put the slash back.
    const glued = /^((?:wss?|https?):\/\/[^/?#]*?)(ws-Qm[1-9A-HJ-NP-Za-km-z]{44}(?:[/?#].*)?)$/.exec(text);
    if (glued) {
      absolute = new URL(glued[1] + "/" + glued[2]);
    } else if (/^(wss?|https?):\/\//i.test(text)) {
      absolute = new URL(text);
    } else {
      if (!page || !page.host) {
        throw new Error((who || "Wisp.channel") + ": a relative URL needs a page; give ws://host/...");
      }
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

  /**
   * One socket that comes back by itself: the backoff, the online listener, the status and
   * the socket's events. A subclass says what to connect to (`connect`, calling `open`), what
   * to do once open (`opened`) and with each frame (`receive`).
   */
  class Reconnecting {
    constructor(name, options) {
      this.name = name;
      this.options = options;
      this.status = "connecting";
      this.socket = null;
      this.attempt = 0;
      this.timer = null;
      this.closed = false;
      this.suspended = false;
      this.onlineListener = () => {
        if (this.timer !== null) {
          clearTimeout(this.timer);
          this.timer = null;
          this.connect();
        }
      };
      // A page being left, or put in the back/forward cache, lets its socket go (so its
      // user leaves presence lists at once); a page shown again from the cache comes back.
      this.hideListener = () => this.suspend();
      this.showListener = (event) => {
        if (event.persisted) this.resume();
      };
      if (global.addEventListener) {
        global.addEventListener("online", this.onlineListener);
        global.addEventListener("pagehide", this.hideListener);
        global.addEventListener("pageshow", this.showListener);
      }
    }

    /** Lets the socket go until `resume`, without reconnecting. */
    suspend() {
      if (this.closed || this.suspended) return;
      this.suspended = true;
      if (this.timer !== null) clearTimeout(this.timer);
      this.timer = null;
      const socket = this.socket;
      this.socket = null;
      if (socket) socket.close(1000, "page hidden");
    }

    resume() {
      if (this.closed || !this.suspended) return;
      this.suspended = false;
      this.attempt = 0;
      this.connect();
    }

    /** Opens a socket to `url` as this one's; a failure to even try is retried later. */
    open(url) {
      let socket;
      try {
        socket = new WebSocket(url);
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
        this.opened();
      };
      socket.onmessage = (event) => {
        if (socket !== this.socket) return;
        this.receive(event.data);
      };
      socket.onclose = (event) => {
        if (socket !== this.socket) return;
        this.socket = null;
        this.lost(event);
      };
    }

    /** The socket closed: reconnect (at once if `reconnectAtOnce` says so), unless closed. */
    lost(event) {
      if (this.closed) {
        this.setStatus("closed");
        return;
      }
      this.setStatus("reconnecting", { code: event.code, reason: event.reason });
      if (this.reconnectAtOnce(event)) this.connect();
      else this.retry();
    }

    reconnectAtOnce(_event) {
      return false;
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
      else if (global.console) global.console.error(this.name + ":", error);
    }

    /** Sends one frame if the socket is open. */
    write(data) {
      if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
      this.socket.send(data);
      return true;
    }

    /** Closes the socket for good. */
    close() {
      this.closed = true;
      if (this.timer !== null) clearTimeout(this.timer);
      this.timer = null;
      if (global.removeEventListener) {
        global.removeEventListener("online", this.onlineListener);
        global.removeEventListener("pagehide", this.hideListener);
        global.removeEventListener("pageshow", this.showListener);
      }
      const socket = this.socket;
      this.socket = null;
      if (socket) socket.close(1000);
      this.setStatus("closed");
    }
  }

  class Channel extends Reconnecting {
    constructor(url, options) {
      super("Wisp.channel", Object.assign({ last: 0 }, options || {}));
      this.url = resolve(url, "Wisp.channel");
      /** The offset and epoch of the newest message seen, once one carried them. */
      this.offset = null;
      this.epoch = null;
      /** Set after a 4412, so the next connect asks for `last` instead of `since`. */
      this.resumeFailed = false;
      /** Set when a gap was reported by close code, so the jump after it is not again. */
      this.gapReported = false;
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
      this.open(this.connectUrl());
    }

    opened() {
      this.resumeFailed = false;
      this.setStatus("open");
    }

    lost(event) {
      if (event.code === HISTORY_GONE) {
        this.resumeFailed = true;
        this.gapReported = true;
        this.gap(event.reason || "the channel's history cannot resume from here");
      }
      super.lost(event);
    }

    /** After a 4412 the server is up and answering: come back at once, with `last`. */
    reconnectAtOnce(event) {
      return event.code === HISTORY_GONE;
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

    /** Publishes `data` (a string, ArrayBuffer or typed array) on the channel's socket. */
    send(data) {
      return this.write(data);
    }
  }

  /** A channel or user name as commands write it: `%`, `:` and a leading `@` encoded. */
  function encodeName(name) {
    return String(name).replace(/%/g, "%25").replace(/:/g, "%3A").replace(/^@/, "%40");
  }

  /** A name as the server writes it (percent-encoded); as it came if it is not. */
  function decodeName(name) {
    try {
      return decodeURIComponent(name);
    } catch (_) {
      return name;
    }
  }

  /** `prefix` then `data`: a text frame for a string, else a binary one. */
  function command(prefix, data) {
    if (typeof data === "string") return prefix + data;
    const head = encoder.encode(prefix);
    const body = data instanceof ArrayBuffer ? new Uint8Array(data)
      : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const frame = new Uint8Array(head.length + body.length);
    frame.set(head, 0);
    frame.set(body, head.length);
    return frame;
  }

  /**
   * The broker protocol's socket for `url`, and what the URL asks of it: a channel's URL
   * (`.../ws-<hash>/<channel>?token=T`) names the socket `/ws-<hash>`, a channel and a token.
   */
  function brokerTarget(url) {
    const absolute = resolve(url, "Wisp.broker");
    const socket = new URL(absolute.href);
    socket.search = "";
    socket.hash = "";
    let channel = null;
    const path = /^\/(ws-[^/]*)(?:\/(.*))?$/.exec(absolute.pathname);
    if (path) {
      socket.pathname = "/" + path[1];
      if (path[2]) channel = decodeName(path[2]);
    }
    return { socket: socket, channel: channel, token: absolute.searchParams.get("token") };
  }

  class Broker extends Reconnecting {
    constructor(url, options) {
      super("Wisp.broker", Object.assign({}, options || {}));
      const target = brokerTarget(url);
      this.url = target.socket;
      /** The channel the URL named, if it named one. */
      this.channel = target.channel;
      /** Tokens sent with AUTH:, oldest first (sent again after a reconnect). */
      this.tokens = target.token ? [target.token] : [];
      /** Subscribed channels, in the order asked (subscribed again after a reconnect). */
      this.channels = new Set(target.channel === null ? [] : [target.channel]);
      /** Channels whose presence was asked for (asked again after a reconnect). */
      this.presenceAsked = new Set();
      /** Who is on each channel, by what PRESENCE, JOIN and LEAVE said. */
      this.members = new Map();
      /** When typing was last sent, by channel. */
      this.typed = new Map();
      this.wasOpen = false;
      this.connect();
    }

    connect() {
      if (this.closed) return;
      this.setStatus(this.attempt === 0 && !this.wasOpen ? "connecting" : "reconnecting");
      this.open(this.url.href);
    }

    /** Open: every token, subscription and presence question again, in that order. */
    opened() {
      for (const token of this.tokens) this.write("AUTH:" + token);
      for (const channel of this.channels) this.write("SUBSCRIBE:" + encodeName(channel));
      for (const channel of this.presenceAsked) this.write("PRESENCE:" + encodeName(channel));
      this.wasOpen = true;
      this.setStatus("open");
    }

    receive(raw) {
      if (typeof raw === "string") {
        this.line(raw, null);
        return;
      }
      // A binary frame is a MSG line whose content is binary: the two names are text.
      const bytes = new Uint8Array(raw);
      let colons = 0;
      let end = -1;
      for (let i = 0; i < bytes.length; i++) {
        if (bytes[i] === 58 && ++colons === 2) {
          end = i;
          break;
        }
      }
      if (end < 0) {
        this.line(decoder.decode(bytes), null);
        return;
      }
      this.line(decoder.decode(bytes.subarray(0, end + 1)), bytes.subarray(end + 1));
    }

    /** One line from the server; `binary` is a binary MSG's content, after the line's text. */
    line(text, binary) {
      const colon = text.indexOf(":");
      const verb = colon < 0 ? text : text.slice(0, colon);
      const rest = colon < 0 ? "" : text.slice(colon + 1);
      if (verb === "ERROR") {
        this.call("onError", rest);
        return;
      }
      // Every other line is VERB:<name>:<the rest>.
      const split = rest.indexOf(":");
      if (split < 0) {
        this.report(new Error("an unexpected line from the server: " + text.slice(0, 100)));
        return;
      }
      const name = rest.slice(0, split);
      const tail = binary === null ? rest.slice(split + 1) : binary;
      switch (verb) {
        case "MSG":
          if (name.startsWith("@")) this.call("onPrivate", decodeName(name.slice(1)), tail);
          else this.call("onMessage", decodeName(name), tail);
          break;
        case "USER_TYPING":
          this.call("onTyping", decodeName(name), tail);
          break;
        case "JOIN":
          this.membersOf(decodeName(name)).add(tail);
          this.call("onJoin", decodeName(name), tail);
          break;
        case "LEAVE":
          this.membersOf(decodeName(name)).delete(tail);
          this.call("onLeave", decodeName(name), tail);
          break;
        case "PRESENCE": {
          let members;
          try {
            members = JSON.parse(tail);
          } catch (error) {
            this.report(error);
            return;
          }
          if (!Array.isArray(members)) return;
          const channel = decodeName(name);
          this.members.set(channel, new Set(members.map((m) => String(m.user))));
          this.call("onPresence", channel, members);
          break;
        }
        default:
          this.report(new Error("an unknown line from the server: " + text.slice(0, 100)));
      }
    }

    /** onError is for the server's ERROR: lines; the client's own troubles go to the console. */
    report(error) {
      if (global.console) global.console.error(this.name + ":", error);
    }

    membersOf(channel) {
      let members = this.members.get(channel);
      if (!members) {
        members = new Set();
        this.members.set(channel, members);
      }
      return members;
    }

    call(callback, ...args) {
      const f = this.options[callback];
      if (!f) return;
      try {
        f(...args);
      } catch (error) {
        this.report(error);
      }
    }

    /** Subscribes to `channel` (now if open, else once it opens; again after reconnects). */
    subscribe(channel) {
      channel = String(channel);
      if (this.channels.has(channel)) return;
      this.channels.add(channel);
      this.write("SUBSCRIBE:" + encodeName(channel));
    }

    unsubscribe(channel) {
      channel = String(channel);
      this.channels.delete(channel);
      this.presenceAsked.delete(channel);
      this.members.delete(channel);
      this.typed.delete(channel);
      this.write("UNSUBSCRIBE:" + encodeName(channel));
    }

    /** Publishes `data` (a string, ArrayBuffer or typed array) on `channel`. */
    publish(channel, data) {
      return this.write(command("PUBLISH:" + encodeName(channel) + ":", data));
    }

    /** Like publish, but the message is never kept in the channel's history. */
    signal(channel, data) {
      return this.write(command("SIGNAL:" + encodeName(channel) + ":", data));
    }

    /** A private message to every socket signed in as `user`; this socket must be signed in. */
    sendTo(user, data) {
      return this.write(command("PUBLISH:@" + encodeName(user) + ":", data));
    }

    /** Tells the channel's other subscribers this user is typing: at most once a second. */
    typing(channel) {
      channel = String(channel);
      const now = Date.now();
      const last = this.typed.get(channel);
      if (last !== undefined && now - last < TYPING_EVERY_MS) return false;
      if (!this.write("USER_TYPING:" + encodeName(channel))) return false;
      this.typed.set(channel, now);
      return true;
    }

    /** Asks who is on `channel` (onPresence answers), now and after every reconnect. */
    presence(channel) {
      channel = String(channel);
      this.presenceAsked.add(channel);
      this.write("PRESENCE:" + encodeName(channel));
    }

    /** The users last known to be on `channel`, sorted. */
    online(channel) {
      return [...(this.members.get(String(channel)) || [])].sort();
    }

    /** Sends a token that opens private channels (now, and again after reconnects). */
    auth(token) {
      token = String(token);
      if (this.tokens.includes(token)) return;
      this.tokens.push(token);
      if (this.tokens.length > MAX_TOKENS) this.tokens.shift();
      this.write("AUTH:" + token);
    }
  }

  global.Wisp = Object.freeze({
    channel: (url, options) => new Channel(url, options),
    broker: (url, options) => new Broker(url, options),
    resolve: (url) => resolve(url).href,
    decode: (data) => (typeof data === "string" ? data : decoder.decode(data)),
  });
})(typeof window !== "undefined" ? window : globalThis);
