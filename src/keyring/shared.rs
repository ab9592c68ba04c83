//! [`SharedKeyring`]: a keyring replaced while the server runs.

use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use arc_swap::ArcSwap;

use super::Keyring;

/// A keyring that can be replaced atomically while other threads seal and
/// open. Cloning is cheap and shares the same keyring.
///
/// ```
/// use sealed_session::{Keyring, SharedKeyring};
///
/// let shared = SharedKeyring::new(Keyring::generate()?);
/// // Later, after the operator edited the keyring file:
/// shared.replace(Keyring::generate()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SharedKeyring(Arc<ArcSwap<Keyring>>);

impl SharedKeyring {
    /// Shares `keyring`.
    #[must_use]
    pub fn new(keyring: Keyring) -> Self {
        crate::metrics::keyring_in_use(&keyring, None);
        Self(Arc::new(ArcSwap::from_pointee(keyring)))
    }

    /// The keyring in use now. Operations already under way keep the keyring
    /// they started with.
    #[must_use]
    pub fn current(&self) -> Arc<Keyring> {
        self.0.load_full()
    }

    pub(crate) fn load(&self) -> arc_swap::Guard<Arc<Keyring>> {
        self.0.load()
    }

    /// Makes `keyring` the one in use, for every clone of this handle. Usage
    /// counters of keys kept by ID carry over (approximately: counts made
    /// while the swap happens may be lost).
    pub fn replace(&self, keyring: Keyring) {
        let old = self.0.load();
        for entry in &keyring.entries {
            if let Some(previous) = old.entry(entry.spec.id) {
                entry.sealed.store(previous.sealed.load(Ordering::Relaxed), Ordering::Relaxed);
                entry.opened.store(previous.opened.load(Ordering::Relaxed), Ordering::Relaxed);
            }
        }
        crate::metrics::keyring_in_use(&keyring, Some(&old));
        self.0.store(Arc::new(keyring));
    }
}

impl From<Keyring> for SharedKeyring {
    fn from(keyring: Keyring) -> Self {
        Self::new(keyring)
    }
}

impl fmt::Debug for SharedKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SharedKeyring").field(&**self.0.load()).finish()
    }
}
