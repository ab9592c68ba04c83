//! Generates a keyring, seals a session, opens it, rotates the key and opens
//! the old token again: the whole life of a token in one run.
//!
//! ```text
//! cargo run --example quickstart
//! ```
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::time::Duration;

use sealed_session::{KeySpec, KeyState, Keyring, MasterKey, Sealer, Session, SharedKeyring};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct Profile {
    display_name: String,
    theme: String,
}

pub(crate) fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A keyring file with one primary key, mode 0600, as an operator would
    // keep it, in a fresh directory of this user's only (a fixed name under
    // /tmp could be another user's, made first).
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("keyring.toml");
    write_private(&path, &Keyring::generate()?.to_toml_string())?;
    println!("wrote a new keyring to {}", path.display());

    let keyring = SharedKeyring::new(Keyring::load(&path)?);
    let sealer = Sealer::builder(keyring.clone())
        .purpose("__Host-session")
        .absolute_timeout(Duration::from_secs(12 * 3600))
        .idle_timeout(Duration::from_secs(30 * 60))
        .build()?;

    // Login: always a new session, bound to the user.
    let session =
        Session::new(Profile { display_name: "Alice".into(), theme: "dark".into() }).with_user("alice", 0);
    let token = sealer.seal(&session)?;
    // Never log a token: it is the session. Its length is enough here.
    println!("sealed a session into a {}-character token", token.len());

    let opened = sealer.open::<Profile>(&token)?;
    println!(
        "opened it: user {:?}, theme {:?}, key {}, expires {}",
        opened.session().user_id().unwrap_or("-"),
        opened.session().data().theme,
        opened.key_id(),
        opened.session().expires_at().map(|t| t.to_string()).unwrap_or_default(),
    );

    // Rotation, phases 1 and 2 at once for brevity: a new primary key, the old one still opens.
    let current = keyring.current();
    let old = current.keys().next().ok_or("empty keyring")?;
    keyring.replace(Keyring::new([
        KeySpec::new(old.id, KeyState::Active, old.key.clone()),
        KeySpec::new(old.id + 1, KeyState::Primary, MasterKey::generate()?),
    ])?);
    let after_rotation = sealer.open::<Profile>(&token)?;
    println!("after rotation the old token still opens; reissue: {:?}", after_rotation.reissue());
    assert_eq!(after_rotation.reissue(), Some(sealed_session::Reissue::KeyRotation));
    let reissued = sealer.seal(after_rotation.session())?;
    let new_key = sealer.open::<Profile>(&reissued)?.key_id();
    println!("re-sealed under key {new_key}");
    assert_eq!(new_key, old.id + 1);

    // Tampering is refused, with a reason for the server's log.
    let mut tampered = token.clone().into_bytes();
    tampered[60] = if tampered[60] == b'A' { b'B' } else { b'A' };
    let refused = sealer.open::<Profile>(std::str::from_utf8(&tampered)?).unwrap_err();
    println!("a tampered token is refused: {refused}");

    dir.close()?;
    Ok(())
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(text.as_bytes())
}
