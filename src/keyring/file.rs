//! Loading a keyring file: private files only, read into wiped memory.

use std::path::Path;

use zeroize::Zeroizing;

use super::Keyring;
use crate::error::KeyringError;

impl Keyring {
    /// Reads a keyring file, refusing one that its group or others can
    /// read, or one below a directory they can write to (without the
    /// sticky bit), where they could replace it, a link or a directory on
    /// its way: every directory a name is looked up in to find it,
    /// following each symbolic link. The file and those directories must
    /// belong to root or to the user this process runs as.
    ///
    /// # Errors
    /// [`KeyringError::Io`], [`KeyringError::InsecurePermissions`],
    /// [`KeyringError::InsecureDirectory`], [`KeyringError::OtherOwner`],
    /// or any error of
    /// [`Keyring::from_toml_str`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self, KeyringError> {
        Self::load_with(path, LoadOptions::default())
    }

    /// Reads a keyring file with explicit [`LoadOptions`].
    ///
    /// # Errors
    /// As [`Keyring::load`].
    pub fn load_with(path: impl AsRef<Path>, options: LoadOptions) -> Result<Self, KeyringError> {
        Self::from_toml_str(&read_text(path.as_ref(), options)?)
    }

    /// Reads the keyring from the environment variable `name` in the
    /// compact form ([`Keyring::from_env_value`]), or, if it is unset, from
    /// the keyring file named by `name` followed by `_FILE` (a Docker or
    /// Kubernetes secret), with the checks of [`Keyring::load_with`].
    ///
    /// ```no_run
    /// use sealed_session::{Keyring, LoadOptions};
    ///
    /// // SESSION_KEYRING="2:primary:…" or SESSION_KEYRING_FILE=/run/secrets/keyring.toml
    /// // (a Swarm or Kubernetes secret belongs to root; a Compose file secret
    /// // keeps its host owner: `chown` it, or pass `allow_other_file_owner()`)
    /// let keyring = Keyring::from_env_or_file("SESSION_KEYRING", LoadOptions::default())?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`KeyringError::Io`] naming both variables if neither is set, or any
    /// error of [`Keyring::from_env`] or [`Keyring::load_with`].
    pub fn from_env_or_file(name: &str, options: LoadOptions) -> Result<Self, KeyringError> {
        // `var_os` copies the value, secrets and all: wiped, once seen.
        let set = std::env::var_os(name).map(|value| Zeroizing::new(value.into_encoded_bytes())).is_some();
        if set {
            return Self::from_env(name);
        }
        let file_var = format!("{name}_FILE");
        match std::env::var_os(&file_var) {
            Some(path) => Self::load_with(path, options),
            None => Err(KeyringError::Io {
                path: format!("{name} or {file_var}").into(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "neither variable is set"),
            }),
        }
    }
}

/// The text of the keyring file at `path`, after the permission check
/// unless `options` waive it, in memory that is wiped when dropped.
pub(super) fn read_text(path: &Path, options: LoadOptions) -> Result<Zeroizing<String>, KeyringError> {
    read_text_opening(path, options, open_without_waiting)
}

/// [`read_text`], opening the file with `open` (the tests' stand-in for a
/// file replaced between the open and the check).
fn read_text_opening(
    path: &Path,
    options: LoadOptions,
    mut open: impl FnMut(&Path) -> std::io::Result<std::fs::File>,
) -> Result<Zeroizing<String>, KeyringError> {
    let io = |source| KeyringError::Io { path: path.to_path_buf(), source };
    let invalid = |what: &str| io(std::io::Error::new(std::io::ErrorKind::InvalidInput, what));
    // Opening a FIFO would wait for a writer (and hang a watcher with it):
    // opened without waiting, then refused by what was opened (a look
    // before opening would leave a moment to swap one in).
    let mut attempts = 0;
    let file = loop {
        let file = open(path).map_err(io)?;
        if !file.metadata().map_err(io)?.is_file() {
            return Err(invalid("not a regular file (a keyring file must be one)"));
        }
        if options.allow_insecure_permissions || check_permissions(path, &file, trusted_owners(options))? {
            break file;
        }
        // Replaced (by a rename) between the open and the check: the new
        // version is whole; read it instead.
        attempts += 1;
        if attempts == 5 {
            return Err(io(std::io::Error::other("the file kept changing while it was read; read it again")));
        }
    };
    // One byte more than a keyring may hold tells a file of the largest
    // size from a larger one.
    let mut text = Zeroizing::new(String::with_capacity(MAX_KEYRING_FILE_LEN + 1));
    let read = std::io::Read::read_to_string(
        &mut std::io::Read::take(&file, MAX_KEYRING_FILE_LEN as u64 + 1),
        &mut text,
    );
    read.map_err(io)?;
    if text.len() > MAX_KEYRING_FILE_LEN {
        return Err(invalid("larger than a keyring file can be (64 KiB)"));
    }
    Ok(text)
}

