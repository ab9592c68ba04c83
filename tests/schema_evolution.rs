//! Changing the session type: what breaks without a version, and how
//! `Versioned` with a migration keeps users signed in through adding,
//! renaming and removing fields.
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use sealed_session::versioned::{decode, SessionData, Versioned};
use sealed_session::{Keyring, OpenError, Sealer, Session};
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct V1 {
    name: String,
}

/// Adds `theme`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct V2 {
    name: String,
    theme: String,
}

/// Renames `name` to `display_name`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct V3 {
    display_name: String,
    theme: String,
}

/// Removes `theme`.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct V4 {
    display_name: String,
}

impl SessionData for V1 {
    const VERSION: u32 = 1;
}

impl SessionData for V2 {
    const VERSION: u32 = 2;
    fn migrate(version: u32, bytes: &[u8]) -> Option<Self> {
        let V1 { name } = (version == 1).then(|| decode(bytes)).flatten()?;
        Some(V2 { name, theme: "light".into() })
    }
}

impl SessionData for V3 {
    const VERSION: u32 = 3;
    fn migrate(version: u32, bytes: &[u8]) -> Option<Self> {
        let V2 { name, theme } = match version {
            2 => decode(bytes)?,
            older => V2::migrate(older, bytes)?,
        };
        Some(V3 { display_name: name, theme })
    }
}

impl SessionData for V4 {
    const VERSION: u32 = 4;
    fn migrate(version: u32, bytes: &[u8]) -> Option<Self> {
        let V3 { display_name, .. } = match version {
            3 => decode(bytes)?,
            older => V3::migrate(older, bytes)?,
        };
        Some(V4 { display_name })
    }
}

fn sealer() -> Sealer {
    Sealer::builder(Keyring::generate().unwrap()).build().unwrap()
}

#[test]
fn without_a_version_a_changed_type_logs_users_out_or_is_misread() {
    let sealer = sealer();
    let token = sealer.seal(&Session::new(V1 { name: "Alice".into() })).unwrap();
    // An added field: every token is refused.
    assert_eq!(sealer.open::<V2>(&token).unwrap_err(), OpenError::DataMismatch);
    // Two fields of one type swapped: read without an error, and wrong.
    #[derive(Serialize, Deserialize)]
    struct Pair {
        first: String,
        last: String,
    }
    #[derive(Serialize, Deserialize)]
    struct Swapped {
        last: String,
        first: String,
    }
    let pair = Pair { first: "Ada".into(), last: "Lovelace".into() };
    let token = sealer.seal(&Session::new(pair)).unwrap();
    let swapped = sealer.open::<Swapped>(&token).unwrap().into_session().into_data();
    assert_eq!((swapped.first.as_str(), swapped.last.as_str()), ("Lovelace", "Ada"));
}

#[test]
fn a_field_added_renamed_and_removed_keeps_every_older_token_open() {
    let sealer = sealer();
    let v1 =
        sealer.seal(&Session::new(Versioned(V1 { name: "Alice".into() })).with_user("alice", 0)).unwrap();
    let v2 = sealer.seal(&Session::new(Versioned(V2 { name: "Bob".into(), theme: "dark".into() }))).unwrap();
    let v3 = sealer
        .seal(&Session::new(Versioned(V3 { display_name: "Carol".into(), theme: "dark".into() })))
        .unwrap();

    let open = |token: &str| sealer.open::<Versioned<V4>>(token).unwrap().into_session();
    let alice = open(&v1);
    assert_eq!(alice.data().0, V4 { display_name: "Alice".into() });
    assert_eq!(alice.user_id(), Some("alice"), "only the data changes");
    assert_eq!(open(&v2).data().0, V4 { display_name: "Bob".into() });
    assert_eq!(open(&v3).data().0, V4 { display_name: "Carol".into() });
    // Each step on its own too: V2 reads V1 with the default theme.
    let v2_of_v1 = sealer.open::<Versioned<V2>>(&v1).unwrap().into_session().into_data().0;
    assert_eq!(v2_of_v1, V2 { name: "Alice".into(), theme: "light".into() });
    // Sealed again, the session carries the new version.
    let resealed = sealer.seal(&alice).unwrap();
    assert_eq!(open(&resealed).data().0, V4 { display_name: "Alice".into() });
}

