//! Private channels (`wisp: {private: true}`): a WebSocket client gets in only with the
//! token in the URL a function hands out; guessed, altered, expired and other-channel tokens
//! are refused before the upgrade, and a read-only token's publish closes the socket.

use futures_util::SinkExt;
use std::time::Duration;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use wisp::messaging::token::{now_secs, Jwt, JwtAlgorithm, Tokens};
use wisp_e2e::{next_text, probe_project, publish, test_config, test_wasm, Project, Server};

const WAIT: Duration = Duration::from_secs(10);
const KEY: &[u8] = b"a test key of this suite, 32+ bytes long";
const HOUR: Duration = Duration::from_secs(3600);

/// The probe project with private channels `secret/*`, `GET /wsurl?channel=` and
/// `GET /wsurl_for?channel=&user=&ttl=&publish=`.
fn project() -> Project {
    let p = probe_project();
    p.file(
        "messaging/secret.yaml",
        "matcher: secret/*\nwebsocket: true\nwisp:\n  private: true\n",
    );
    let wasm = test_wasm("pubsub_probe");
    p.http_function("wsurl", "GET", "/wsurl", "wsurl", &wasm);
    p.http_function("wsurl_for", "GET", "/wsurl_for", "wsurl_for", &wasm);
    p
}

async fn server(p: &Project) -> Server {
    let mut config = test_config();
    config.tokens = Some(Tokens::new(KEY.to_vec()));
    Server::start_with(p.path(), config).await
}

/// The project's scope hash: what a token is for, with the channel.
fn scope() -> String {
    wisp::messaging::hash::project_hash("test-project", None)
}

fn path_with(channel: &str, token: &str) -> String {
    format!("{}?token={token}", wisp_e2e::ws_path(channel))
}