/// The largest size of a keyring file (64 KiB, over two hundred keys with
/// every date set): a larger file is refused. Read into memory sized
/// once, so that no reallocation leaves a copy unwiped.
pub const MAX_KEYRING_FILE_LEN: usize = 64 * 1024;

/// Options for [`Keyring::load_with`].
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct LoadOptions {
    /// Accept a keyring file that its group or others can read, or one
    /// below a directory they can write to (without the sticky bit), or
    /// one that another user owns. Off by default; turn it on only where
    /// the file system cannot express 0600 (some container secret mounts)
    /// and access is controlled otherwise.
    pub allow_insecure_permissions: bool,
    /// Accept a keyring file, or a directory on the way to it, owned by a
    /// user other than root and the one this process runs as (who could
    /// change its mode, or replace it, at any time; a directory's owner
    /// could also put a link to another file in its place). Off by
    /// default; see [`LoadOptions::allow_other_file_owner`] for the file
    /// alone.
    pub allow_other_owners: bool,
    /// Accept a keyring file owned by a user other than root and the one
    /// this process runs as, while every directory on the way must still
    /// belong to one of those two. Off by default; the command-line tool
    /// turns it on, since root changing the keyring of a server that runs
    /// as another user is what it is for. The file's owner can change its
    /// keys, which they could anyway; a directory's owner could also swap
    /// the file (or a directory) for a link to another file, and have this
    /// process read, or write, that one.
    pub allow_other_file_owner: bool,
}

impl LoadOptions {
    /// Options that accept a group- or world-readable keyring file.
    #[must_use]
    pub fn allow_insecure_permissions() -> Self {
        Self { allow_insecure_permissions: true, allow_other_owners: true, allow_other_file_owner: true }
    }

    /// Options that accept a private keyring file owned by any user.
    #[must_use]
    pub fn allow_other_owners() -> Self {
        Self { allow_insecure_permissions: false, allow_other_owners: true, allow_other_file_owner: true }
    }

    /// Options that accept a private keyring file owned by any user, below
    /// directories that belong to root or to the user this process runs as.
    #[must_use]
    pub fn allow_other_file_owner() -> Self {
        Self { allow_insecure_permissions: false, allow_other_owners: false, allow_other_file_owner: true }
    }
}

/// The user besides root that may own a keyring file, and the one that
/// may own the directories on its way: the one this process runs as (its
/// effective user ID), or `None` where `options` accept any owner.
#[cfg(unix)]
fn trusted_owners(options: LoadOptions) -> Owners {
    let process = rustix::process::geteuid().as_raw();
    let directories = (!options.allow_other_owners).then_some(process);
    Owners { file: directories.filter(|_| !options.allow_other_file_owner), directories }
}

#[cfg(not(unix))]
fn trusted_owners(_options: LoadOptions) -> Owners {
    Owners { file: None, directories: None }
}

/// Who besides root may own the keyring file, and the directories and
/// links on the way to it (`None`: anyone).
#[derive(Clone, Copy)]
#[cfg_attr(not(unix), allow(dead_code))]
struct Owners {
    file: Option<u32>,
    directories: Option<u32>,
}

/// Opens `path` for reading; a FIFO opens at once instead of waiting for a
/// writer (`O_NONBLOCK`, which changes nothing for a regular file).
#[cfg(unix)]
fn open_without_waiting(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)
}

#[cfg(not(unix))]
fn open_without_waiting(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}