#[test]
fn a_version_no_migration_reads_is_refused_not_guessed() {
    let sealer = sealer();
    // From the future (a rollback), or older than the migrations go.
    let v4 = sealer.seal(&Session::new(Versioned(V4 { display_name: "Dan".into() }))).unwrap();
    assert_eq!(sealer.open::<Versioned<V3>>(&v4).unwrap_err(), OpenError::DataMismatch);
    let v1 = sealer.seal(&Session::new(Versioned(V1 { name: "Eve".into() }))).unwrap();
    assert_eq!(sealer.open::<Versioned<V1>>(&v1).unwrap().into_session().into_data().0.name, "Eve");
    // An unversioned token is not read as a versioned one, nor the reverse:
    // each fails authentication (their purposes differ).
    let plain = sealer.seal(&Session::new(V4 { display_name: "Fay".into() })).unwrap();
    assert_eq!(sealer.open::<Versioned<V4>>(&plain).unwrap_err(), OpenError::Invalid);
    assert_eq!(sealer.open::<V4>(&v4).unwrap_err(), OpenError::Invalid);
    // The right version with bytes left over is refused.
    assert_eq!(decode::<V4>(&[3, b'D', b'a', b'n', 0]), None);
    assert_eq!(decode::<V4>(&[3, b'D', b'a', b'n']), Some(V4 { display_name: "Dan".into() }));
}

/// The review's reproduction: an unversioned profile whose fields the user
/// chose, read as a `Versioned` type after the application wrapped its data.
/// Its postcard bytes parse as a version and a byte string, which hold a
/// `role` the user wrote ("admin"). The `+versioned` purpose makes every
/// token sealed before the wrap fail authentication instead.
#[test]
fn unversioned_data_chosen_by_the_user_never_opens_as_versioned_data() {
    #[derive(Serialize, Deserialize)]
    struct OldProfile {
        display_name: String,
        bio: String,
        website: String,
    }
    #[derive(Debug, Serialize, Deserialize)]
    struct Profile {
        display_name: String,
        role: String,
    }
    impl SessionData for Profile {
        const VERSION: u32 = 2;
        fn migrate(_: u32, bytes: &[u8]) -> Option<Self> {
            decode(bytes)
        }
    }
    let old = OldProfile { display_name: "!".into(), bio: "x".repeat(26), website: "admin".into() };
    // The bytes do parse as (version, bytes) holding role "admin": without
    // the purpose, the token below would open with that role.
    let bytes = postcard::to_allocvec(&old).unwrap();
    let (version, inner): (u32, Vec<u8>) = postcard::from_bytes(&bytes).unwrap();
    assert_eq!(version, 1);
    let chosen: Profile = decode(&inner).unwrap();
    assert_eq!(chosen.role, "admin");

    let sealer = sealer();
    let token = sealer.seal(&Session::new(old).with_user("mallory", 0)).unwrap();
    assert_eq!(sealer.open::<Versioned<Profile>>(&token).unwrap_err(), OpenError::Invalid);
    // A remembered one too.
    let remembering = Sealer::builder(Keyring::generate().unwrap())
        .remember_me(std::time::Duration::from_secs(86_400), std::time::Duration::from_secs(3_600))
        .build()
        .unwrap();
    let old = OldProfile { display_name: "!".into(), bio: "x".repeat(26), website: "admin".into() };
    let token = remembering.seal(&Session::new(old).with_user("mallory", 0).remembered()).unwrap();
    assert_eq!(remembering.open::<Versioned<Profile>>(&token).unwrap_err(), OpenError::Invalid);
    // Versioned data still opens, remembered or not.
    let fine = Versioned(Profile { display_name: "Al".into(), role: "user".into() });
    let token = remembering.seal(&Session::new(fine).remembered()).unwrap();
    let opened = remembering.open::<Versioned<Profile>>(&token).unwrap();
    assert!(opened.session().is_remembered() && opened.is_versioned_data());
    assert_eq!(opened.into_session().into_data().0.role, "user");
}
