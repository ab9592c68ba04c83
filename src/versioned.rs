//! Changing the session's data type without logging everyone out.
//!
//! Session data is encoded with postcard, which is positional: a token
//! records the fields' values in order, not their names, and nothing says
//! which type wrote them. After an unversioned change, an old token is
//! refused ([`OpenError::DataMismatch`](crate::OpenError::DataMismatch))
//! only if its bytes happen not to fit the new type. Often they fit, and
//! are read wrongly: two swapped fields of one type trade values, and a
//! field inserted before data the user chose (a cart item) is read from
//! that data, so a user could set a new `is_admin: bool` in their own old
//! token. To change the type safely, and keep users signed in, wrap the
//! data in [`Versioned`] from the start and give the type a [`SessionData`]
//! version and a migration from older versions:
//!
//! ```
//! use sealed_session::versioned::{SessionData, Versioned};
//! use sealed_session::{Keyring, Sealer, Session};
//! use serde::{Deserialize, Serialize};
//!
//! // What version 1 stored.
//! #[derive(Serialize, Deserialize)]
//! struct ProfileV1 { name: String }
//!
//! // Version 2 renames `name` and adds `theme`.
//! #[derive(Serialize, Deserialize)]
//! struct Profile { display_name: String, theme: String }
//!
//! impl SessionData for Profile {
//!     const VERSION: u32 = 2;
//!     fn migrate(version: u32, bytes: &[u8]) -> Option<Self> {
//!         match version {
//!             1 => {
//!                 let old: ProfileV1 = sealed_session::versioned::decode(bytes)?;
//!                 Some(Profile { display_name: old.name, theme: "light".into() })
//!             }
//!             _ => None,
//!         }
//!     }
//! }
//! # impl SessionData for ProfileV1 { const VERSION: u32 = 1; }
//!
//! let sealer = Sealer::builder(Keyring::generate()?).build()?;
//! // A token from before the change...
//! let old = sealer.seal(&Session::new(Versioned(ProfileV1 { name: "Alice".into() })))?;
//! // ...opens as the new type.
//! let opened = sealer.open::<Versioned<Profile>>(&old)?;
//! assert_eq!(opened.session().data().0.display_name, "Alice");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A `Versioned<T>` is encoded as the version (a varint) and then `T`'s
//! postcard bytes with a length prefix: one to three bytes more than `T`
//! alone. Wrapping an existing unversioned type is itself a change of type:
//! do it before the first release, or accept one logout.

use serde::de::{Deserializer, Error as _};
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

/// Session data with a version, and a way to read older versions.
pub trait SessionData: Serialize + for<'de> Deserialize<'de> {
    /// This type's version. Increase it with every change to the type's
    /// fields (their order, types or number), and teach
    /// [`SessionData::migrate`] to read the version it replaces.
    const VERSION: u32;

    /// The data of a token sealed with version `version` (never
    /// [`SessionData::VERSION`]), given as that version's postcard bytes;
    /// `None` if it cannot be read, which refuses the token
    /// ([`OpenError::DataMismatch`](crate::OpenError::DataMismatch)). By
    /// default no older version is read.
    fn migrate(version: u32, bytes: &[u8]) -> Option<Self> {
        let _ = (version, bytes);
        None
    }
}

/// Session data sealed with its [`SessionData::VERSION`], and read back
/// through [`SessionData::migrate`] when a token carries an older version.
/// See the [module documentation](self).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Versioned<T>(pub T);

impl<T: SessionData> Serialize for Versioned<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let bytes = postcard::to_allocvec(&self.0).map_err(serde::ser::Error::custom)?;
        (T::VERSION, BytesRef(&bytes)).serialize(serializer)
    }
}

impl<'de, T: SessionData> Deserialize<'de> for Versioned<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let (version, bytes) = <(u32, ByteBuf)>::deserialize(deserializer)?;
        let data = if version == T::VERSION { decode::<T>(&bytes.0) } else { T::migrate(version, &bytes.0) };
        data.map(Versioned).ok_or_else(|| D::Error::custom(format_args!("session data version {version}")))
    }
}

/// Decodes one version's bytes (as [`SessionData::migrate`] receives them)
/// as `T`, that version's type: `None` unless they decode and nothing is
/// left over.
#[must_use]
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Option<T> {
    match postcard::take_from_bytes::<T>(bytes) {
        Ok((data, [])) => Some(data),
        _ => None,
    }
}

/// Bytes serialized as one length-prefixed byte string.
struct BytesRef<'a>(&'a [u8]);

impl Serialize for BytesRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

/// Owned bytes read from one length-prefixed byte string.
struct ByteBuf(Vec<u8>);

impl<'de> Deserialize<'de> for ByteBuf {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = ByteBuf;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<ByteBuf, E> {
                Ok(ByteBuf(bytes.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<ByteBuf, E> {
                Ok(ByteBuf(bytes))
            }
        }
        deserializer.deserialize_bytes(Visitor)
    }
}