/// Whether `file`, opened at `path`, may be read as a keyring: its mode and
/// every directory on the way, and that root or the user `owners` names
/// (if any) owns the file and each of them; `Ok(false)` if `path` names
/// another file by now (replaced since it was opened).
#[cfg(unix)]
fn check_permissions(path: &Path, file: &std::fs::File, owners: Owners) -> Result<bool, KeyringError> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let meta = file.metadata().map_err(|source| KeyringError::Io { path: path.to_path_buf(), source })?;
    // Whoever may write to a directory may replace what it holds (a rename
    // needs no access to the file, link or directory renamed), unless the
    // sticky bit keeps them to their own (`/tmp`, a Kubernetes secret
    // volume): so every directory a name is looked up in on the way to the
    // file is checked, following each symbolic link as the kernel does.
    let Resolved { real, looked_in, links } = resolve(path)?;
    // First, whether the file opened is the one the walk found (not one
    // replaced since, whose mode is no longer the question).
    let found = std::fs::metadata(&real).map_err(|source| KeyringError::Io { path: real.clone(), source })?;
    if (found.dev(), found.ino()) != (meta.dev(), meta.ino()) {
        return Ok(false);
    }
    // Whoever owns the file or a directory on the way may change its mode,
    // and so replace the keys, whatever the mode is now.
    let owned = |path: &Path, uid: u32, owner: Option<u32>| match owner {
        Some(process) if uid != 0 && uid != process => {
            Err(KeyringError::OtherOwner { path: path.to_path_buf(), owner: uid, process })
        }
        _ => Ok(()),
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyringError::InsecurePermissions { path: path.to_path_buf(), mode });
    }
    owned(path, meta.uid(), owners.file)?;
    for dir in &looked_in {
        let io = |source| KeyringError::Io { path: dir.clone(), source };
        let dir_meta = std::fs::metadata(dir).map_err(io)?;
        let dir_mode = dir_meta.permissions().mode() & 0o7777;
        if dir_mode & 0o022 != 0 && dir_mode & 0o1000 == 0 {
            return Err(KeyringError::InsecureDirectory { path: dir.clone(), mode: dir_mode });
        }
        owned(dir, dir_meta.uid(), owners.directories)?;
    }
    // A link's owner chooses where it leads: in a sticky directory (`/tmp`)
    // anyone may put one there, to a file this process can read and they
    // cannot (as Linux's `protected_symlinks` refuses, where it is on).
    for (link, uid) in &links {
        owned(link, *uid, owners.directories)?;
    }
    Ok(true)
}

/// Where a path leads, as [`resolve`] found it.
#[cfg(unix)]
struct Resolved {
    /// The real path.
    real: std::path::PathBuf,
    /// Every directory a name was looked up in (each real, in order,
    /// without repeats).
    looked_in: Vec<std::path::PathBuf>,
    /// Each symbolic link followed, and its owner's user ID.
    links: Vec<(std::path::PathBuf, u32)>,
}

