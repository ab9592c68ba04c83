//! [`Verified`]: a session that passed the revocation check, as a type.

use std::fmt;

use time::OffsetDateTime;

use crate::sealer::{Opened, Reissue};
use crate::session::Session;

/// A session that opened **and** passed the revocation check
/// ([`Verifier::open`](crate::Verifier::open)), or that this server sealed
/// itself ([`Verifier::issue`](crate::Verifier::issue)). A plain
/// [`Sealer::open`](crate::Sealer::open) gives an [`Opened`] instead, so
/// code that asks for a `Verified` cannot be handed a session whose
/// revocation check was forgotten:
///
/// ```compile_fail,E0308
/// use sealed_session::{Keyring, Sealer, Session, Verified};
///
/// fn handler(session: Verified<()>) {}
///
/// let sealer = Sealer::builder(Keyring::generate().unwrap()).build().unwrap();
/// let token = sealer.seal(&Session::new(())).unwrap();
/// handler(sealer.open::<()>(&token).unwrap()); // an Opened: does not compile
/// ```
///
/// ```compile_fail,E0624
/// # use sealed_session::{Keyring, Sealer, Session, Verified};
/// # let sealer = Sealer::builder(Keyring::generate().unwrap()).build().unwrap();
/// # let token = sealer.seal(&Session::new(())).unwrap();
/// let forged = Verified::new(sealer.open::<()>(&token).unwrap()); // private: does not compile
/// ```
///
/// The same handler given what a verifier opened compiles, so the two
/// above fail for the line they name alone:
///
/// ```
/// use sealed_session::{Keyring, MemoryStore, Sealer, Session, Verified, Verifier};
///
/// fn handler(session: Verified<()>) {}
///
/// let sealer = Sealer::builder(Keyring::generate().unwrap()).build().unwrap();
/// let verifier = Verifier::new(sealer, MemoryStore::new());
/// let token = verifier.sealer().seal(&Session::new(())).unwrap();
/// handler(pollster::block_on(verifier.open::<()>(&token)).unwrap());
/// ```
#[derive(Clone)]
pub struct Verified<T> {
    opened: Opened<T>,
}

impl<T> Verified<T> {
    pub(crate) fn new(opened: Opened<T>) -> Self {
        Self { opened }
    }

    /// Marks it due for an idle renewal (see [`Opened::reissue`]).
    pub(crate) fn renew(&mut self) {
        self.opened.renew();
    }

    /// The session.
    #[must_use]
    pub fn session(&self) -> &Session<T> {
        self.opened.session()
    }

    /// The session, to change it or seal it again.
    #[must_use]
    pub fn into_session(self) -> Session<T> {
        self.opened.into_session()
    }

    /// The ID of the key that sealed the token.
    #[must_use]
    pub fn key_id(&self) -> u32 {
        self.opened.key_id()
    }

    /// When the session ends if it sees no further activity.
    #[must_use]
    pub fn idle_expires_at(&self) -> OffsetDateTime {
        self.opened.idle_expires_at()
    }

    /// Whether, and why, to seal the session again and send the new token.
    #[must_use]
    pub fn reissue(&self) -> Option<Reissue> {
        self.opened.reissue()
    }

    /// What opening the token gave, before the check.
    #[must_use]
    pub fn opened(&self) -> &Opened<T> {
        &self.opened
    }
}

impl Verified<Vec<u8>> {
    /// The session of a token opened with [`Verifier::open_raw`](crate::Verifier::open_raw),
    /// with its data decoded as `T` (see [`Opened::decode`]).
    ///
    /// # Errors
    /// As [`Opened::decode`].
    pub fn decode<T: serde::de::DeserializeOwned>(&self) -> Result<Verified<T>, crate::OpenError> {
        Ok(Verified::new(self.opened.decode()?))
    }
}

impl<T> fmt::Debug for Verified<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Verified").field(&self.opened).finish()
    }
}