/// The HTTP status a refused upgrade got.
async fn refused(server: &Server, path: &str) -> u16 {
    match server.try_ws(path).await {
        Err(WsError::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected a refusal, got {other}"),
        Ok(_) => panic!("{path} was let in"),
    }
}

#[tokio::test]
async fn the_url_a_function_hands_out_admits_its_holder() {
    let p = project();
    let server = server(&p).await;
    let reply = server.get("/wsurl?channel=secret/room").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let url = reply.text();
    assert!(
        url.starts_with(&format!("ws-{}/secret/room?token=v1.", scope())),
        "Taubyte's form, with a token: {url}"
    );
    let mut alice = server.ws(&format!("/{url}")).await;
    let mut bob = server.ws(&format!("/{url}")).await;
    // The anonymous token may publish, as every Taubyte socket may.
    alice.send(Message::text("hi bob")).await.unwrap();
    assert_eq!(next_text(&mut bob, WAIT).await.as_deref(), Some("hi bob"));
    publish(&server, "secret/room", "from a function").await;
    for ws in [&mut alice, &mut bob] {
        assert_eq!(
            next_text(ws, WAIT).await.as_deref(),
            Some("from a function")
        );
    }
    // A channel that is not private needs no token.
    let _open = server.ws(&wisp_e2e::ws_path("room/open")).await;
}

#[tokio::test]
async fn missing_guessed_altered_expired_and_other_channel_tokens_are_refused() {
    let p = project();
    let server = server(&p).await;
    let tokens = Tokens::new(KEY.to_vec());
    let now = now_secs();
    let channel = "secret/vault";
    assert_eq!(refused(&server, &wisp_e2e::ws_path(channel)).await, 401);
    assert_eq!(refused(&server, &path_with(channel, "")).await, 401);

    let good = tokens.issue(&scope(), channel, "carol", HOUR, true, now);
    let _in = server.ws(&path_with(channel, &good)).await;
    let last = good.chars().last().unwrap();
    let altered = format!(
        "{}{}",
        &good[..good.len() - 1],
        if last == 'A' { 'B' } else { 'A' }
    );
    let expired = tokens.issue(&scope(), channel, "carol", Duration::ZERO, true, now - 60);
    let other_channel = tokens.issue(&scope(), "secret/other", "carol", HOUR, true, now);
    let other_key = Tokens::new(b"somebody else's key, 32+ bytes!!".to_vec());
    let foreign = other_key.issue(&scope(), channel, "carol", HOUR, true, now);
    let too_long = "v1.".repeat(2000);
    for (what, token) in [
        ("guessed", "v1.9999999999.rw.Y2Fyb2w.AAAA"),
        ("altered", &altered),
        ("expired", &expired),
        ("for another channel", &other_channel),
        ("signed with another key", &foreign),
        ("garbage", "%00%ff%27%22%3C%3E"),
        ("too long", &too_long),
    ] {
        assert_eq!(
            refused(&server, &path_with(channel, token)).await,
            403,
            "{what}"
        );
    }
}

#[tokio::test]
async fn a_read_only_token_receives_but_its_publish_closes_with_4403() {
    let p = project();
    let server = server(&p).await;
    let tokens = Tokens::new(KEY.to_vec());
    let channel = "secret/news";
    let reader = tokens.issue(&scope(), channel, "dave", HOUR, false, now_secs());
    let mut ws = server.ws(&path_with(channel, &reader)).await;
    publish(&server, channel, "headline").await;
    assert_eq!(next_text(&mut ws, WAIT).await.as_deref(), Some("headline"));
    ws.send(Message::text("may I?")).await.unwrap();
    let code = wisp_e2e::close_code(&mut ws, WAIT).await;
    assert_eq!(code.map(u16::from), Some(4403));
}

#[tokio::test]
async fn the_broker_protocol_opens_private_channels_to_the_tokens_sent_with_auth() {
    let p = project();
    let server = server(&p).await;
    let tokens = Tokens::new(KEY.to_vec());
    let now = now_secs();
    let mut ws = server.ws(&format!("ws-{}", scope())).await;
    // Without a token: refused, saying how.
    for command in ["SUBSCRIBE:secret/x", "PUBLISH:secret/x:hello"] {
        ws.send(Message::text(command)).await.unwrap();
        let line = next_text(&mut ws, WAIT).await.unwrap_or_default();
        assert!(
            line.starts_with("ERROR:") && line.contains("AUTH:"),
            "{line}"
        );
    }
    // A reader's token for secret/x: subscribed, but its publish refused.
    let reader = tokens.issue(&scope(), "secret/x", "kim", HOUR, false, now);
    ws.send(Message::text(format!("AUTH:{reader}")))
        .await
        .unwrap();
    ws.send(Message::text("SUBSCRIBE:secret/x")).await.unwrap();
    ws.send(Message::text("PUBLISH:secret/x:hi")).await.unwrap();
    let line = next_text(&mut ws, WAIT).await.unwrap_or_default();
    assert!(line.contains("may not publish"), "{line}");
    publish(&server, "secret/x", "news").await;
    assert_eq!(
        next_text(&mut ws, WAIT).await.as_deref(),
        Some("MSG:secret/x:news")
    );
    // That token opens only its channel; a forged one opens nothing.
    ws.send(Message::text("SUBSCRIBE:secret/y")).await.unwrap();
    let line = next_text(&mut ws, WAIT).await.unwrap_or_default();
    assert!(line.contains("no token sent opens it"), "{line}");
    assert!(!line.contains(&reader), "a token is never repeated: {line}");
    // A writer's token, after a flood of garbage ones (only the newest few are kept).
    for i in 0..100 {
        ws.send(Message::text(format!("AUTH:garbage-{i}")))
            .await
            .unwrap();
    }
    let writer = tokens.issue(&scope(), "secret/y", "kim", HOUR, true, now);
    ws.send(Message::text(format!("AUTH:{writer}")))
        .await
        .unwrap();
    ws.send(Message::text("SUBSCRIBE:secret/y")).await.unwrap();
    ws.send(Message::text("PUBLISH:secret/y:mine"))
        .await
        .unwrap();
    assert_eq!(
        next_text(&mut ws, WAIT).await.as_deref(),
        Some("MSG:secret/y:mine")
    );
    ws.send(Message::text("AUTH:")).await.unwrap();
    let line = next_text(&mut ws, WAIT).await.unwrap_or_default();
    assert!(line.starts_with("ERROR:AUTH needs a token"), "{line}");
}

#[tokio::test]
async fn a_function_names_the_user_lifetime_and_rights_of_a_token() {
    let p = project();
    let server = server(&p).await;
    let channel = "secret/desk";
    let url_for = |query: String| {
        let server = &server;
        async move {
            server
                .get(&format!("/wsurl_for?channel={channel}&{query}"))
                .await
        }
    };
    // A reader's token: it receives, and its publish closes the socket.
    let reader = url_for("user=frank&ttl=600&publish=no".into()).await;
    assert_eq!(reader.status, 200, "{}", reader.text());
    let url = reader.text();
    let token = url.split("token=").nth(1).expect("a token");
    let grant = Tokens::new(KEY.to_vec())
        .check(&scope(), channel, token, now_secs())
        .expect("a valid token");
    assert_eq!((grant.user.as_str(), grant.can_publish), ("frank", false));
    assert!(grant.expires <= now_secs() + 600);
    let mut ws = server.ws(&format!("/{url}")).await;
    publish(&server, channel, "memo").await;
    assert_eq!(next_text(&mut ws, WAIT).await.as_deref(), Some("memo"));
    ws.send(Message::text("reply")).await.unwrap();
    let code = wisp_e2e::close_code(&mut ws, WAIT).await;
    assert_eq!(code.map(u16::from), Some(4403));

    // A token that lasts a second is refused once it has.
    let brief = url_for("user=gina&ttl=1&publish=yes".into()).await.text();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(refused(&server, &format!("/{brief}")).await, 403);

    // No lifetime, a lifetime past 30 days, a user name too long: refused, errno 38.
    for bad in [
        "user=h&ttl=0&publish=yes".to_owned(),
        format!("user=h&ttl={}&publish=yes", 31 * 24 * 3600),
        format!("user={}&ttl=60&publish=yes", "x".repeat(300)),
    ] {
        let reply = url_for(bad.clone()).await;
        assert_eq!(reply.status, 500, "{bad}");
        assert!(reply.text().contains("errno 38"), "{bad}: {}", reply.text());
    }
    // A channel that is not private gets its plain path.
    let open = server
        .get("/wsurl_for?channel=room/open&user=h&ttl=60&publish=no")
        .await;
    assert_eq!(
        open.text(),
        wisp_e2e::ws_path("room/open").trim_start_matches('/')
    );
}

/// A JWT signed with `algorithm` by the test key `name` (tests/fixtures/jwt: keys made for
/// this suite, not secrets) or, for HS256, the shared secret.
fn jwt(algorithm: jsonwebtoken::Algorithm, claims: serde_json::Value) -> String {
    use jsonwebtoken::{EncodingKey, Header};
    let fixture =
        |name: &str| std::fs::read(wisp_e2e::repo().join("tests/fixtures/jwt").join(name)).unwrap();
    let key = match algorithm {
        jsonwebtoken::Algorithm::HS256 => EncodingKey::from_secret(JWT_SECRET),
        jsonwebtoken::Algorithm::RS256 => {
            EncodingKey::from_rsa_pem(&fixture("rs256-private.pem")).unwrap()
        }
        _ => EncodingKey::from_ed_pem(&fixture("eddsa-private.pem")).unwrap(),
    };
    jsonwebtoken::encode(&Header::new(algorithm), &claims, &key).unwrap()
}

const JWT_SECRET: &[u8] = b"the identity service's shared secret";

async fn jwt_server(p: &Project, algorithm: JwtAlgorithm, key: &[u8]) -> Server {
    let mut config = test_config();
    let jwt = Jwt::new(algorithm, key).expect("a JWT key");
    config.tokens = Some(Tokens::new(KEY.to_vec()).with_jwt(jwt));
    Server::start_with(p.path(), config).await
}

#[tokio::test]
async fn jwts_from_an_identity_service_open_the_channels_they_name() {
    use jsonwebtoken::Algorithm;
    let p = project();
    let fixture =
        |name: &str| std::fs::read(wisp_e2e::repo().join("tests/fixtures/jwt").join(name)).unwrap();
    let exp = now_secs() + 600;
    for (algorithm, checked_as, key) in [
        (Algorithm::HS256, JwtAlgorithm::Hs256, JWT_SECRET.to_vec()),
        (
            Algorithm::RS256,
            JwtAlgorithm::Rs256,
            fixture("rs256-public.pem"),
        ),
        (
            Algorithm::EdDSA,
            JwtAlgorithm::EdDsa,
            fixture("eddsa-public.pem"),
        ),
    ] {
        let server = jwt_server(&p, checked_as, &key).await;
        let claims = serde_json::json!({"sub": "ivan", "exp": exp, "channels": ["secret/a", "secret/team-*"]});
        let token = jwt(algorithm, claims);
        let mut ws = server.ws(&path_with("secret/a", &token)).await;
        let _team = server.ws(&path_with("secret/team-blue", &token)).await;
        assert_eq!(
            refused(&server, &path_with("secret/b", &token)).await,
            403,
            "{algorithm:?}: a channel it does not name"
        );
        publish(&server, "secret/a", "for ivan").await;
        assert_eq!(next_text(&mut ws, WAIT).await.as_deref(), Some("for ivan"));

        // Expired, no `exp`, read-only, and signed by somebody else.
        let expired = jwt(
            algorithm,
            serde_json::json!({"sub": "ivan", "exp": now_secs() - 60, "channels": ["secret/a"]}),
        );
        assert_eq!(
            refused(&server, &path_with("secret/a", &expired)).await,
            403,
            "{algorithm:?}: expired"
        );
        let endless = jwt(
            algorithm,
            serde_json::json!({"sub": "ivan", "channels": ["secret/a"]}),
        );
        assert_eq!(
            refused(&server, &path_with("secret/a", &endless)).await,
            403,
            "{algorithm:?}: no exp"
        );
        let reader = jwt(
            algorithm,
            serde_json::json!({"sub": "ivan", "exp": exp, "channels": ["secret/a"], "publish": false}),
        );
        let mut reading = server.ws(&path_with("secret/a", &reader)).await;
        reading.send(Message::text("no")).await.unwrap();
        let code = wisp_e2e::close_code(&mut reading, WAIT).await;
        assert_eq!(code.map(u16::from), Some(4403), "{algorithm:?}: read-only");
    }
    // An HS256 token under another secret, and one claiming an algorithm the server does not
    // take (a switch from RS256 to HS256 with the public key as the secret).
    let server = jwt_server(&p, JwtAlgorithm::Rs256, &fixture("rs256-public.pem")).await;
    let claims = serde_json::json!({"sub": "mallory", "exp": exp, "channels": ["secret/a"]});
    let switched = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&fixture("rs256-public.pem")),
    )
    .unwrap();
    assert_eq!(
        refused(&server, &path_with("secret/a", &switched)).await,
        403
    );
    let server = jwt_server(&p, JwtAlgorithm::Hs256, JWT_SECRET).await;
    let foreign = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"not the service's secret"),
    )
    .unwrap();
    assert_eq!(
        refused(&server, &path_with("secret/a", &foreign)).await,
        403
    );
    // Wisp's own tokens still work beside JWTs.
    let own = Tokens::new(KEY.to_vec()).issue(&scope(), "secret/a", "", HOUR, true, now_secs());
    let _own = server.ws(&path_with("secret/a", &own)).await;
}
