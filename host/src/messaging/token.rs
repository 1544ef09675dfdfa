//! Tokens for private channels (`wisp: {private: true}`): the WebSocket URL a function hands
//! out is the credential. A token names the channel's scope (project or application hash),
//! the channel, a user, an expiry and whether its holder may publish, signed with
//! HMAC-SHA256 under the server's key, so that it cannot be altered, moved to another
//! channel or kept past its time.
//!
//! A token is `v1.<expiry>.<rights>.<user>.<signature>`: the expiry in Unix seconds,
//! the rights `rw` or `r`, the user and the signature in unpadded URL-safe base64. The
//! signature covers every other part with its length, so no two tokens sign the same bytes.
//! It is checked in constant time (`hmac`'s `verify_slice`), and never logged.
//!
//! A JWT from an outside identity service is accepted as well where a key is configured
//! ([`Jwt`]: HS256, RS256 or EdDSA): its `sub` names the user, `exp` (required) ends it,
//! `channels` lists the channels it opens (a name ending in `*` opens every channel it
//! begins), and `publish: false` makes it read-only.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;

/// How long the token in a URL from Taubyte's `WebSocket().Url()` lasts.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);

/// The longest a token a function asks for may last.
pub const MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// The longest token read; anything longer is malformed.
pub const MAX_TOKEN: usize = 2048;

/// The longest user name a token carries, in bytes.
pub const MAX_USER: usize = 256;

/// What a valid token lets its holder do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Who the function said the holder is; empty for an anonymous token.
    pub user: String,
    pub can_publish: bool,
    /// Unix seconds.
    pub expires: u64,
}

/// Why a token was refused: for the log line and the refusal's status (never the token).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("no token (private channels need the URL a function hands out)")]
    Missing,
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's signature does not match: forged, altered, or for another channel")]
    Forged,
    #[error("the token expired")]
    Expired,
    #[error("the token does not open this channel (its `channels` claim)")]
    OtherChannel,
}

/// The server's signing key, and the key of JWTs from an identity service, if any.
#[derive(Clone)]
pub struct Tokens {
    key: Arc<[u8]>,
    jwt: Option<Arc<Jwt>>,
}

impl PartialEq for Tokens {
    fn eq(&self, other: &Self) -> bool {
        let same_jwt = match (&self.jwt, &other.jwt) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        self.key == other.key && same_jwt
    }
}

impl Eq for Tokens {}

/// How JWTs from an identity service are checked: the algorithm and its key.
pub struct Jwt {
    key: jsonwebtoken::DecodingKey,
    validation: jsonwebtoken::Validation,
}

/// The JWT algorithms accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JwtAlgorithm {
    Hs256,
    Rs256,
    EdDsa,
}

impl std::str::FromStr for JwtAlgorithm {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        match text.to_ascii_uppercase().as_str() {
            "HS256" => Ok(Self::Hs256),
            "RS256" => Ok(Self::Rs256),
            "EDDSA" => Ok(Self::EdDsa),
            _ => Err(format!(
                "`{text}` is not a JWT algorithm Wisp takes: HS256, RS256 or EdDSA"
            )),
        }
    }
}

impl Jwt {
    /// A checker for `algorithm` with `key`: the shared secret (HS256), or the public key
    /// in PEM (RS256, EdDSA).
    pub fn new(algorithm: JwtAlgorithm, key: &[u8]) -> Result<Self, String> {
        use jsonwebtoken::{Algorithm, DecodingKey};
        let (key, algorithm) = match algorithm {
            JwtAlgorithm::Hs256 => (DecodingKey::from_secret(key), Algorithm::HS256),
            JwtAlgorithm::Rs256 => (
                DecodingKey::from_rsa_pem(key)
                    .map_err(|e| format!("not an RSA public key in PEM: {e}"))?,
                Algorithm::RS256,
            ),
            JwtAlgorithm::EdDsa => (
                DecodingKey::from_ed_pem(key)
                    .map_err(|e| format!("not an Ed25519 public key in PEM: {e}"))?,
                Algorithm::EdDSA,
            ),
        };
        let mut validation = jsonwebtoken::Validation::new(algorithm);
        validation.set_required_spec_claims(&["exp"]);
        validation.leeway = JWT_LEEWAY;
        Ok(Self { key, validation })
    }

