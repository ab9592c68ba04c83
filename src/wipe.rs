//! Compile-time proof, for SECURITY.md, that a secret wipes itself on drop:
//! each holder of key material names its own fields with these, so that
//! changing one to a type that does not wipe fails to compile.

use zeroize::ZeroizeOnDrop;

/// `_` wipes itself when dropped.
pub(crate) fn wiped_on_drop<T: ZeroizeOnDrop + ?Sized>(_: &T) {}

/// As [`wiped_on_drop`], for a type held inside another crate's type.
pub(crate) fn type_wiped_on_drop<T: ZeroizeOnDrop + ?Sized>() {}
