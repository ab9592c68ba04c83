//! [`SharedKeyring`]: a keyring replaced while the server runs.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
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
pub struct SharedKeyring(Arc<Shared>);

struct Shared {
    current: ArcSwap<Keyring>,
    /// How many times the keyring was replaced.
    replaced: AtomicU64,
}

impl SharedKeyring {
    /// Shares `keyring`.
    #[must_use]
    pub fn new(keyring: Keyring) -> Self {
        crate::metrics::keyring_in_use(&keyring, None);
        Self(Arc::new(Shared { current: ArcSwap::from_pointee(keyring), replaced: AtomicU64::new(0) }))
    }

    /// The keyring in use now. Operations already under way keep the keyring
    /// they started with.
    #[must_use]
    pub fn current(&self) -> Arc<Keyring> {
        self.0.current.load_full()
    }

    pub(crate) fn load(&self) -> arc_swap::Guard<Arc<Keyring>> {
        self.0.current.load()
    }

    /// How many times the keyring was replaced: read before
    /// [`load`](Self::load), a count that moved means a keyring not seen yet.
    pub(crate) fn replacements(&self) -> u64 {
        self.0.replaced.load(Ordering::SeqCst)
    }

    /// Makes `keyring` the one in use, for every clone of this handle. Usage
    /// counters of keys kept by ID carry over (approximately: counts made
    /// while the swap happens may be lost).
    pub fn replace(&self, keyring: Keyring) {
        let (old, new) = (self.0.current.load_full(), Arc::new(keyring));
        carry_usage(&old, &new);
        self.0.current.store(Arc::clone(&new));
        self.replaced(&new, &old);
    }

    /// [`replace`](Self::replace), but only while the keyring in use is
    /// still `expected` (what a new version was judged against); whether it
    /// was.
    #[cfg(feature = "watch")]
    pub(crate) fn replace_if(&self, expected: &Arc<Keyring>, new: Arc<Keyring>) -> bool {
        carry_usage(expected, &new);
        let was = self.0.current.compare_and_swap(expected, Arc::clone(&new));
        if !Arc::ptr_eq(&was, expected) {
            return false;
        }
        self.replaced(&new, expected);
        true
    }

    /// What follows a replacement of `old` by `new`.
    fn replaced(&self, new: &Keyring, old: &Keyring) {
        crate::metrics::keyring_in_use(new, Some(old));
        self.0.replaced.fetch_add(1, Ordering::SeqCst);
    }
}

/// Carries the usage counters of the keys `new` keeps from `old`.
fn carry_usage(old: &Keyring, new: &Keyring) {
    for entry in &new.entries {
        if let Some(previous) = old.entry(entry.spec.id) {
            entry.sealed.store(previous.sealed.load(Ordering::Relaxed), Ordering::Relaxed);
            entry.opened.store(previous.opened.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }
}

impl From<Keyring> for SharedKeyring {
    fn from(keyring: Keyring) -> Self {
        Self::new(keyring)
    }
}

impl fmt::Debug for SharedKeyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SharedKeyring").field(&**self.0.current.load()).finish()
    }
}

#[cfg(all(test, feature = "watch"))]
mod tests {
    use std::sync::Arc;

    use super::SharedKeyring;
    use crate::Keyring;

    /// A replacement judged against a keyring no longer in use is not made:
    /// the one put in place meanwhile stays.
    #[test]
    fn a_replacement_judged_against_an_older_keyring_is_not_made() {
        let shared = SharedKeyring::new(Keyring::generate().unwrap());
        let judged_against = shared.current();
        let meanwhile = Keyring::generate().unwrap();
        let meanwhile_primary = meanwhile.primary_id();
        shared.replace(meanwhile);
        let stale = Arc::new(Keyring::generate().unwrap());
        assert!(!shared.replace_if(&judged_against, stale));
        assert_eq!(shared.current().primary_id(), meanwhile_primary);
        assert_eq!(shared.replacements(), 1);
        let newer = Arc::new(Keyring::generate().unwrap());
        assert!(shared.replace_if(&shared.current(), Arc::clone(&newer)));
        assert!(Arc::ptr_eq(&shared.current(), &newer));
        assert_eq!(shared.replacements(), 2);
    }
}
