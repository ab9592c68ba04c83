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
//! alone. A token whose data is `Versioned` says so in what its tag
//! authenticates (a flag in token version 2; in version 1, the sealer's
//! purpose with `+versioned` appended; docs/FORMAT.md), so that
//! unversioned data can never be read as versioned or the other way
//! round: bytes of an old unversioned type could otherwise parse as a
//! version and a byte string that the user chose. Wrapping an existing
//! unversioned type in `Versioned` therefore ends every session sealed
//! before (they fail authentication, [`OpenError::Invalid`](crate::OpenError::Invalid)):
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
///
/// Only as the session's data type itself: the sealer sets the token's
/// versioned-data flag for a `Versioned<T>` at the top, not for one inside
/// another type (`struct S { p: Versioned<P> }`, `Option<Versioned<P>>`),
/// which is sealed as plain data, without the flag's protection against
/// reading another type's bytes as a version and its data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Versioned<T>(pub T);

/// The name `Versioned<T>` gives serde for itself: how the sealer tells a
/// versioned type from any other (postcard writes nothing for it).
pub(crate) const MARK: &str = "sealed_session::Versioned";

impl<T: SessionData> Serialize for Versioned<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_newtype_struct(MARK, &Encoded(&self.0))
    }
}

/// The version and the data's own postcard bytes.
struct Encoded<'a, T>(&'a T);

impl<T: SessionData> Serialize for Encoded<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let bytes = postcard::to_allocvec(self.0).map_err(serde::ser::Error::custom)?;
        (T::VERSION, BytesRef(&bytes)).serialize(serializer)
    }
}

impl<'de, T: SessionData> Deserialize<'de> for Versioned<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<T>(std::marker::PhantomData<T>);
        impl<'de, T: SessionData> serde::de::Visitor<'de> for Visitor<T> {
            type Value = Versioned<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("versioned session data")
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                deserializer: D,
            ) -> Result<Self::Value, D::Error> {
                let (version, bytes) = <(u32, ByteBuf)>::deserialize(deserializer)?;
                let data =
                    if version == T::VERSION { decode::<T>(&bytes.0) } else { T::migrate(version, &bytes.0) };
                data.map(Versioned)
                    .ok_or_else(|| D::Error::custom(format_args!("session data version {version}")))
            }
        }
        deserializer.deserialize_newtype_struct(MARK, Visitor(std::marker::PhantomData))
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

/// Whether `data` is a [`Versioned`] value: its serialization begins as
/// `Versioned`'s does. Stops at the first call, so it costs nothing.
pub(crate) fn is_versioned<T: Serialize + ?Sized>(data: &T) -> bool {
    let found = std::cell::Cell::new(false);
    let _ = data.serialize(probe::Serializer(&found));
    found.get()
}

/// Whether `T` is a [`Versioned`] type: its deserialization begins as
/// `Versioned`'s does. Stops at the first call, so it costs nothing.
pub(crate) fn expects_versioned<T: for<'de> Deserialize<'de>>() -> bool {
    let found = std::cell::Cell::new(false);
    let _ = T::deserialize(probe::Deserializer(&found));
    found.get()
}

/// A serializer and a deserializer that only note whether the first thing
/// asked of them is `Versioned`'s newtype, and then fail.
mod probe {
    use std::cell::Cell;

    use serde::ser::Impossible;

    /// The error both return, always.
    #[derive(Debug)]
    pub(super) struct Stop;

