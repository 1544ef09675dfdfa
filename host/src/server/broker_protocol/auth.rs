//! `AUTH:<token>`: the tokens a socket presented, which open private channels
//! (`wisp.private`) to it: a Wisp token for the one channel it names, a JWT for the channels
//! of its claims (see `messaging::token`). Nothing is answered for an `AUTH:` itself; a
//! `SUBSCRIBE:` or `PUBLISH:` on a private channel that no token opens gets an `ERROR:`
//! line saying why. Tokens are never repeated in a log or an `ERROR:` line.
//!
//! The first token that opens a private channel and names a user signs the socket in as
//! that user: its private messages (`PUBLISH:@<user>:`) reach the socket, and its own are
//! sent as from that user. A Wisp token is checked only with the channel it names, so a
//! socket is signed in by using one, not by presenting it.

use crate::messaging::token::{now_secs, Refused, Tokens, MAX_TOKEN};
use std::collections::VecDeque;

/// Tokens one socket keeps; an `AUTH:` past it forgets the oldest.
pub const MAX_TOKENS: usize = 16;

/// The tokens a socket presented, newest last.
#[derive(Default)]
pub(super) struct Auth {
    tokens: VecDeque<String>,
    /// Who the socket is signed in as.
    user: Option<String>,
}

impl Auth {
    /// Keeps `token` (its checks come with the channels it is used for).
    pub(super) fn add(&mut self, token: String) -> Result<(), String> {
        if token.len() > MAX_TOKEN {
            return Err(format!(
                "a token of {} bytes; at most {MAX_TOKEN}",
                token.len()
            ));
        }
        if self.tokens.len() >= MAX_TOKENS {
            self.tokens.pop_front();
        }
        self.tokens.push_back(token);
        Ok(())
    }

    /// Who the socket is signed in as, if anyone.
    pub(super) fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Whether some token opens `channel` of scope `scope` (to publish, if `publish`); the
    /// `ERROR:` reason if none does. The first that does and names a user signs the socket in.
    pub(super) fn admits(
        &mut self,
        tokens: &Tokens,
        scope: &str,
        channel: &str,
        publish: bool,
        shown: &str,
    ) -> Result<(), String> {
        let now = now_secs();
        let mut why = Refused::Missing;
        for token in self.tokens.iter().rev() {
            match tokens.check(scope, channel, token, now) {
                Ok(grant) if publish && !grant.can_publish => {
                    return Err(format!("channel `{shown}`: your token may not publish"));
                }
                Ok(grant) => {
                    if self.user.is_none() && !grant.user.is_empty() {
                        self.user = Some(grant.user);
                    }
                    return Ok(());
                }
                Err(refused) => why = refused,
            }
        }
        Err(match why {
            Refused::Missing => {
                format!("channel `{shown}` is private: send AUTH:<token> with a token for it first")
            }
            why => format!("channel `{shown}` is private, and no token sent opens it: {why}"),
        })
    }
}
