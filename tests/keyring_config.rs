//! Loading keyrings from TOML files and environment variables: every bad
//! configuration is a clear error that names the entry, never the secret.
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;

use sealed_session::{EntryRef, KeyError, KeyState, Keyring, KeyringError, LoadOptions, MasterKey};

const K1: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"; // [1; 32]
const K2: &str = "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI"; // [2; 32]

fn entry(index: usize, id: Option<u32>) -> EntryRef {
    EntryRef { index, id }
}

fn toml_entry(id: &str, state: &str, secret: &str) -> String {
    format!("[[key]]\nid = {id}\nstate = \"{state}\"\nsecret = \"{secret}\"\n\n")
}

fn assert_no_secret(err: &KeyringError) {
    let text = format!("{err} {err:?}");
    for secret in [K1, K2, &K1[..12], &K2[..12]] {
        assert!(!text.contains(secret), "secret in error: {text}");
    }
}

fn toml_err(text: &str) -> KeyringError {
    let err = Keyring::from_toml_str(text).unwrap_err();
    assert_no_secret(&err);
    err
}

fn env_err(text: &str) -> KeyringError {
    let err = Keyring::from_env_value(text).unwrap_err();
    assert_no_secret(&err);
    err
}

#[test]
fn a_valid_file_loads() {
    let text = toml_entry("2", "primary", K2) + &toml_entry("1", "active", K1) + "[[key]]\nid = 0\nstate = \"retired\"\nsecret = \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"\ncreated = 2026-11-27T10:00:00Z\n";
    let keyring = Keyring::from_toml_str(&text).unwrap();
    assert_eq!(keyring.primary_id(), 2);
    let keys: Vec<_> = keyring.keys().map(|k| (k.id, k.state)).collect();
    assert_eq!(keys, [(0, KeyState::Retired), (1, KeyState::Active), (2, KeyState::Primary)]);
    assert_eq!(keyring.keys().nth(1).unwrap().key, MasterKey::from_slice(&[1; 32]).unwrap());
    assert_eq!(keyring.keys().next().unwrap().created.unwrap().unix_timestamp(), 1_795_773_600);
    // What to_toml_string writes loads back to the same keyring.
    let again = Keyring::from_toml_str(&keyring.to_toml_string()).unwrap();
    assert_eq!(again.keys().collect::<Vec<_>>(), keyring.keys().collect::<Vec<_>>());
}

#[test]
fn duplicate_ids_are_refused() {
    let err = toml_err(&(toml_entry("1", "primary", K1) + &toml_entry("1", "active", K2)));
    assert!(matches!(err, KeyringError::DuplicateId(1)), "{err:?}");
    assert!(err.to_string().contains("key ID 1 appears more than once"));
}

#[test]
fn no_primary_is_refused() {
    let err = toml_err(&(toml_entry("1", "active", K1) + &toml_entry("2", "retired", K2)));
    assert!(matches!(err, KeyringError::NoPrimary), "{err:?}");
}

#[test]
fn two_primaries_are_refused() {
    let err = toml_err(&(toml_entry("1", "primary", K1) + &toml_entry("2", "primary", K2)));
    assert!(matches!(err, KeyringError::MultiplePrimaries { first: 1, second: 2 }), "{err:?}");
}

