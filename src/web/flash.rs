//! Flash messages: one-shot notices that survive one redirect.
//!
//! They travel in a small sealed cookie of their own (the session cookie's
//! name with `-flash` appended, sealed under a purpose of its own), so that
//! they work before login and survive logout ("Signed out"), and a session
//! token can never be read as one or the other way round.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{CookieSpec, SealError, Sealer, Session};

use crate::cookie::CookieChange;

/// How long flash messages wait to be read: 10 minutes from the oldest
/// unread one (messages added to unread ones wait only as long as they do).
/// A message not shown by then is dropped.
pub const FLASH_TIMEOUT: Duration = Duration::from_secs(10 * 60);

/// At most this many messages wait at once; older ones are dropped first.
pub const MAX_FLASHES: usize = 8;

/// How a flash message should look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Level {
    /// Something the user may want to know.
    Info,
    /// An action worked ("Signed in as alice").
    Success,
    /// Something the user should look at.
    Warning,
    /// An action failed ("Wrong user name or password").
    Error,
}

impl Level {
    /// The level as a lower-case word (`info`, `success`, `warning`,
    /// `error`), for CSS classes and JSON.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Success => "success",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// One flash message. Its text is the application's own: escape it when
/// writing it into HTML, like any other text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flash {
    /// How it should look.
    pub level: Level,
    /// What it says.
    pub message: String,
}

/// How flash messages are sealed: shared by every request.
pub(crate) struct FlashConfig {
    pub(crate) sealer: Sealer,
    pub(crate) cookie: CookieSpec,
}

/// The flash messages of one request, kept with its session state: those it
/// brought (opened only when the handler reads or adds messages), and those
/// added since.
#[derive(Default)]
pub(crate) struct FlashState {
    /// The values of the request's flash cookie, until opened.
    unopened: Vec<Box<str>>,
    /// The messages waiting, in the session that carries their times: a
    /// message added re-seals it with its start and expiry, so adding one
    /// never keeps older ones past [`FLASH_TIMEOUT`].
    pending: Option<Session<Vec<Flash>>>,
    /// Whether the request carried a flash cookie (to remove once read).
    sent: bool,
    change: Option<CookieChange>,
}

impl FlashState {
    /// The request's flash cookie values, opened when first needed. A
    /// `HEAD` request (a link checker's, a prefetch's) that reads them
    /// removes nothing: the page the user then opens still shows them.
    pub(crate) fn new(values: Vec<Box<str>>, head: bool) -> Self {
        Self { sent: !values.is_empty() && !head, unopened: values, ..Self::default() }
    }

    /// Opens the request's messages, once: the first value that opens.
    fn open(&mut self, config: &FlashConfig) {
        for value in std::mem::take(&mut self.unopened) {
            match config.sealer.open::<Vec<Flash>>(&value) {
                Ok(opened) => {
                    self.pending = Some(opened.into_session());
                    return;
                }
                Err(err) => tracing::info!(reason = %err, "flash cookie refused"),
            }
        }
    }

    /// Adds a message for the next page; the oldest go beyond [`MAX_FLASHES`].
    pub(crate) fn push(&mut self, config: &FlashConfig, flash: Flash) -> Result<(), SealError> {
        self.open(config);
        let with = |mut session: Session<Vec<Flash>>| {
            session.data_mut().push(flash.clone());
            let excess = session.data().len().saturating_sub(MAX_FLASHES);
            session.data_mut().drain(..excess);
            config.sealer.issue_cookie(session, &config.cookie)
        };
        let issued = match self.pending.clone() {
            // The waiting messages' time ran out since they were opened:
            // they are dropped, as they would be on the next request.
            Some(waiting) => match with(waiting) {
                Err(SealError::Expired) => with(Session::try_new(Vec::new())?),
                issued => issued,
            },
            None => with(Session::try_new(Vec::new())?),
        };
        let (opened, header) = issued?;
        self.pending = Some(opened.into_session());
        self.change = Some(CookieChange::Set(header));
        Ok(())
    }

    /// The messages not yet read, which are then gone.
    pub(crate) fn take(&mut self, config: &FlashConfig) -> Vec<Flash> {
        self.open(config);
        self.change = self.sent.then_some(CookieChange::Remove);
        self.pending.take().map(Session::into_data).unwrap_or_default()
    }

    /// What the response must do with the flash cookie, once.
    pub(crate) fn finish(&mut self) -> Option<CookieChange> {
        self.change.take()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

    use super::*;
    use crate::{Keyring, ManualClock};

    /// Messages added to unread ones keep their time; if that time runs out
    /// between opening them and adding, the new message starts afresh.
    #[test]
    fn a_message_added_as_the_waiting_ones_expire_is_kept_alone() {
        let clock = ManualClock::at_unix(1_000_000);
        let sealer = Sealer::builder(Keyring::generate().unwrap()).clock(clock.clone()).build().unwrap();
        let config = FlashConfig {
            sealer: sealer.derived("f", FLASH_TIMEOUT).unwrap(),
            cookie: CookieSpec::named("f").unwrap(),
        };
        let flash = |message: &str| Flash { level: Level::Info, message: message.into() };

        let mut first = FlashState::default();
        first.push(&config, flash("old")).unwrap();
        let Some(CookieChange::Set(header)) = first.finish() else { panic!("a flash cookie") };
        let value = header.split(';').next().unwrap().strip_prefix("f=").unwrap();

        let mut next = FlashState::new(vec![value.into()], false);
        clock.advance(FLASH_TIMEOUT - Duration::from_secs(1));
        next.open(&config);
        clock.advance(Duration::from_secs(2));
        next.push(&config, flash("new")).unwrap();
        assert_eq!(next.take(&config), [flash("new")]);
    }
}