/// Where `path` leads, following symbolic links one at a time: forty at
/// most, as Linux.
#[cfg(unix)]
fn resolve(path: &Path) -> Result<Resolved, KeyringError> {
    use std::collections::VecDeque;
    use std::os::unix::fs::MetadataExt as _;
    use std::path::{Component, PathBuf};
    let io = |source| KeyringError::Io { path: path.to_path_buf(), source };
    let absolute = std::path::absolute(path).map_err(io)?;
    let mut pending: VecDeque<PathBuf> = absolute
        .components()
        .filter(|c| matches!(c, Component::Normal(_) | Component::ParentDir))
        .map(|c| PathBuf::from(c.as_os_str()))
        .collect();
    let (mut at, mut looked_in, mut links) = (PathBuf::from("/"), Vec::<PathBuf>::new(), Vec::new());
    while let Some(name) = pending.pop_front() {
        if name.as_os_str() == ".." {
            at.pop();
            continue;
        }
        if !looked_in.contains(&at) {
            looked_in.push(at.clone());
        }
        let next = at.join(&name);
        let meta = std::fs::symlink_metadata(&next).map_err(io)?;
        if !meta.file_type().is_symlink() {
            at = next;
            continue;
        }
        links.push((next.clone(), meta.uid()));
        if links.len() > 40 {
            return Err(io(std::io::Error::other("more than 40 symbolic links on the way to the keyring")));
        }
        let target = std::fs::read_link(&next).map_err(io)?;
        if target.is_absolute() {
            at = PathBuf::from("/");
        }
        for component in target.components().rev() {
            match component {
                Component::Normal(_) | Component::ParentDir => {
                    pending.push_front(PathBuf::from(component.as_os_str()))
                }
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
    }
    Ok(Resolved { real: at, looked_in, links })
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path, _file: &std::fs::File, _owners: Owners) -> Result<bool, KeyringError> {
    Ok(true)
}

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::os::unix::fs::PermissionsExt as _;

    use super::check_permissions;
    use crate::error::KeyringError;

    /// A file opened at a path that names another file by the time of the
    /// check (replaced by a rename in between) is not judged by that
    /// path's directories: the check says to open it again. Both files here
    /// would pass on their own.
    #[test]
    fn a_file_replaced_between_open_and_check_is_opened_again() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let (opened, now_there) = (dir.path().join("opened.toml"), dir.path().join("keyring.toml"));
        for path in [&opened, &now_there] {
            std::fs::write(path, "").unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let file = std::fs::File::open(&opened).unwrap();
        let anyone = super::Owners { file: None, directories: None };
        assert!(check_permissions(&opened, &file, anyone).unwrap(), "the file its path names");
        assert!(!check_permissions(&now_there, &file, anyone).unwrap(), "judged by another file's path");
    }

    /// Root and the user named may own the file and the directories on its
    /// way; anyone else may not (this test needs root to give them away).
    #[test]
    fn root_and_the_process_user_may_own_a_keyring_and_no_one_else() {
        use std::os::unix::fs::chown;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let path = dir.path().join("keyring.toml");
        std::fs::write(&path, "").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let owners = |options| {
            let super::Owners { file, directories } = super::trusted_owners(options);
            (file, directories)
        };
        assert_eq!(owners(super::LoadOptions::default()), (Some(0), Some(0)), "this test needs root");
        assert_eq!(owners(super::LoadOptions::allow_other_owners()), (None, None));
        assert_eq!(owners(super::LoadOptions::allow_other_file_owner()), (None, Some(0)));
        let check =
            |owner, directories| check_permissions(&path, &file, super::Owners { file: owner, directories });
        assert!(
            check(Some(0), Some(0)).unwrap() && check(Some(7), Some(7)).unwrap(),
            "root's, for root and for anyone"
        );
        chown(&path, Some(7), None).unwrap();
        assert!(check(Some(7), Some(7)).unwrap(), "the process user's own");
        assert!(matches!(
            check(Some(0), Some(0)),
            Err(KeyringError::OtherOwner { owner: 7, process: 0, .. })
        ));
        assert!(check(None, Some(0)).unwrap(), "another user's file, if allowed");
        chown(dir.path(), Some(8), None).unwrap();
        assert!(matches!(
            check(Some(7), Some(7)),
            Err(KeyringError::OtherOwner { owner: 8, process: 7, .. })
        ));
        assert!(
            matches!(check(None, Some(7)), Err(KeyringError::OtherOwner { owner: 8, process: 7, .. })),
            "another user's directory, though the file may be anyone's"
        );
        chown(dir.path(), Some(7), None).unwrap();
        assert!(check(Some(7), Some(7)).unwrap() && check(None, None).unwrap());
    }

    /// The reading loop: a file that is not the one its path names by the
    /// time of the check is put down and the path opened again (twice
    /// here); one that keeps changing is given up after five tries.
    #[test]
    fn the_file_the_path_names_is_read_and_one_that_keeps_changing_is_given_up() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let (old, path) = (dir.path().join("old.toml"), dir.path().join("keyring.toml"));
        for (file, text) in [(&old, "old"), (&path, "new")] {
            std::fs::write(file, text).unwrap();
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let options = super::LoadOptions::default();
        let mut opened = 0;
        let text = super::read_text_opening(&path, options, |path| {
            opened += 1;
            std::fs::File::open(if opened <= 2 { &old } else { path })
        });
        assert_eq!((text.unwrap().as_str(), opened), ("new", 3));
        let changing = super::read_text_opening(&path, options, |_| std::fs::File::open(&old));
        assert!(changing.unwrap_err().to_string().contains("kept changing"));
    }
}