#[test]
fn a_key_of_the_wrong_length_is_refused() {
    let short = &K1[..40];
    let err = toml_err(&toml_entry("5", "primary", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB"));
    assert!(
        matches!(err, KeyringError::Key { entry: e, source: KeyError::Length(30) } if e == entry(1, Some(5))),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("key entry 1 (id 5): secret is unusable: key has 30 bytes"), "{err}");
    assert!(!err.to_string().contains(short));
    let long = format!("{K1}AQEA");
    assert!(matches!(
        toml_err(&toml_entry("5", "primary", &long)),
        KeyringError::Key { source: KeyError::Length(35), .. }
    ));
}

#[test]
fn bad_base64_is_refused() {
    for bad in [&format!("{}=", &K1[..42]) as &str, "not base64!", &K1.replace('Q', "+"), &format!(" {K1}")] {
        let err = toml_err(&toml_entry("3", "primary", bad));
        assert!(
            matches!(err, KeyringError::Key { entry: e, source: KeyError::Encoding } if e == entry(1, Some(3))),
            "{bad}: {err:?}"
        );
    }
}

#[test]
fn an_unknown_state_is_refused() {
    let err = toml_err(&toml_entry("1", "Primary", K1));
    assert!(
        matches!(&err, KeyringError::UnknownState { entry: e, state } if *e == entry(1, Some(1)) && state == "Primary")
    );
    assert!(err.to_string().contains("use \"primary\", \"active\" or \"retired\""));
}

#[test]
fn missing_and_mistyped_fields_name_the_entry() {
    let err = toml_err(&(toml_entry("1", "primary", K1) + "[[key]]\nid = 2\nstate = \"active\"\n"));
    assert!(
        matches!(err, KeyringError::MissingField { entry: e, field: "secret" } if e == entry(2, Some(2)))
    );
    assert_eq!(err.to_string(), "key entry 2 (id 2): missing field `secret`");

    let err = toml_err(&format!("[[key]]\nstate = \"primary\"\nsecret = \"{K1}\"\n"));
    assert!(matches!(err, KeyringError::MissingField { entry: e, field: "id" } if e == entry(1, None)));

    let err = toml_err(&format!("[[key]]\nid = -1\nstate = \"primary\"\nsecret = \"{K1}\"\n"));
    assert!(matches!(err, KeyringError::InvalidField { field: "id", .. }));
    let err = toml_err(&format!("[[key]]\nid = \"1\"\nstate = \"primary\"\nsecret = \"{K1}\"\n"));
    assert!(matches!(err, KeyringError::InvalidField { field: "id", .. }));
    let err = toml_err("[[key]]\nid = 1\nstate = \"primary\"\nsecret = 12\n");
    assert!(matches!(err, KeyringError::InvalidField { field: "secret", .. }));
    let err =
        toml_err(&(toml_entry("1", "primary", K1).trim_end().to_string() + "\ncreated = \"yesterday\"\n"));
    assert!(matches!(err, KeyringError::InvalidField { field: "created", .. }));
}

#[test]
fn unknown_fields_and_top_level_entries_are_refused() {
    let err = toml_err(&(toml_entry("1", "primary", K1).trim_end().to_string() + "\nsecrte = \"x\"\n"));
    assert!(matches!(&err, KeyringError::UnknownField { field, .. } if field == "secrte"));
    let err = toml_err(&("version = 1\n".to_string() + &toml_entry("1", "primary", K1)));
    assert!(matches!(err, KeyringError::Syntax { .. }), "{err:?}");
    let err = toml_err(&format!("key = \"{K1}\"\n"));
    assert!(matches!(err, KeyringError::Syntax { .. }), "{err:?}");
    assert!(matches!(toml_err(""), KeyringError::Empty));
}

#[test]
fn toml_syntax_errors_give_a_line_and_never_quote_the_file() {
    let text = format!("[[key]]\nid = 1\nstate = \"primary\"\nsecret = \"{K1}\n");
    let err = toml_err(&text);
    assert!(matches!(err, KeyringError::Syntax { line: 4, .. }), "{err:?}");
}

#[test]
fn the_environment_form_loads() {
    let keyring = Keyring::from_env_value(&format!("2:primary:{K2}, 1:active:{K1}")).unwrap();
    assert_eq!(keyring.primary_id(), 2);
    assert_eq!(keyring.keys().count(), 2);
}

#[test]
fn a_keyring_loads_from_an_environment_variable() {
    // A name of this test's own: tests run in parallel threads of one process.
    let name = "SEALED_SESSION_TEST_KEYRING_FROM_ENV";
    std::env::set_var(name, format!("2:primary:{K2},1:active:{K1}"));
    let keyring = Keyring::from_env(name).unwrap();
    std::env::remove_var(name);
    assert_eq!(keyring.primary_id(), 2);
    let keys: Vec<_> = keyring.keys().map(|k| (k.id, k.state, k.key.clone())).collect();
    assert_eq!(
        keys,
        [
            (1, KeyState::Active, MasterKey::from_slice(&[1; 32]).unwrap()),
            (2, KeyState::Primary, MasterKey::from_slice(&[2; 32]).unwrap())
        ]
    );
    // An unset variable names itself in the error.
    let err = Keyring::from_env(name).unwrap_err();
    assert!(err.to_string().contains(name), "{err}");
}

#[test]
fn the_environment_form_is_strict() {
    assert!(matches!(env_err(""), KeyringError::MissingField { field: "id", .. }));
    assert!(matches!(env_err("1:primary"), KeyringError::MissingField { field: "secret", .. }));
    assert!(matches!(env_err(&format!("x:primary:{K1}")), KeyringError::InvalidField { field: "id", .. }));
    // One spelling per ID: no sign, no leading zero, nothing past u32.
    for id in ["+2", "02", "00", "-0", "4294967296"] {
        let err = env_err(&format!("{id}:primary:{K1}"));
        assert!(matches!(err, KeyringError::InvalidField { field: "id", .. }), "{id}: {err:?}");
    }
    for (id, parsed) in [("0", 0), ("10", 10), ("4294967295", u32::MAX)] {
        let keyring = Keyring::from_env_value(&format!("{id}:primary:{K1}")).unwrap();
        assert_eq!(keyring.primary_id(), parsed, "{id}");
    }
    assert!(matches!(env_err(&format!("1:main:{K1}")), KeyringError::UnknownState { .. }));
    assert!(matches!(env_err(&format!("1:primary:{K1}:extra")), KeyringError::InvalidField { .. }));
    assert!(matches!(env_err(&format!("1:primary:{K1},1:active:{K2}")), KeyringError::DuplicateId(1)));
    assert!(matches!(env_err(&format!("1:active:{K1}")), KeyringError::NoPrimary));
    assert!(matches!(env_err("1:primary:AAAA"), KeyringError::Key { source: KeyError::Length(3), .. }));
    let err = env_err(&format!("1:primary:{K1},2:active:{K2}="));
    assert!(
        matches!(err, KeyringError::Key { entry: e, source: KeyError::Encoding } if e == entry(2, Some(2)))
    );
}

#[test]
fn a_secret_in_the_wrong_field_is_never_echoed() {
    for value in [format!("1:{K1}:primary"), format!("1:{K1}"), format!("1:{}:{K2}", &K1[..12])] {
        let err = env_err(&value); // env_err checks the error for the secrets
        assert!(
            matches!(err, KeyringError::UnknownState { ref state, .. } if state == "(not shown)"),
            "{err:?}"
        );
    }
    let err = toml_err(&toml_entry("1", K1, K2));
    assert!(matches!(err, KeyringError::UnknownState { ref state, .. } if state == "(not shown)"), "{err:?}");
    // A secret pasted as a field's name.
    let err = toml_err(&(toml_entry("1", "primary", K1).trim_end().to_string() + &format!("\n{K2} = 1\n")));
    assert!(matches!(err, KeyringError::UnknownField { ref field, .. } if field == "(not shown)"), "{err:?}");
    assert!(!err.to_string().contains(&K2[..8]), "{err}");
}

#[test]
fn a_variable_that_is_not_utf8_is_not_echoed() {
    use std::os::unix::ffi::OsStrExt as _;
    let name = "SEALED_SESSION_TEST_KEYRING_NOT_UTF8";
    let mut value = format!("1:primary:{K1}").into_bytes();
    value.push(0xff);
    // The variable name is unique to this test; no other test reads it.
    std::env::set_var(name, std::ffi::OsStr::from_bytes(&value));
    let err = Keyring::from_env(name).unwrap_err();
    assert!(matches!(err, KeyringError::Io { .. }));
    assert!(err.to_string().contains("not UTF-8"), "{err}");
    assert_no_secret(&err);
    assert!(!format!("{:?}", std::error::Error::source(&err)).contains(&K1[..12]));
}

#[test]
fn from_env_reads_the_variable() {
    // The variable name is unique to this test, so no other test races on it.
    let name = "SEALED_SESSION_TEST_KEYRING_FROM_ENV";
    assert!(matches!(Keyring::from_env(name), Err(KeyringError::Io { .. })));
}

fn write_file(mode: u32) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyring.toml");
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(toml_entry("1", "primary", K1).as_bytes()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    (dir, path)
}

#[test]
fn a_private_file_loads() {
    let (_dir, path) = write_file(0o600);
    assert_eq!(Keyring::load(&path).unwrap().primary_id(), 1);
    let (_dir, path) = write_file(0o400);
    assert!(Keyring::load(&path).is_ok());
}

#[test]
fn a_file_readable_by_group_or_others_is_refused_unless_allowed() {
    for mode in [0o640, 0o604, 0o660, 0o644, 0o620, 0o602, 0o610, 0o601] {
        let (_dir, path) = write_file(mode);
        let err = Keyring::load(&path).unwrap_err();
        assert!(matches!(err, KeyringError::InsecurePermissions { mode: m, .. } if m == mode), "{err:?}");
        assert!(err.to_string().contains("chmod 600"));
        assert!(Keyring::load_with(&path, LoadOptions::allow_insecure_permissions()).is_ok());
    }
}

/// The keyring's owner is judged by the effective user: a process whose
/// real user is `nobody` and whose effective user is root (a set-user-ID
/// helper, say) loads root's keyring and refuses `nobody`'s. Run in a child
/// under `setpriv`, as no test here could otherwise tell the two apart.
#[test]
fn the_keyring_owner_is_judged_by_the_effective_user() {
    use std::os::unix::fs::MetadataExt as _;
    let (_dir, path) = write_file(0o600);
    let root = std::fs::metadata(&path).unwrap().uid();
    assert_eq!(root, 0, "this test needs root, as the suite does (scripts/test.sh)");
    let child = || {
        let output = std::process::Command::new("setpriv")
            .args(["--ruid=65534", "--euid=0"])
            .arg(std::env::current_exe().unwrap())
            .args(["--exact", "load_the_keyring_the_parent_names", "--ignored", "--nocapture"])
            .env("SEALED_SESSION_KEYRING_UNDER_TEST", &path)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        String::from_utf8(output.stdout).unwrap()
    };
    let said = child();
    assert!(said.contains("loaded"), "root's keyring: {said}");
    std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
    let said = child();
    assert!(
        said.contains("refused: OtherOwner") && said.contains("owner: 65534"),
        "nobody's keyring: {said}"
    );
}

/// Run by `the_keyring_owner_is_judged_by_the_effective_user`, in a child:
/// loads the keyring it names and says what happened.
#[test]
#[ignore = "run by the_keyring_owner_is_judged_by_the_effective_user, in a child process"]
fn load_the_keyring_the_parent_names() {
    let path = std::env::var_os("SEALED_SESSION_KEYRING_UNDER_TEST").expect("run by its parent test");
    match Keyring::load(&path) {
        Ok(_) => println!("loaded"),
        Err(err) => println!("refused: {err:?}"),
    }
}

/// The owner of the keyring file, or of a directory on its way, may change
/// its mode and its keys whatever the mode is now: a file or directory of
/// a user other than root and this process's is refused unless allowed.
#[test]
fn a_file_or_directory_another_user_owns_is_refused_unless_allowed() {
    use std::os::unix::fs::{chown, MetadataExt as _};
    let (dir, path) = write_file(0o600);
    assert_eq!(
        std::fs::metadata(&path).unwrap().uid(),
        0,
        "this test needs root, as the suite does (scripts/test.sh)"
    );
    let refused = |path: &std::path::Path| match Keyring::load(path) {
        Err(err @ KeyringError::OtherOwner { .. }) => err,
        other => panic!("{other:?}"),
    };
    for (owned, other) in [(path.as_path(), 65534), (dir.path(), 1000)] {
        chown(owned, Some(other), None).unwrap();
        let err = refused(&path);
        assert!(
            matches!(&err, KeyringError::OtherOwner { path: p, owner, process: 0 } if p == owned && *owner == other),
            "{err:?}"
        );
        assert!(err.to_string().contains("`chown` it to root or to uid 0"), "{err}");
        assert_eq!(Keyring::load_with(&path, LoadOptions::allow_other_owners()).unwrap().primary_id(), 1);
        assert!(Keyring::load_with(&path, LoadOptions::allow_insecure_permissions()).is_ok());
        // Another user's file, if allowed; never another user's directory
        // on the way, whose owner could put a link to any file there.
        let file_only = Keyring::load_with(&path, LoadOptions::allow_other_file_owner());
        if owned == path {
            assert_eq!(file_only.unwrap().primary_id(), 1);
        } else {
            assert!(
                matches!(&file_only, Err(KeyringError::OtherOwner { path: p, .. }) if p == owned),
                "{file_only:?}"
            );
        }
        // Other owners are allowed, not other modes.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            Keyring::load_with(&path, LoadOptions::allow_other_owners()),
            Err(KeyringError::InsecurePermissions { .. })
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        chown(owned, Some(0), None).unwrap();
        assert!(Keyring::load(&path).is_ok());
    }
}

/// A symbolic link followed on the way that another user owns is refused
/// as their directory is, also where the file may be theirs: they choose
/// where it leads (in a sticky directory such as `/tmp`, anyone may put
/// one there).
#[test]
fn a_link_another_user_owns_is_refused_unless_every_owner_is_allowed() {
    let (dir, path) = write_file(0o600);
    let link = dir.path().join("link.toml");
    std::os::unix::fs::symlink(&path, &link).unwrap();
    assert_eq!(Keyring::load(&link).unwrap().primary_id(), 1, "root's own link");
    std::os::unix::fs::lchown(&link, Some(65534), None).unwrap();
    for options in [LoadOptions::default(), LoadOptions::allow_other_file_owner()] {
        let refused = Keyring::load_with(&link, options);
        assert!(
            matches!(&refused, Err(KeyringError::OtherOwner { path, owner: 65534, .. }) if *path == link),
            "{refused:?}"
        );
    }
    assert_eq!(Keyring::load_with(&link, LoadOptions::allow_other_owners()).unwrap().primary_id(), 1);
}

/// Whoever may write to the keyring's directory may replace the file: a
/// directory its group or others can write to is refused, unless the
/// sticky bit keeps them to their own files.
#[test]
fn a_file_in_a_directory_others_can_write_to_is_refused_unless_sticky_or_allowed() {
    for (dir_mode, refused) in [(0o777, true), (0o775, true), (0o757, true), (0o1777, false), (0o755, false)]
    {
        let (dir, path) = write_file(0o600);
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(dir_mode)).unwrap();
        match Keyring::load(&path) {
            Err(err @ KeyringError::InsecureDirectory { mode, .. }) if refused => {
                assert_eq!(mode, dir_mode, "{err}");
                assert!(err.to_string().contains("chmod go-w"), "{err}");
            }
            Ok(_) if !refused => {}
            other => panic!("directory mode {dir_mode:o}: {other:?}"),
        }
        assert!(Keyring::load_with(&path, LoadOptions::allow_insecure_permissions()).is_ok());
    }
}

/// The same for every directory on the way: one above the keyring's (which
/// others could rename away and replace), and the directory that really
/// holds the file when the path is a symbolic link.
#[test]
fn a_directory_others_can_write_to_above_the_file_or_behind_its_link_is_refused() {
    let refused_at = |path: &std::path::Path| match Keyring::load(path) {
        Err(KeyringError::InsecureDirectory { path, mode }) => (path, mode),
        other => panic!("{other:?}"),
    };
    // Above: the keyring's own directory is private, its parent is not.
    let top = tempfile::tempdir().unwrap();
    let inner = top.path().join("app");
    std::fs::create_dir(&inner).unwrap();
    std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o700)).unwrap();
    let path = inner.join("keyring.toml");
    std::fs::write(&path, Keyring::generate().unwrap().to_toml_string().as_bytes()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(Keyring::load(&path).is_ok());
    std::fs::set_permissions(top.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    assert_eq!(refused_at(&path), (top.path().to_path_buf(), 0o777));
    assert!(Keyring::load_with(&path, LoadOptions::allow_insecure_permissions()).is_ok());

    // Behind a link: a private directory links to a file in a shared one.
    let (shared, target) = write_file(0o600);
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let private = tempfile::tempdir().unwrap();
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = private.path().join("keyring.toml");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let real = std::fs::canonicalize(shared.path()).unwrap();
    assert_eq!(refused_at(&link), (real, 0o777));
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    assert!(Keyring::load(&link).is_ok());

    // In the middle of a chain: private → shared → private. Whoever writes
    // to the shared directory could point its link elsewhere.
    let middle = tempfile::tempdir().unwrap();
    let hop = middle.path().join("hop.toml");
    std::os::unix::fs::symlink(&target, &hop).unwrap();
    let chained = private.path().join("chained.toml");
    std::os::unix::fs::symlink(&hop, &chained).unwrap();
    std::fs::set_permissions(middle.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(Keyring::load(&chained).is_ok());
    std::fs::set_permissions(middle.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    assert_eq!(refused_at(&chained), (std::fs::canonicalize(middle.path()).unwrap(), 0o777));
    // A relative link is followed from its own directory.
    let relative = middle.path().join("relative.toml");
    std::os::unix::fs::symlink("hop.toml", &relative).unwrap();
    assert_eq!(refused_at(&relative).1, 0o777);
    std::fs::set_permissions(middle.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(Keyring::load(&relative).is_ok());
}

#[test]
fn only_a_regular_file_of_a_keyring_s_size_is_read() {
    let dir = tempfile::tempdir().unwrap();
    // A FIFO would block the open until someone writes to it.
    let fifo = dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let (sent, received) = std::sync::mpsc::channel();
    let path = fifo.clone();
    std::thread::spawn(move || sent.send(Keyring::load(&path).map(|_| ()).map_err(|e| e.to_string())));
    let answer =
        received.recv_timeout(std::time::Duration::from_secs(10)).expect("loading a FIFO must not hang");
    let err = answer.unwrap_err();
    assert!(err.contains("not a regular file"), "{err}");
    let err = Keyring::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("not a regular file"), "a directory: {err}");
    // A file far larger than any keyring is not read into memory.
    let (_dir, path) = write_file(0o600);
    let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(format!("# {}\n", "x".repeat(70 * 1024)).as_bytes()).unwrap();
    let err = Keyring::load(&path).unwrap_err().to_string();
    assert!(err.contains("larger than a keyring file can be"), "{err}");
    // Exactly 64 KiB is a keyring's size; one byte more is not.
    let (_dir, path) = write_file(0o600);
    let len = std::fs::metadata(&path).unwrap().len() as usize;
    let mut file = std::fs::OpenOptions::new().append(true).open(&path).unwrap();
    file.write_all(format!("#{}\n", "x".repeat(64 * 1024 - len - 2)).as_bytes()).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 64 * 1024);
    Keyring::load(&path).unwrap();
    file.write_all(b"\n").unwrap();
    let err = Keyring::load(&path).unwrap_err().to_string();
    assert!(err.contains("larger than a keyring file can be (64 KiB)"), "{err}");
}

#[test]
fn a_missing_file_is_an_io_error_naming_the_path() {
    let err = Keyring::load("/nonexistent/keyring.toml").unwrap_err();
    assert!(matches!(err, KeyringError::Io { .. }));
    assert!(err.to_string().contains("/nonexistent/keyring.toml"));
}

/// Key IDs are never reused: past the highest one there is no new key,
/// and the error says what to do (not that an ID appears twice).
#[test]
fn no_new_key_past_the_highest_id() {
    let full = Keyring::from_toml_str(&toml_entry("4294967295", "primary", K1)).unwrap();
    for err in [
        full.with_new_key().unwrap_err(),
        full.with_new_key_activating_at(time::OffsetDateTime::UNIX_EPOCH).unwrap_err(),
    ] {
        assert!(matches!(err, KeyringError::NoFreeId(u32::MAX)), "{err:?}");
        assert!(err.to_string().contains("keyring init"), "{err}");
    }
}

#[test]
fn the_rotation_steps_move_keys_through_their_states() {
    let start = Keyring::from_toml_str(&toml_entry("1", "primary", K1)).unwrap();
    let (added, id) = start.with_new_key().unwrap();
    assert_eq!(id, 2);
    let states = |k: &Keyring| k.keys().map(|s| (s.id, s.state)).collect::<Vec<_>>();
    assert_eq!(states(&added), [(1, KeyState::Primary), (2, KeyState::Active)]);
    assert_ne!(added.keys().nth(1).unwrap().key, added.keys().next().unwrap().key);
    let promoted = added.with_primary(2).unwrap();
    assert_eq!(states(&promoted), [(1, KeyState::Active), (2, KeyState::Primary)]);
    let retired = promoted.with_retired(1).unwrap();
    assert_eq!(states(&retired), [(1, KeyState::Retired), (2, KeyState::Primary)]);
    // The secrets are carried through every step.
    assert_eq!(retired.keys().next().unwrap().key, MasterKey::from_slice(&[1; 32]).unwrap());

    assert!(matches!(retired.with_retired(2), Err(KeyringError::PrimaryRetired(2))));
    assert!(matches!(retired.with_primary(1), Err(KeyringError::RetiredKeyPromoted(1))));
    assert!(matches!(retired.with_primary(9), Err(KeyringError::NoSuchKey(9))));
    assert!(matches!(retired.with_retired(9), Err(KeyringError::NoSuchKey(9))));
    // Promoting the primary again changes nothing.
    assert_eq!(states(&retired.with_primary(2).unwrap()), states(&retired));
}

/// A keyring whose IDs skip more than the two a rollout may be ahead by
/// loads, with a warning: while its newest key is rolled out, servers
/// without it remove that key's cookies. Consecutive IDs warn of nothing.
#[test]
fn a_gap_in_key_ids_is_loaded_with_a_warning() {
    use tracing_subscriber::fmt::MakeWriter as _;
    let secret = |byte: u8| MasterKey::from_slice(&[byte; 32]).unwrap().to_base64().to_string();
    let logged = |value: String| {
        let logs: &'static std::sync::Mutex<Vec<u8>> = Box::leak(Box::default());
        let subscriber =
            tracing_subscriber::fmt().with_writer(move || logs.make_writer()).with_ansi(false).finish();
        tracing::subscriber::with_default(subscriber, || Keyring::from_env_value(&value).unwrap());
        let text = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
        text
    };
    let gap = logged(format!("1:active:{},4:primary:{}", secret(1), secret(4)));
    assert!(gap.contains("WARN") && gap.contains("key 4 follows key 1"), "{gap}");
    let next = logged(format!("1:active:{},3:primary:{}", secret(1), secret(3)));
    assert_eq!(next, "", "two up is a rollout's reach");
}