    impl std::fmt::Display for Stop {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("probe")
        }
    }

    impl std::error::Error for Stop {}

    impl serde::ser::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Stop
        }
    }

    impl serde::de::Error for Stop {
        fn custom<M: std::fmt::Display>(_: M) -> Self {
            Stop
        }
    }

    pub(super) struct Serializer<'a>(pub(super) &'a Cell<bool>);

    macro_rules! stop {
        ($($method:ident($($arg:ty),*) -> $ret:ty;)*) => {
            $(fn $method(self, $(_: $arg),*) -> Result<$ret, Stop> { Err(Stop) })*
        };
    }

    impl serde::Serializer for Serializer<'_> {
        type Ok = ();
        type Error = Stop;
        type SerializeSeq = Impossible<(), Stop>;
        type SerializeTuple = Impossible<(), Stop>;
        type SerializeTupleStruct = Impossible<(), Stop>;
        type SerializeTupleVariant = Impossible<(), Stop>;
        type SerializeMap = Impossible<(), Stop>;
        type SerializeStruct = Impossible<(), Stop>;
        type SerializeStructVariant = Impossible<(), Stop>;

        fn serialize_newtype_struct<T: serde::Serialize + ?Sized>(
            self,
            name: &'static str,
            _: &T,
        ) -> Result<(), Stop> {
            self.0.set(name == super::MARK);
            Err(Stop)
        }

        fn serialize_some<T: serde::Serialize + ?Sized>(self, _: &T) -> Result<(), Stop> {
            Err(Stop)
        }

        fn serialize_newtype_variant<T: serde::Serialize + ?Sized>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<(), Stop> {
            Err(Stop)
        }

        stop! {
            serialize_bool(bool) -> ();
            serialize_i8(i8) -> ();
            serialize_i16(i16) -> ();
            serialize_i32(i32) -> ();
            serialize_i64(i64) -> ();
            serialize_i128(i128) -> ();
            serialize_u8(u8) -> ();
            serialize_u16(u16) -> ();
            serialize_u32(u32) -> ();
            serialize_u64(u64) -> ();
            serialize_u128(u128) -> ();
            serialize_f32(f32) -> ();
            serialize_f64(f64) -> ();
            serialize_char(char) -> ();
            serialize_str(&str) -> ();
            serialize_bytes(&[u8]) -> ();
            serialize_none() -> ();
            serialize_unit() -> ();
            serialize_unit_struct(&'static str) -> ();
            serialize_unit_variant(&'static str, u32, &'static str) -> ();
            serialize_seq(Option<usize>) -> Self::SerializeSeq;
            serialize_tuple(usize) -> Self::SerializeTuple;
            serialize_tuple_struct(&'static str, usize) -> Self::SerializeTupleStruct;
            serialize_tuple_variant(&'static str, u32, &'static str, usize) -> Self::SerializeTupleVariant;
            serialize_map(Option<usize>) -> Self::SerializeMap;
            serialize_struct(&'static str, usize) -> Self::SerializeStruct;
            serialize_struct_variant(&'static str, u32, &'static str, usize) -> Self::SerializeStructVariant;
        }
    }

    pub(super) struct Deserializer<'a>(pub(super) &'a Cell<bool>);

    impl<'de> serde::Deserializer<'de> for Deserializer<'_> {
        type Error = Stop;

        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
            Err(Stop)
        }

        fn deserialize_newtype_struct<V: serde::de::Visitor<'de>>(
            self,
            name: &'static str,
            _: V,
        ) -> Result<V::Value, Stop> {
            self.0.set(name == super::MARK);
            Err(Stop)
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct seq tuple tuple_struct map struct enum identifier ignored_any
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize)]
    struct Plain {
        name: String,
    }

    impl SessionData for Plain {
        const VERSION: u32 = 1;
    }

    #[test]
    fn the_probes_tell_versioned_data_from_any_other() {
        assert!(is_versioned(&Versioned(Plain { name: "a".into() })));
        assert!(expects_versioned::<Versioned<Plain>>());
        assert!(!is_versioned(&Plain { name: "a".into() }));
        assert!(!expects_versioned::<Plain>());
        for plain in
            [is_versioned(&()), is_versioned(&vec![1u8]), is_versioned(&Some(1u32)), is_versioned("x")]
        {
            assert!(!plain);
        }
        assert!(!expects_versioned::<Option<Versioned<Plain>>>(), "only the data itself counts");
        assert!(!expects_versioned::<(u32, Vec<u8>)>());
        assert!(!expects_versioned::<Vec<u8>>());
    }
}