    fn check(&self, channel: &str, token: &str, now: u64) -> Result<Grant, Refused> {
        #[derive(serde::Deserialize)]
        struct Claims {
            #[serde(default)]
            sub: String,
            exp: u64,
            #[serde(default)]
            channels: Vec<String>,
            #[serde(default = "yes")]
            publish: bool,
        }
        fn yes() -> bool {
            true
        }
        use jsonwebtoken::errors::ErrorKind;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|error| match error.kind() {
                ErrorKind::ExpiredSignature => Refused::Expired,
                ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => Refused::Forged,
                _ => Refused::Malformed,
            })?
            .claims;
        // `decode` allows the leeway past `exp`; a token is over at `exp` here, as Wisp's are.
        if claims.exp + JWT_LEEWAY <= now {
            return Err(Refused::Expired);
        }
        let opens = |allowed: &String| match allowed.strip_suffix('*') {
            Some(prefix) => channel.starts_with(prefix),
            None => allowed == channel,
        };
        if !claims.channels.iter().any(opens) {
            return Err(Refused::OtherChannel);
        }
        if claims.sub.len() > MAX_USER {
            return Err(Refused::Malformed);
        }
        Ok(Grant {
            user: claims.sub,
            can_publish: claims.publish,
            expires: claims.exp,
        })
    }
}

/// Seconds a JWT's `exp` may have passed, for clocks that disagree a little.
pub const JWT_LEEWAY: u64 = 5;

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens { key: <hidden> }")
    }
}

impl Tokens {
    pub fn new(key: impl Into<Arc<[u8]>>) -> Self {
        Self {
            key: key.into(),
            jwt: None,
        }
    }

    /// These tokens, and JWTs checked by `jwt` besides.
    pub fn with_jwt(mut self, jwt: Jwt) -> Self {
        self.jwt = Some(Arc::new(jwt));
        self
    }

    /// A key of this process only: tokens stop working when it ends.
    pub fn random() -> Self {
        let mut key = [0u8; 32];
        getrandom::getrandom(&mut key).expect("the system's random source");
        Self::new(key.to_vec())
    }

    /// A token for `channel` of scope `scope` (its hash), for `user`, lasting `ttl` from
    /// `now` (Unix seconds).
    pub fn issue(
        &self,
        scope: &str,
        channel: &str,
        user: &str,
        ttl: Duration,
        can_publish: bool,
        now: u64,
    ) -> String {
        let expires = now.saturating_add(ttl.as_secs());
        let rights = if can_publish { "rw" } else { "r" };
        let signature = self.sign(scope, channel, user, expires, rights);
        format!(
            "v1.{expires}.{rights}.{}.{}",
            URL_SAFE_NO_PAD.encode(user),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    /// What `token` grants on `channel` of scope `scope` at `now`, or why it grants nothing.
    pub fn check(
        &self,
        scope: &str,
        channel: &str,
        token: &str,
        now: u64,
    ) -> Result<Grant, Refused> {
        if token.is_empty() {
            return Err(Refused::Missing);
        }
        if token.len() > MAX_TOKEN {
            return Err(Refused::Malformed);
        }
        if !token.starts_with("v1.") {
            return match &self.jwt {
                Some(jwt) => jwt.check(channel, token, now),
                None => Err(Refused::Malformed),
            };
        }
        let parts: Vec<&str> = token.split('.').collect();
        let [version, expires, rights, user, signature] = parts[..] else {
            return Err(Refused::Malformed);
        };
        let expires: u64 = expires.parse().map_err(|_| Refused::Malformed)?;
        let user = URL_SAFE_NO_PAD
            .decode(user)
            .ok()
            .and_then(|user| String::from_utf8(user).ok())
            .filter(|user| user.len() <= MAX_USER)
            .ok_or(Refused::Malformed)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| Refused::Malformed)?;
        if version != "v1" || !matches!(rights, "rw" | "r") {
            return Err(Refused::Malformed);
        }
        self.mac(scope, channel, &user, expires, rights)
            .verify_slice(&signature)
            .map_err(|_| Refused::Forged)?;
        if expires <= now {
            return Err(Refused::Expired);
        }
        Ok(Grant {
            user,
            can_publish: rights == "rw",
            expires,
        })
    }

    fn sign(&self, scope: &str, channel: &str, user: &str, expires: u64, rights: &str) -> Vec<u8> {
        let mac = self.mac(scope, channel, user, expires, rights);
        mac.finalize().into_bytes().to_vec()
    }

    fn mac(
        &self,
        scope: &str,
        channel: &str,
        user: &str,
        expires: u64,
        rights: &str,
    ) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key");
        mac.update(b"wisp websocket token v1");
        let expires = expires.to_string();
        for part in [scope, channel, user, &expires, rights] {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part.as_bytes());
        }
        mac
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn a_token_works_for_its_channel_until_it_expires() {
        let tokens = Tokens::new(b"key".to_vec());
        let hour = Duration::from_secs(3600);
        let token = tokens.issue("abc", "room/1", "alice", hour, false, NOW);
        let grant = tokens.check("abc", "room/1", &token, NOW + 10).unwrap();
        assert_eq!(
            grant,
            Grant {
                user: "alice".into(),
                can_publish: false,
                expires: NOW + 3600
            }
        );
        assert_eq!(
            tokens.check("abc", "room/1", &token, NOW + 3600),
            Err(Refused::Expired)
        );
        assert_eq!(
            tokens.check("abc", "room/2", &token, NOW),
            Err(Refused::Forged)
        );
        assert_eq!(
            tokens.check("abd", "room/1", &token, NOW),
            Err(Refused::Forged)
        );
        let other_key = Tokens::new(b"other".to_vec());
        assert_eq!(
            other_key.check("abc", "room/1", &token, NOW),
            Err(Refused::Forged)
        );
        let anonymous = tokens.issue("abc", "room/1", "", hour, true, NOW);
        assert!(
            tokens
                .check("abc", "room/1", &anonymous, NOW)
                .unwrap()
                .can_publish
        );
    }

    #[test]
    fn altered_and_malformed_tokens_are_refused() {
        let tokens = Tokens::new(b"key".to_vec());
        let token = tokens.issue("abc", "c", "bob", Duration::from_secs(60), false, NOW);
        let parts: Vec<&str> = token.split('.').collect();
        // More rights, a later expiry, another user: the signature no longer matches.
        for altered in [
            format!("v1.{}.rw.{}.{}", parts[1], parts[3], parts[4]),
            format!("v1.{}.r.{}.{}", NOW + 999_999, parts[3], parts[4]),
            format!(
                "v1.{}.r.{}.{}",
                parts[1],
                URL_SAFE_NO_PAD.encode("eve"),
                parts[4]
            ),
        ] {
            assert_eq!(
                tokens.check("abc", "c", &altered, NOW),
                Err(Refused::Forged),
                "{altered}"
            );
        }
        assert_eq!(tokens.check("abc", "c", "", NOW), Err(Refused::Missing));
        for bad in [
            "x".to_owned(),
            "v1.1.r.a".to_owned(),
            format!("v2.{}.r.{}.{}", parts[1], parts[3], parts[4]),
            format!("v1.{}.rx.{}.{}", parts[1], parts[3], parts[4]),
            format!("v1.soon.r.{}.{}", parts[3], parts[4]),
            format!("v1.{}.r.{}.***", parts[1], parts[3]),
            "v1.".repeat(MAX_TOKEN),
        ] {
            assert_eq!(
                tokens.check("abc", "c", &bad, NOW),
                Err(Refused::Malformed),
                "{bad:.40}"
            );
        }
    }
}
