//! The real `sealed-session` binary: every command and every error path,
//! with its exit code (0 ok, 1 token refused, 2 usage or configuration, 3
//! done but not printed).
// Tests, benches and examples may panic on what they set up themselves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use assert_cmd::Command;
use sealed_session_testkit::redis::RedisServer;
use serde_json::Value;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(args: &[&str], stdin: &str) -> Run {
    run_command(Command::cargo_bin("sealed-session").unwrap().args(args).write_stdin(stdin))
}

/// Runs `command`, bounded: one that hangs (on a FIFO, say) fails its test.
fn run_command(command: &mut Command) -> Run {
    let output = command.timeout(std::time::Duration::from_secs(60)).output().unwrap();
    Run {
        code: output.status.code().unwrap(),
        stdout: String::from_utf8(output.stdout).unwrap().trim().to_string(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

fn ok(args: &[&str], stdin: &str) -> String {
    let r = run(args, stdin);
    assert_eq!(r.code, 0, "{args:?} failed: {}", r.stderr);
    r.stdout
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

fn init(dir: &Path) -> PathBuf {
    let file = dir.join("keyring.toml");
    ok(&["keyring", "init", file.to_str().unwrap()], "");
    file
}

fn secrets(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("secret = \"")?.strip_suffix('"').map(str::to_owned))
        .collect()
}

#[test]
fn keygen_prints_a_fresh_32_byte_key() {
    let (a, b) = (ok(&["keygen"], ""), ok(&["keygen"], ""));
    assert_eq!(a.len(), 43);
    assert_ne!(a, b);
    assert!(sealed_session::MasterKey::from_base64(&a).is_ok());
}

#[test]
fn a_change_keeps_a_read_only_keyring_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let file = init(dir.path());
    let f = file.to_str().unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o400)).unwrap();
    assert_eq!(ok(&["keyring", "add", f], ""), "2");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o400);
    assert_eq!(secrets(&file).len(), 2, "the change was written");
}

/// A change that was written but could not be printed (a full disk, a
/// closed pipe) exits 3, not 2: a script retrying on 2 would add a second key.
#[test]
fn a_written_change_whose_output_cannot_be_printed_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let file = init(dir.path());
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("sealed-session"))
        .args(["keyring", "add", file.to_str().unwrap()])
        .stdout(full)
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("was written") && stderr.contains("check whether its change is there"),
        "{stderr}"
    );
    assert_eq!(secrets(&file).len(), 2, "the change was written");
    // Nor when stderr cannot be written either: the message is lost, the
    // exit code is not (a panic would exit 101).
    let full = || std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
    let status = std::process::Command::new(assert_cmd::cargo::cargo_bin("sealed-session"))
        .args(["keyring", "add", file.to_str().unwrap()])
        .stdout(full())
        .stderr(full())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(3));
    assert_eq!(secrets(&file).len(), 3, "the change was written");
}

/// Retiring a key whose successor has sealed for longer than a day says
/// nothing: its sessions have ended. The file does not say when a key was
/// promoted: a successor created long ago but in a file changed since
/// yesterday (by the promote, perhaps) is warned of.
#[test]
fn retiring_a_key_warns_only_after_a_recent_handover_or_change() {
    use sealed_session::{KeySpec, KeyState, Keyring, MasterKey};
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keyring.toml");
    let long_ago = time::OffsetDateTime::now_utc() - time::Duration::days(2);
    let key = |id: u32, state| KeySpec::new(id, state, MasterKey::generate().unwrap()).created(long_ago);
    let keyring = Keyring::new([key(1, KeyState::Active), key(2, KeyState::Primary)]).unwrap();
    for (changed, warned) in [(long_ago, false), (time::OffsetDateTime::now_utc(), true)] {
        std::fs::write(&file, keyring.to_toml_string().as_bytes()).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::File::options().write(true).open(&file).unwrap().set_modified(changed.into()).unwrap();
        let r = run(&["keyring", "retire", file.to_str().unwrap(), "1"], "");
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(
            r.stderr.starts_with("warning: key 1 may have sealed sessions until"),
            warned,
            "{}",
            r.stderr
        );
        assert_eq!(r.stderr.is_empty(), !warned, "{}", r.stderr);
    }
}

/// Promoting a key before its `activate_at` overrides the schedule: the
/// servers still on the older file refuse its cookies until the new file
/// reaches them, and the command says so. A key with no date is promoted
/// without a word.
#[test]
fn promoting_a_key_ahead_of_its_schedule_warns_of_the_servers_behind() {
    let dir = tempfile::tempdir().unwrap();
    let file = init(dir.path());
    let f = file.to_str().unwrap();
    assert_eq!(ok(&["keyring", "add", f, "--activate-at", "+2d"], ""), "2");
    assert_eq!(ok(&["keyring", "add", f, "--activate-at", "+4d"], ""), "3");
    let r = run(&["keyring", "promote", f, "2"], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert!(
        lines[0].starts_with("warning: a promotion clears every key's activate_at: key(s) [3]"),
        "{}",
        r.stderr
    );
    assert!(lines[1].starts_with("warning: key 2 was due to seal from 20"), "{}", r.stderr);
    assert!(lines[1].contains("refuse its cookies as not yet valid"), "{}", r.stderr);
    assert_eq!(ok(&["keyring", "add", f], ""), "4");
    let r = run(&["keyring", "promote", f, "4"], "");
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
}

#[test]
fn keyring_rotation_walkthrough() {
    let dir = tempfile::tempdir().unwrap();
    let file = init(dir.path());
    let f = file.to_str().unwrap();
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);

    // Phase 1: add. Phase 2: promote. Phase 3: retire.
    assert_eq!(ok(&["keyring", "add", f], ""), "2");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600, "writes keep 0600");
    let check = json(&ok(&["check", "--keyring", f], ""));
    assert!(check["next_step"].as_str().unwrap().starts_with("promote key 2"), "{check}");
    ok(&["keyring", "promote", f, "2"], "");
    let check = json(&ok(&["check", "--keyring", f], ""));
    let next = check["next_step"].as_str().unwrap();
    assert!(next.starts_with("retire key(s) [1]") && next.contains("remember-me"), "{check}");
    // Retired at once after the promotion: done, with a warning.
    let r = run(&["keyring", "retire", f, "1"], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.starts_with("warning: key 1 may have sealed sessions until"), "{}", r.stderr);
    assert!(r.stderr.contains("--at +12h"), "{}", r.stderr);
    let check = json(&ok(&["check", "--keyring", f], ""));
    assert!(check["next_step"].as_str().unwrap().starts_with("nothing to do"), "{check}");

    let list = json(&ok(&["keyring", "list", f], ""));
    let states: Vec<(u64, &str)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (k["id"].as_u64().unwrap(), k["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [(1, "retired"), (2, "primary")]);
    assert!(list[0]["created"].as_str().unwrap().ends_with('Z'));
    // No secret ever reaches stdout.
    let listed = ok(&["keyring", "list", f], "");
    let secrets = secrets(&file);
    assert_eq!(secrets.len(), 2, "one secret per key");
    for secret in secrets {
        assert!(!listed.contains(&secret));
    }
    assert!(!dir.path().read_dir().unwrap().any(|e| e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .ends_with(".tmp")));
}

/// RFC 3339 for now plus `seconds`.
fn from_now(seconds: i64) -> String {
    let at = time::OffsetDateTime::now_utc() + time::Duration::seconds(seconds);
    at.replace_nanosecond(0).unwrap().format(&time::format_description::well_known::Rfc3339).unwrap()
}

#[test]
fn concurrent_changes_to_one_keyring_file_lose_no_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = init(dir.path());
    let f = file.to_str().unwrap();
    // Sixteen `keyring add` at once, as cron jobs on hosts sharing the file.
    let children: Vec<_> = (0..16)
        .map(|_| {
            std::process::Command::new(env!("CARGO_BIN_EXE_sealed-session"))
                .args(["keyring", "add", f])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut ids: Vec<u32> = children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success());
            String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, (2..=17).collect::<Vec<u32>>(), "each run added a key of its own ID");
    let listed = json(&ok(&["keyring", "list", f], ""));
    assert_eq!(listed.as_array().unwrap().len(), 17, "no run wrote over another's key: {listed}");
}

#[test]
fn the_cli_never_writes_a_keyring_file_too_large_to_load() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keyring.toml");
    // Keys up to a little under the limit: the file loads.
    use sealed_session::{KeySpec, KeyState, Keyring, MasterKey};
    let spec = |id: u32, state| KeySpec::new(id, state, MasterKey::from_slice(&[7; 32]).unwrap());
    let keyring = |n: u32| {
        Keyring::new((1..=n).map(|id| spec(id, if id == 1 { KeyState::Primary } else { KeyState::Active })))
    };
    let entry = keyring(1001).unwrap().to_toml_string().len() - keyring(1000).unwrap().to_toml_string().len();
    let n = u32::try_from((sealed_session::MAX_KEYRING_FILE_LEN - 1000) / entry).unwrap();
    let keyring = keyring(n).unwrap();
    std::fs::write(&file, keyring.to_toml_string().as_bytes()).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let before = std::fs::read(&file).unwrap();
    assert!(sealed_session::Keyring::load(&file).is_ok());
    // Adds go on until one would cross it: that one is refused, the file kept.
    let f = file.to_str().unwrap();
    let mut refused = None;
    for _ in 0..40 {
        let run = run(&["keyring", "add", f], "");
        if run.code != 0 {
            refused = Some(run);
            break;
        }
    }
    let refused = refused.expect("an add past the limit is refused");
    assert!(refused.stderr.contains("more than a keyring file may be"), "{}", refused.stderr);
    assert!(sealed_session::Keyring::load(&file).is_ok(), "what is on disk still loads");
    assert_ne!(std::fs::read(&file).unwrap(), before, "the adds under the limit were written");
}

#[test]
fn the_key_that_seals_by_its_schedule_cannot_be_retired() {
    let dir = tempfile::tempdir().unwrap();
    let file = init(dir.path());
    let f = file.to_str().unwrap();
    // Key 2's activation has passed: it seals now, though its state is
    // active. (The CLI refuses a past `--activate-at`; the library takes it.)
    let past = time::OffsetDateTime::from_unix_timestamp(978_307_200).unwrap(); // 2001-01-01
    let (keyring, id) =
        sealed_session::Keyring::load(&file).unwrap().with_new_key_activating_at(past).unwrap();
    assert_eq!(id, 2);
    std::fs::write(&file, keyring.to_toml_string().as_bytes()).unwrap();
    let refused = run(&["keyring", "retire", f, "2"], "");
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(refused.stderr.contains("key 2 is the key that seals now"), "{}", refused.stderr);
    let listed = json(&ok(&["keyring", "list", f], ""));
    assert_eq!(listed[1]["state"], "active", "the file is unchanged: {listed}");
}

/// The incident SECURITY.md describes, in the layout `keyring rotate`
/// leaves: the waiting key leaked before its day. Retired alone, it would
/// leave no key to seal after the primary's date: refused, saying to
/// replace it. `--replace` retires it and schedules a new key for its time.
#[test]
fn a_leaked_waiting_key_of_a_rolling_schedule_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let file = init(dir.path());
    let f = file.to_str().unwrap();
    ok(&["keyring", "rotate", f, "--every", "30", "--keep", "90"], "");
    let before = json(&ok(&["keyring", "list", f], ""));
    let refused = run(&["keyring", "retire", f, "2"], "");
    assert_eq!(refused.code, 2, "{}", refused.stdout);
    assert!(refused.stderr.contains("retire FILE 2 --replace"), "{}", refused.stderr);
    let listed = json(&ok(&["keyring", "retire", f, "2", "--replace"], ""));
    let states: Vec<_> =
        listed.as_array().unwrap().iter().map(|k| (k["id"].as_u64(), k["state"].as_str())).collect();
    assert_eq!(states, [(Some(1), Some("primary")), (Some(2), Some("retired")), (Some(3), Some("active"))]);
    assert_eq!(listed[2]["activate_at"], before[1]["activate_at"], "at key 2's time");
    assert_eq!(listed[0]["retire_at"], before[0]["retire_at"], "key 1's date is kept");
    let conflict = run(&["keyring", "retire", f, "3", "--replace", "--at", "+1d"], "");
    assert_eq!(conflict.code, 2);
}

#[test]
fn a_scheduled_rotation_needs_no_promote_and_retires_on_time() {
    let dir = tempfile::tempdir().unwrap();
    let file = init(dir.path());
    let f = file.to_str().unwrap();
    let long = ["--purpose", "s", "--ttl", "86400", "--idle", "86400"];
    let seal = |stdin: &str| ok(&[&["seal", "--keyring", f][..], &long].concat(), stdin);
    let open_at = |token: &str, at: &str| {
        run(&[&["open", "--keyring", f, "--now", at][..], &long, &[token]].concat(), "")
    };

    assert_eq!(ok(&["keyring", "add", f, "--activate-at", "+1h"], ""), "2");
    let old = seal("{}");
    assert_eq!(json(&open_at(&old, &from_now(0)).stdout)["key_id"], 1, "key 2 does not seal yet");
    // An hour on, key 2 seals: a key-1 token still opens and is re-sealed.
    let opened = json(&open_at(&old, &from_now(7200)).stdout);
    assert_eq!(opened["reissue"], "KeyRotation", "{opened}");

    let listed = ok(&["keyring", "retire", f, "1", "--at", "+3h"], "");
    assert!(json(&listed)[0]["retire_at"].is_string(), "{listed}");
    assert_eq!(open_at(&old, &from_now(3 * 3600 - 60)).code, 0);
    let refused = open_at(&old, &from_now(3 * 3600 + 60));
    assert_eq!(refused.code, 1);
    assert!(refused.stderr.contains("retired key"), "{}", refused.stderr);

    let plan = json(&ok(&["keyring", "plan", f, "--now", &from_now(7200)], ""));
    assert_eq!(plan["sealing_now"], 2, "{plan}");
    assert_eq!(plan["timeline"][0]["key"], 1);
    assert_eq!(plan["timeline"][1]["key"], 2);
    assert_eq!(plan["timeline"][1]["from"], plan["keys"][0]["stops_sealing"]);
    // Key 1 stops sealing at +1h and retires at +3h: kept for 2 hours.
    assert_eq!(plan["keys"][0]["kept_days"], 0.08, "{plan}");
    assert_eq!(plan["keys"][0]["now"], "active");
    assert_eq!(plan["keys"][1]["now"], "primary");
    let later = json(&ok(&["keyring", "plan", f, "--now", &from_now(4 * 3600)], ""));
    assert_eq!(later["keys"][0]["now"], "retired", "{later}");
    let check = json(&ok(&["check", "--keyring", f], ""));
    assert!(check["next_step"].as_str().unwrap().contains("keyring plan"), "{check}");
}

/// Runs each of `cases`, each of which must fail as a usage error (exit
/// code 2) saying its message, and leave `file` as it was.
fn refused_untouched(file: &std::path::Path, cases: &[(Vec<&str>, &str)]) {
    let before = std::fs::read(file).unwrap();
    for (args, message) in cases {
        let r = run(args, "");
        assert_eq!(r.code, 2, "{args:?}");
        assert!(r.stderr.contains(message), "{args:?}: {}", r.stderr);
    }
    assert_eq!(std::fs::read(file).unwrap(), before, "a refused change must not touch the file");
}

#[test]
fn schedules_that_would_leave_no_sealing_key_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = init(dir.path());
    let f = file.to_str().unwrap();
    ok(&["keyring", "add", f, "--activate-at", "+2h"], "");
    let cases = [
        (vec!["keyring", "retire", f, "1", "--at", "+1h"], "no key would seal"),
        // At the handover (a few milliseconds later): within the leeway.
        (vec!["keyring", "retire", f, "1", "--at", "+2h"], "less than the clock leeway"),
        (vec!["keyring", "add", f, "--activate-at", "tomorrow"], "--activate-at must be an RFC 3339 time"),
        (vec!["keyring", "retire", f, "1", "--at", "+5y"], "--at must be"),
        // A relative time is a count of units from now, never back in time.
        (vec!["keyring", "retire", f, "1", "--at", "+-1d"], "--at must be"),
        (vec!["keyring", "retire", f, "1", "--at", "++1d"], "--at must be"),
        (vec!["keyring", "add", f, "--activate-at", "+-1s"], "--activate-at must be"),
        // A key that would seal before the file reaches every server.
        (vec!["keyring", "add", f, "--activate-at", "2001-01-01T00:00:00Z"], "is not in the future"),
        (vec!["keyring", "add", f, "--activate-at", "+0s"], "is not in the future"),
        (vec!["keyring", "rotate", f, "--every", "0", "--keep", "1"], "--every"),
        (vec!["keyring", "rotate", f, "--every", "1", "--keep", "1", "--lead", "0"], "--lead"),
        (vec!["keyring", "plan", f, "--now", "noon"], "--now is not an RFC 3339 time"),
    ];
    refused_untouched(&file, &cases);
}

#[test]
fn rotate_keeps_a_rolling_schedule_and_changes_nothing_when_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let file = init(dir.path());
    let f = file.to_str().unwrap();
    // Runs on a clock `ahead` of this one (faketime), as a cron job would
    // run on later days; `command` is `keyring rotate` or `rotate`.
    let rotate_at = |ahead: &str, command: &[&str]| {
        let mut run = Command::new("faketime");
        run.args(["-f", ahead]).arg(assert_cmd::cargo::cargo_bin("sealed-session"));
        run.args([command, &[f, "--every", "30", "--keep", "90"][..]].concat());
        let r = run_command(run.env("FAKETIME_DONT_FAKE_MONOTONIC", "1"));
        assert_eq!(r.code, 0, "{}", r.stderr);
        json(&r.stdout)
    };
    let rotate = |ahead: &str| rotate_at(ahead, &["keyring", "rotate"]);
    // `--now` shows what a run then would do, and writes nothing.
    let before = std::fs::read(&file).unwrap();
    let dry = run(&["keyring", "rotate", f, "--every", "30", "--keep", "90", "--now", &from_now(60)], "");
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(dry.stderr.contains("dry run, nothing written"), "{}", dry.stderr);
    let shown = json(&dry.stdout);
    assert_eq!((shown["added"].as_u64(), shown["changed"].as_bool()), (Some(2), Some(true)), "{shown}");
    assert_eq!(shown["written"], false, "{shown}");
    assert_eq!(std::fs::read(&file).unwrap(), before, "--now wrote the file");

    let first = rotate("+60");
    assert_eq!((first["added"].as_u64(), first["changed"].as_bool()), (Some(2), Some(true)), "{first}");
    assert_eq!(first["written"], true, "{first}");
    assert_eq!(first["timeline"][1]["key"], 2);
    assert_eq!(first["timeline"][0]["days"], Value::Null, "the first period has always begun");
    assert_eq!(first["keys"][0]["kept_days"], 90.0, "{first}");
    let written = std::fs::read(&file).unwrap();
    // The same command at the top level, as a cron line would call it.
    let again = rotate_at("+120", &["rotate"]);
    assert_eq!((again["added"].as_u64(), again["changed"].as_bool()), (None, Some(false)), "{again}");
    assert_eq!(std::fs::read(&file).unwrap(), written);
    // 31 days on: key 2 is written as primary and key 3 waits for day 60.
    let month = rotate("+31d");
    assert_eq!(month["added"], 3, "{month}");
    assert_eq!(month["timeline"][0]["key"], 2, "{month}");
    assert_eq!(month["timeline"][1]["days"], Value::Null);
    assert_eq!(json(&ok(&["keyring", "list", f], ""))[1]["state"], "primary");
}

/// Rotation rewrites the file a running server reloads: it is replaced
/// whole (a temporary file, then a rename), so a reader never sees half of
/// it, an empty file, or a file readable by others.
#[test]
fn keyring_files_are_replaced_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let file = init(dir.path());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (file, stop) = (file.clone(), std::sync::Arc::clone(&stop));
        std::thread::spawn(move || {
            let (mut loads, mut failures) = (0u64, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                match sealed_session::Keyring::load(&file) {
                    Ok(_) => loads += 1,
                    Err(err) => failures.push(err.to_string()),
                }
            }
            (loads, failures)
        })
    };
    for _ in 0..60 {
        ok(&["keyring", "add", file.to_str().unwrap()], "");
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (loads, failures) = reader.join().unwrap();
    assert!(loads > 0);
    assert!(failures.is_empty(), "{} of {} loads failed, first: {}", failures.len(), loads, failures[0]);
    let mut names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    // The lock file stays (removing it would let two runs lock two files).
    assert_eq!(names, [".keyring.toml.lock", "keyring.toml"], "no temporary file is left");
}

const NOBODY: u32 = 65_534;

fn owner(file: &Path) -> (u32, u32) {
    use std::os::unix::fs::MetadataExt as _;
    let meta = std::fs::metadata(file).unwrap();
    (meta.uid(), meta.gid())
}

/// Runs the CLI as `nobody` with no supplementary groups, from a copy of
/// the binary in `dir` (the build's directories may be closed to others).
fn run_as_nobody(dir: &Path, args: &[&str]) -> Run {
    let bin = dir.join("sealed-session");
    if !bin.exists() {
        let built = assert_cmd::cargo::cargo_bin("sealed-session");
        std::fs::hard_link(&built, &bin).or_else(|_| std::fs::copy(&built, &bin).map(drop)).unwrap();
    }
    run_command(
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin)
            .args(args),
    )
}

/// Root's cron job changing the keyring of a server that runs as another
/// user, in a directory root owns, leaves a file that user can still read
/// and change; that user changes it in a directory of their own.
#[test]
fn a_change_keeps_the_keyring_files_owner_and_group() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(owner(dir.path()).0, 0, "this test needs root, as the suite does (scripts/test.sh)");
    let file = init(dir.path());
    let f = file.to_str().unwrap();
    let lock = dir.path().join(".keyring.toml.lock");
    std::os::unix::fs::chown(&file, Some(NOBODY), Some(NOBODY)).unwrap();

    ok(&["keyring", "add", f], "");
    assert_eq!(owner(&file), (NOBODY, NOBODY));
    assert_eq!(owner(&lock), (NOBODY, NOBODY));
    std::os::unix::fs::chown(dir.path(), Some(NOBODY), Some(NOBODY)).unwrap();
    let r = run_as_nobody(dir.path(), &["keyring", "add", f]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(secrets(&file).len(), 3);

    // A group `nobody` is not in: it cannot give a new file that group, so
    // it changes nothing and says why.
    std::os::unix::fs::chown(&file, None, Some(0)).unwrap();
    let before = std::fs::read(&file).unwrap();
    let r = run_as_nobody(dir.path(), &["keyring", "add", f]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(r.stderr.contains("(uid 65534, gid 0)") && r.stderr.contains("as root"), "{}", r.stderr);
    assert_eq!(std::fs::read(&file).unwrap(), before);
    assert_eq!(owner(&file), (NOBODY, 0));
    let left = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".tmp"));
    assert_eq!(left.count(), 0, "no temporary file is left");
}

/// A user who may change the keyring file but not write its directory
/// (root's, `0755`): the lock file cannot be made, and the error names the
/// directory, not a file to remove (there is none).
#[test]
fn a_directory_this_user_cannot_write_is_named_as_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(owner(dir.path()).0, 0, "this test needs root, as the suite does (scripts/test.sh)");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let file = init(dir.path());
    std::os::unix::fs::chown(&file, Some(NOBODY), Some(NOBODY)).unwrap();
    let before = std::fs::read(&file).unwrap();
    let r = run_as_nobody(dir.path(), &["keyring", "add", file.to_str().unwrap()]);
    assert_eq!(r.code, 2, "{}", r.stdout);
    let dir_named = format!("writes the keyring's directory, {}", dir.path().display());
    assert!(r.stderr.contains("cannot make the lock file") && r.stderr.contains(&dir_named), "{}", r.stderr);
    assert!(!r.stderr.contains("remove it"), "{}", r.stderr);
    assert_eq!(std::fs::read(&file).unwrap(), before);
}

/// Root never works on a keyring below a directory another user owns, or
/// through another user's link: that user could swap the file for a link
/// to another service's keyring between root's read and write, and have
/// root copy its keys into a file they can read (or theirs into it). Here
/// the link is already in place: root's run reads nothing through it and
/// changes nothing.
#[test]
fn root_refuses_a_keyring_below_a_directory_another_user_owns() {
    let (theirs, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    assert_eq!(owner(theirs.path()).0, 0, "this test needs root, as the suite does (scripts/test.sh)");
    let victim = init(other.path());
    let before = std::fs::read(&victim).unwrap();
    let link = theirs.path().join("keyring.toml");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    std::os::unix::fs::chown(theirs.path(), Some(NOBODY), Some(NOBODY)).unwrap();
    for args in [
        vec!["keyring", "add"],
        vec!["keyring", "rotate", "--every", "1", "--keep", "1"],
        vec!["keyring", "list"],
    ] {
        let r = run(&[args.as_slice(), &[link.to_str().unwrap()]].concat(), "");
        assert_eq!(r.code, 2, "{args:?}: {}", r.stdout);
        let named = format!("{} belongs to uid {NOBODY}", theirs.path().display());
        assert!(r.stderr.contains(&named), "{args:?}: {}", r.stderr);
        assert_eq!(std::fs::read(&victim).unwrap(), before, "{args:?}");
    }
    // Nor does it make a new keyring there, which every later command
    // would refuse.
    let new = theirs.path().join("new.toml");
    let r = run(&["keyring", "init", new.to_str().unwrap()], "");
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(
        r.stderr.contains(&format!("{} belongs to uid {NOBODY}", theirs.path().display())),
        "{}",
        r.stderr
    );
    assert!(!new.exists(), "a keyring was left below another user's directory");
    // Nor through another user's link in a sticky directory of root's
    // (`/tmp`), which anyone may put there (unless the kernel's
    // `protected_symlinks` refuses to follow it first).
    let sticky = other.path().join("sticky");
    std::fs::create_dir(&sticky).unwrap();
    std::fs::set_permissions(&sticky, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let planted = sticky.join("keyring.toml");
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    std::os::unix::fs::lchown(&planted, Some(NOBODY), Some(NOBODY)).unwrap();
    for command in ["add", "list"] {
        let r = run(&["keyring", command, planted.to_str().unwrap()], "");
        assert_eq!(r.code, 2, "{command}: {}", r.stdout);
        let named = format!("{} belongs to uid {NOBODY}", planted.display());
        assert!(
            r.stderr.contains(&named) || r.stderr.contains("Permission denied"),
            "{command}: {}",
            r.stderr
        );
        assert_eq!(std::fs::read(&victim).unwrap(), before, "{command}");
    }
    let mut names: Vec<_> =
        std::fs::read_dir(theirs.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, ["keyring.toml"], "nothing written there, not even a lock file");
}

/// A lock file planted as a link by whoever can write the directory is
/// not followed: root's run neither writes nor re-owns what it points to.
#[test]
fn the_lock_file_is_never_followed_through_a_link() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(owner(dir.path()).0, 0, "this test needs root, as the suite does (scripts/test.sh)");
    let file = init(dir.path());
    let f = file.to_str().unwrap();
    std::os::unix::fs::chown(&file, Some(NOBODY), Some(NOBODY)).unwrap();
    let victim = dir.path().join("victim");
    std::fs::write(&victim, "root's").unwrap();
    std::os::unix::fs::symlink(&victim, dir.path().join(".keyring.toml.lock")).unwrap();
    let before = std::fs::read(&file).unwrap();

    let r = run(&["keyring", "add", f], "");
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(r.stderr.contains("cannot lock"), "{}", r.stderr);
    assert_eq!(owner(&victim), (0, 0), "the link's target keeps its owner");
    assert_eq!(std::fs::read(&victim).unwrap(), b"root's");
    assert_eq!(std::fs::read(&file).unwrap(), before, "the keyring is unchanged");

    // Nor is a FIFO waited on (a write-only open would wait for a reader).
    std::fs::remove_file(dir.path().join(".keyring.toml.lock")).unwrap();
    let fifo = dir.path().join(".keyring.toml.lock");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let r = run(&["keyring", "add", f], "");
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(r.stderr.contains("cannot lock") && r.stderr.contains("remove it"), "{}", r.stderr);
    assert_eq!(std::fs::read(&file).unwrap(), before, "the keyring is unchanged");
}

/// A lock another run holds is waited for a bounded time
/// (`SEALED_SESSION_LOCK_WAIT` seconds, 60 by default), then refused with
/// exit 2 and the file unchanged: a hung run must not stall every later
/// cron run in silence. Released in time, the command goes on.
#[test]
fn a_lock_held_too_long_is_refused_not_waited_on_for_ever() {
    let dir = tempfile::tempdir().unwrap();
    let file = init(dir.path());
    let f = file.to_str().unwrap();
    let before = std::fs::read(&file).unwrap();
    let lock = std::fs::File::create(dir.path().join(".keyring.toml.lock")).unwrap();
    lock.lock().unwrap();
    let add = |wait: &str| {
        run_command(
            Command::cargo_bin("sealed-session")
                .unwrap()
                .args(["keyring", "add", f])
                .env("SEALED_SESSION_LOCK_WAIT", wait),
        )
    };
    // Every command that changes the file takes the lock (cron's `rotate`
    // on hosts that share the file among them).
    let changes: [&[&str]; 4] = [
        &["keyring", "add", f],
        &["keyring", "promote", f, "1"],
        &["keyring", "retire", f, "1", "--at", "+30d"],
        &["keyring", "rotate", f, "--every", "1", "--keep", "1"],
    ];
    for args in changes {
        let refused = run_command(
            Command::cargo_bin("sealed-session").unwrap().args(args).env("SEALED_SESSION_LOCK_WAIT", "0"),
        );
        assert_eq!(refused.code, 2, "{args:?}: {}", refused.stdout);
        assert!(refused.stderr.contains("another keyring command held it"), "{args:?}: {}", refused.stderr);
        assert_eq!(std::fs::read(&file).unwrap(), before, "{args:?}: the keyring is unchanged");
    }
    let refused = add("1");
    assert_eq!(refused.code, 2, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("another keyring command held it all the 1s this one waited"),
        "{}",
        refused.stderr
    );
    assert_eq!(std::fs::read(&file).unwrap(), before, "the keyring is unchanged");
    let bad = add("soon");
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("SEALED_SESSION_LOCK_WAIT must be a whole number of seconds"),
        "{}",
        bad.stderr
    );

    // A dry run of `rotate` (`--now`) writes nothing, so it does not wait.
    let dry_run = run_command(
        Command::cargo_bin("sealed-session")
            .unwrap()
            .args(["keyring", "rotate", f, "--every", "1", "--keep", "1", "--now", "2100-01-01T00:00:00Z"])
            .env("SEALED_SESSION_LOCK_WAIT", "0"),
    );
    assert_eq!(dry_run.code, 0, "{}", dry_run.stderr);
    assert_eq!(json(&dry_run.stdout)["written"], false, "{}", dry_run.stdout);
    assert_eq!(std::fs::read(&file).unwrap(), before, "the keyring is unchanged");

    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(500));
        drop(lock);
    });
    let added = add("30");
    release.join().unwrap();
    assert_eq!((added.code, added.stdout.as_str()), (0, "2"), "{}", added.stderr);
}

/// `rotate` dates the key it adds from when it holds the lock, not from
/// when it began to wait for it: a wait must not shorten the lead (the
/// time the file has to reach every server).
#[test]
fn rotate_dates_its_new_key_from_when_it_holds_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let file = init(dir.path());
    let f = file.to_str().unwrap().to_owned();
    let lock = std::fs::File::create(dir.path().join(".keyring.toml.lock")).unwrap();
    lock.lock().unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_secs(3));
        let released = time::OffsetDateTime::now_utc();
        drop(lock);
        released
    });
    let rotated = run_command(
        Command::cargo_bin("sealed-session")
            .unwrap()
            .args(["keyring", "rotate", &f, "--every", "1", "--keep", "90", "--lead", "1"])
            .env("SEALED_SESSION_LOCK_WAIT", "30"),
    );
    let released = release.join().unwrap();
    assert_eq!(rotated.code, 0, "{}", rotated.stderr);
    let listed = json(&ok(&["keyring", "list", &f], ""));
    let at = listed[1]["activate_at"].as_str().unwrap();
    let activates = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).unwrap();
    let earliest = released.replace_nanosecond(0).unwrap() + time::Duration::days(1);
    assert!(
        activates >= earliest,
        "activates at {activates}, before {earliest}: the lead was cut by the wait"
    );
}

#[test]
fn keyring_changes_that_would_break_the_keyring_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = init(dir.path());
    let f = file.to_str().unwrap();
    let cases = [
        (vec!["keyring", "init", f], "refusing to overwrite"),
        (vec!["keyring", "retire", f, "1"], "seals now, or in state primary, and cannot be retired"),
        (vec!["keyring", "promote", f, "7"], "no key 7"),
        (vec!["keyring", "retire", f, "7"], "no key 7"),
    ];
    refused_untouched(&file, &cases);
    // A retired key never gets a retire date: a later one would bring it back.
    ok(&["keyring", "add", f], "");
    ok(&["keyring", "promote", f, "2"], "");
    // A time in the past would retire key 1 at once, without a word.
    refused_untouched(
        &file,
        &[
            (
                vec!["keyring", "retire", f, "1", "--at", "2001-01-01T00:00:00Z"],
                "leave out --at to retire key 1 now",
            ),
            (vec!["keyring", "retire", f, "1", "--at", "+0s"], "is not in the future"),
        ],
    );
    ok(&["keyring", "retire", f, "1"], "");
    refused_untouched(&file, &[(vec!["keyring", "retire", f, "1", "--at", "+30d"], "retired already")]);
}

#[test]
fn bad_keyring_files_are_configuration_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.toml");
    let r = run(&["keyring", "list", missing.to_str().unwrap()], "");
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("cannot read keyring"), "{}", r.stderr);
    assert_eq!(r.stderr.matches("No such file").count(), 1, "the cause once: {}", r.stderr);

    let file = init(dir.path());
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = run(&["check", "--keyring", file.to_str().unwrap()], "");
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("chmod 600"), "{}", r.stderr);

    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[[key]]\nid = 1\nstate = \"primary\"\nsecret = \"short\"\n").unwrap();
    std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = run(&["check", "--keyring", broken.to_str().unwrap()], "");
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("key entry 1 (id 1)") && !r.stderr.contains("short\""), "{}", r.stderr);
}

#[test]
fn seal_then_open_prints_the_envelope() {
    let dir = tempfile::tempdir().unwrap();
    let file = init(dir.path());
    let f = file.to_str().unwrap();
    let token = ok(
        &["seal", "--keyring", f, "--purpose", "__Host-s", "--user", "alice", "--epoch", "3"],
        r#"{"cart": ["book"], "n": 2}"#,
    );
    let envelope = json(&ok(&["open", "--keyring", f, "--purpose", "__Host-s", &token], ""));
    // The token can come on stdin instead, out of sight of other users.
    assert_eq!(
        json(&ok(&["open", "--keyring", f, "--purpose", "__Host-s"], &format!("{token}\n"))),
        envelope
    );
    assert_eq!(json(&ok(&["open", "--keyring", f, "--purpose", "__Host-s", "-"], &token)), envelope);
    assert_eq!(envelope["user"], "alice");
    assert_eq!(envelope["epoch"], 3);
    assert_eq!(envelope["key_id"], 1);
    assert_eq!(envelope["data"], json(r#"{"cart": ["book"], "n": 2}"#));
    assert_eq!(envelope["session_id"].as_str().unwrap().len(), 32);
    for field in ["issued_at", "expires_at", "last_seen", "idle_expires_at"] {
        assert!(
            time::OffsetDateTime::parse(
                envelope[field].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339
            )
            .is_ok(),
            "{field}"
        );
    }
}

#[test]
fn refused_tokens_exit_1_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = init(dir.path());
    let f = file.to_str().unwrap();
    let token = ok(&["seal", "--keyring", f, "--purpose", "p", "--ttl", "3600", "--idle", "600"], "{}");
    let mut tampered = token.clone().into_bytes();
    tampered[50] = if tampered[50] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let later = (time::OffsetDateTime::now_utc() + time::Duration::hours(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["open", "--keyring", f, "--purpose", "p", "not-a-token!"], "malformed"),
        (vec!["open", "--keyring", f, "--purpose", "p", &tampered], "invalid"),
        (vec!["open", "--keyring", f, "--purpose", "other", &token], "invalid"),
        (
            vec![
                "open",
                "--keyring",
                f,
                "--purpose",
                "p",
                "--ttl",
                "3600",
                "--idle",
                "600",
                "--now",
                &later,
                &token,
            ],
            "expired",
        ),
    ];
    for (args, reason) in cases {
        let r = run(&args, "");
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert!(r.stderr.starts_with(&format!("refused: {reason}")), "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty());
    }
    // Rotated: the first key becomes retired; a keyring without it at all
    // calls it unknown; a fresh keyring's key 1 is another key.
    ok(&["keyring", "add", f], "");
    ok(&["keyring", "promote", f, "2"], "");
    ok(&["keyring", "retire", f, "1"], "");
    let r = run(&["open", "--keyring", f, "--purpose", "p", &token], "");
    assert_eq!(r.code, 1);
    assert!(r.stderr.starts_with("refused: retired key"), "{}", r.stderr);
    let other = tempfile::tempdir().unwrap();
    let fresh = init(other.path());
    let r = run(&["open", "--keyring", fresh.to_str().unwrap(), "--purpose", "p", &token], "");
    assert_eq!((r.code, r.stderr.starts_with("refused: invalid")), (1, true), "{}", r.stderr);
    let without = other.path().join("without.toml");
    let key = sealed_session::KeySpec::new(
        7,
        sealed_session::KeyState::Primary,
        sealed_session::MasterKey::generate().unwrap(),
    );
    let keyring = sealed_session::Keyring::new([key]).unwrap();
    std::fs::write(&without, keyring.to_toml_string().as_bytes()).unwrap();
    std::fs::set_permissions(&without, std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = run(&["open", "--keyring", without.to_str().unwrap(), "--purpose", "p", &token], "");
    assert_eq!((r.code, r.stderr.starts_with("refused: unknown key")), (1, true), "{}", r.stderr);
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = init(dir.path());
    let f = file.to_str().unwrap();
    for (args, stdin, why) in [
        (vec!["seal", "--keyring", f, "--purpose", "p"], "not json", "session data on stdin is not JSON"),
        (vec!["seal", "--keyring", f, "--purpose", "p", "--user", "alice"], "{}", "--epoch <EPOCH>"),
        (
            vec!["seal", "--keyring", f, "--purpose", "p", "--ttl", "60", "--idle", "600"],
            "{}",
            "idle timeout (600 s) must not exceed the absolute timeout (60 s)",
        ),
        (
            vec!["open", "--keyring", f, "--purpose", "p", "--now", "yesterday", "x"],
            "",
            "not an RFC 3339 time",
        ),
        (vec!["revoke", "--store", "mysql://x", "--user", "a"], "", "unknown store URL scheme \"mysql\""),
        (
            vec!["open", "--keyring", f, "--purpose", "p", "--now", "1960-01-01T00:00:00Z", "x"],
            "",
            "--now must not be before 1970",
        ),
        (vec!["no-such-command"], "", "unrecognized subcommand 'no-such-command'"),
        (vec![], "", "Usage: sealed-session <COMMAND>"),
    ] {
        let r = run(&args, stdin);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(why), "{args:?}: {}", r.stderr);
    }
    // A revocation's arguments are checked before anything is revoked: a
    // store in use, each refused for its own reason, and nothing revoked.
    let store = sqlite_in_use(dir.path());
    let session = "a".repeat(32);
    for (args, stdin, why) in [
        (vec!["--session", "nothex", "--until", "1"], "", "32 hex digits"),
        (vec!["--session", session.as_str()], "", "--until"),
        (vec!["--session-token"], "token", "--keyring"),
        (vec!["--user", "a", "--session-token", "t"], "", "cannot be used with"),
    ] {
        let r = run(&[&["revoke", "--store", store.as_str()][..], &args].concat(), stdin);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(why), "{args:?}: {}", r.stderr);
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let state = runtime.block_on(async {
        let store =
            sealed_session_sqlite::SqliteStore::open(dir.path().join("revocations.sqlite3")).await.unwrap();
        let id = sealed_session::SessionId::from_hex(&session).unwrap();
        sealed_session::RevocationStore::state(&store, Some("a"), id).await.unwrap()
    });
    assert_eq!((state.user_epoch, state.session_revoked), (0, false), "a refused revocation was written");
}

/// A SQLite store in `dir`, created with its generation ten seconds in the
/// past, as a server running for a while would have; its URL.
fn sqlite_in_use(dir: &Path) -> String {
    let path = dir.join("revocations.sqlite3");
    let started = time::OffsetDateTime::now_utc().unix_timestamp() - 10;
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let options = sealed_session_sqlite::SqliteOptions::new(&path)
        .create_if_missing(true)
        .clock(sealed_session::ManualClock::at_unix(started));
    runtime.block_on(options.open()).unwrap();
    format!("sqlite:{}", path.display())
}

/// A directory with a keyring file and a SQLite store in use; the store's URL.
fn keyring_and_store() -> (tempfile::TempDir, std::path::PathBuf, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = init(dir.path());
    let store = sqlite_in_use(dir.path());
    (dir, file, store)
}

/// A token of purpose `p` for `user` at epoch 0, sealed with the keyring `f`.
fn signed_in(f: &str, user: &str) -> String {
    ok(&["seal", "--keyring", f, "--purpose", "p", "--user", user, "--epoch", "0"], "{}")
}

/// Times are whole seconds, as the keyring keeps them: a time ahead of
/// now only by its fraction of a second is not in the future (kept, the
/// new key would seal at once, or the old one retire at once).
#[test]
fn a_time_ahead_only_by_its_fraction_is_not_in_the_future() {
    use time::format_description::well_known::Rfc3339;
    let dir = tempfile::tempdir().unwrap();
    let file = init(dir.path());
    let f = file.to_str().unwrap();
    let id = ok(&["keyring", "add", f], "");
    for attempt in 1.. {
        // Early in a second, so that its end is ahead while the commands
        // run; if they ran past it, they proved nothing: again.
        while time::OffsetDateTime::now_utc().millisecond() >= 300 {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let now = time::OffsetDateTime::now_utc();
        let end = now.replace_nanosecond(999_000_000).unwrap().format(&Rfc3339).unwrap();
        let add = run(&["keyring", "add", f, "--activate-at", &end], "");
        let retire = run(&["keyring", "retire", f, id.trim(), "--at", &end], "");
        if time::OffsetDateTime::now_utc().unix_timestamp() != now.unix_timestamp() {
            assert!(attempt < 5, "the commands never ran within one second");
            continue;
        }
        for r in [add, retire] {
            assert_eq!(r.code, 2, "{}", r.stderr);
            assert!(r.stderr.contains("is not in the future"), "{}", r.stderr);
        }
        break;
    }
}

#[test]
fn revoke_and_open_with_a_store() {
    let (_dir, file, store) = keyring_and_store();
    let f = file.to_str().unwrap();

    let alice = signed_in(f, "alice");
    let bob = signed_in(f, "bob");
    let carol = signed_in(f, "carol");
    ok(&["open", "--keyring", f, "--purpose", "p", "--store", &store, &alice], "");

    let answer = json(&ok(&["revoke", "--store", &store, "--user", "alice"], ""));
    assert_eq!(answer["epoch"], 1);
    // A user ID no login accepts is refused before the store is asked;
    // the longest one a login accepts is not.
    let longest = "u".repeat(sealed_session::MAX_USER_ID_LEN);
    assert_eq!(json(&ok(&["revoke", "--store", &store, "--user", &longest], ""))["epoch"], 1);
    let r = run(&["revoke", "--store", &store, "--user", &format!("{longest}u")], "");
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("a user ID of 1025 bytes is longer than the 1024"), "{}", r.stderr);
    // Nor is a session of it sealed, which that could not end.
    signed_in(f, &longest);
    let r = run(
        &["seal", "--keyring", f, "--purpose", "p", "--user", &format!("{longest}u"), "--epoch", "0"],
        "{}",
    );
    assert_eq!((r.code, r.stdout.as_str()), (2, ""), "{}", r.stderr);
    assert!(r.stderr.contains("a user ID of 1025 bytes is longer than the 1024"), "{}", r.stderr);
    let r = run(&["open", "--keyring", f, "--purpose", "p", "--store", &store, &alice], "");
    assert_eq!(r.code, 1);
    assert!(r.stderr.starts_with("refused: revoked"), "{}", r.stderr);

    let envelope = json(&ok(&["open", "--keyring", f, "--purpose", "p", "--store", &store, &bob], ""));
    let id = envelope["session_id"].as_str().unwrap().to_string();
    let until = envelope["expires_at_unix"].as_i64().unwrap().to_string();
    let answer = json(&ok(&["revoke", "--store", &store, "--session", &id, "--until", &until], ""));
    let expires = envelope["expires_at_unix"].as_u64();
    assert_eq!(answer["until"].as_u64(), expires.map(|e| e + 60), "kept past the expiry by the leeway");
    let r = run(&["open", "--keyring", f, "--purpose", "p", "--store", &store, &bob], "");
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("the session was logged out"), "{}", r.stderr);

    // The token itself, on stdin: its ID and expiry come from it.
    let answer = json(&ok(
        &["revoke", "--store", &store, "--session-token", "--keyring", f, "--purpose", "p"],
        &carol,
    ));
    let expires =
        json(&ok(&["open", "--keyring", f, "--purpose", "p", &carol], ""))["expires_at_unix"].as_u64();
    assert_eq!(
        answer["until"].as_u64(),
        expires.map(|e| e + 60),
        "denylisted until its expiry plus the leeway"
    );
    let r = run(&["open", "--keyring", f, "--purpose", "p", "--store", &store, &carol], "");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("the session was logged out"), "{}", r.stderr);
}

/// `revoke --all` cannot be undone: without `--yes` it touches no store
/// and names the one it would have used, without a password or query.
#[test]
fn revoke_all_needs_yes_and_names_the_store_without_its_secrets() {
    let (_dir, file, store) = keyring_and_store();
    let f = file.to_str().unwrap();
    let alice = signed_in(f, "alice");
    let r = run(&["revoke", "--store", &store, "--all"], "");
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(r.stderr.contains(&format!("uses {store}, and cannot be undone")), "{}", r.stderr);
    assert!(r.stderr.contains("--yes"), "{}", r.stderr);
    ok(&["open", "--keyring", f, "--purpose", "p", "--store", &store, &alice], "");
    let urls = [
        ("redis://user:s3cret@127.0.0.1:1/0?x=s3cret", "redis://127.0.0.1:1/0"),
        ("rediss://:s3cret@cache.internal:6380", "rediss://cache.internal:6380"),
        (
            "redis+sentinel://:s3cret@h1:26379,h2:26379/mymaster",
            "redis+sentinel://h1:26379,h2:26379/mymaster",
        ),
        ("postgres://app:s3cret@db/sessions?password=s3cret", "postgres://db/sessions"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://[::1]:6379", "redis://[::1]:6379"),
        // Left unescaped in a password, a `/`, `?`, `#` or `@` makes the
        // URL ambiguous: the scheme alone.
        ("redis://:Zm9v/s3cret@cache:6379/0", "redis://…"),
        ("postgres://app:pa?s3cret@db/x", "postgres://…"),
        ("postgres://app:pa#s3cret@db/x", "postgres://…"),
        ("rediss://:p@s3cret@cache", "rediss://…"),
        ("postgres://app@db/sessions?password=hunter@s3cret", "postgres://…"),
        ("postgres://db/sessions?password=s3cret", "postgres://db/sessions"),
        ("redis://user:s3cret", "redis://…"),
        ("redis://:s3cret", "redis://…"),
        ("host=db password=s3cret", "a store URL that is not of the form scheme://host"),
        ("x password=a://s3cret@db", "a store URL that is not of the form scheme://host"),
        ("sqlite:/var/lib/app/revocations.sqlite3?mode=s3cret", "sqlite:/var/lib/app/revocations.sqlite3"),
    ];
    for (url, shown) in urls {
        let r = run(&["revoke", "--store", url, "--all"], "");
        assert_eq!(r.code, 2, "{}", r.stdout);
        assert!(r.stderr.contains(&format!("uses {shown}, ")), "{}", r.stderr);
        assert!(!r.stderr.contains("s3cret"), "{}", r.stderr);
    }
    let r = run(&["revoke", "--store", &store, "--user", "zed", "--yes"], "");
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(r.stderr.contains("--yes confirms --all only"), "{}", r.stderr);

    json(&ok(&["revoke", "--store", &store, "--all", "--yes"], ""));
    let r = run(&["open", "--keyring", f, "--purpose", "p", "--store", &store, &alice], "");
    assert_eq!(r.code, 1, "{}", r.stderr);
}

/// The reproduction: `revoke --session ID --until 1` exited 0 and let a
/// logged-out session back in.
fn an_until_in_the_past_never_unrevokes(store: &str, f: &str) {
    let token = signed_in(f, "dave");
    let envelope = json(&ok(&["open", "--keyring", f, "--purpose", "p", &token], ""));
    let id = envelope["session_id"].as_str().unwrap().to_string();
    let until = envelope["expires_at_unix"].as_i64().unwrap().to_string();
    ok(&["revoke", "--store", store, "--session", &id, "--until", &until], "");
    // Ended the leeway ago (60 s): no server opens it any more.
    let now = (time::OffsetDateTime::now_utc().unix_timestamp() - 60).to_string();
    for past in ["1", now.as_str()] {
        let r = run(&["revoke", "--store", store, "--session", &id, "--until", past], "");
        assert_eq!(r.code, 2, "--until {past}: {}", r.stderr);
        assert!(r.stderr.contains("not in the future"), "{}", r.stderr);
    }
    let r = run(&["open", "--keyring", f, "--purpose", "p", "--store", store, &token], "");
    assert_eq!(r.code, 1, "the logged-out session opened again: {}", r.stdout);
    // Ended less than the leeway ago: servers whose clocks run behind still
    // open it, so it is revoked, until then plus the leeway.
    let recent = time::OffsetDateTime::now_utc().unix_timestamp() - 30;
    let answer =
        json(&ok(&["revoke", "--store", store, "--session", &id, "--until", &recent.to_string()], ""));
    assert_eq!(answer["until"].as_i64(), Some(recent + 60));
    // Servers with a longer leeway: the entry outlasts the expiry by theirs,
    // and a session that ended longer ago than the default leeway, but
    // less than theirs, still opens there and is revoked.
    let ended = time::OffsetDateTime::now_utc().unix_timestamp() - 200;
    let answer = json(&ok(
        &["revoke", "--store", store, "--session", &id, "--until", &ended.to_string(), "--leeway", "300"],
        "",
    ));
    assert_eq!(answer["until"].as_i64(), Some(ended + 300));
    let answer = json(&ok(
        &["revoke", "--store", store, "--session-token", "--keyring", f, "--purpose", "p", "--leeway", "900"],
        &token,
    ));
    assert_eq!(answer["until"].as_i64(), envelope["expires_at_unix"].as_i64().map(|e| e + 900));
    for (args, says) in [
        (vec!["--session", id.as_str(), "--until", "1", "--leeway", "86401"], "86401"),
        (vec!["--user", "dave", "--leeway", "300"], "--leeway"),
    ] {
        let r = run(&[&["revoke", "--store", store][..], &args].concat(), "");
        assert_eq!(r.code, 2, "{args:?}: {}", r.stdout);
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    }
}

#[test]
fn an_until_in_the_past_is_refused_and_never_unrevokes_in_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let file = init(dir.path());
    an_until_in_the_past_never_unrevokes(&sqlite_in_use(dir.path()), file.to_str().unwrap());
}

#[test]
fn an_until_in_the_past_is_refused_and_never_unrevokes_in_redis() {
    let redis = redis_in_use();
    let dir = tempfile::tempdir().unwrap();
    let file = init(dir.path());
    an_until_in_the_past_never_unrevokes(&redis.url(), file.to_str().unwrap());
}

#[test]
fn revoke_and_open_never_create_a_missing_sqlite_store() {
    let dir = tempfile::tempdir().unwrap();
    let file = init(dir.path());
    let f = file.to_str().unwrap();
    let typo = dir.path().join("revocatoins.sqlite3");
    let store = format!("sqlite:{}", typo.display());
    let r = run(&["revoke", "--store", &store, "--user", "alice"], "");
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("does not exist"), "{}", r.stderr);
    let token = ok(&["seal", "--keyring", f, "--purpose", "p"], "{}");
    assert_eq!(run(&["open", "--keyring", f, "--purpose", "p", "--store", &store, &token], "").code, 2);
    assert!(!typo.exists(), "a mistyped store path created a new, empty store");
    // Not even when the URL asks for it.
    let create = format!("{store}?create=true");
    let r = run(&["revoke", "--store", &create, "--user", "alice"], "");
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("without ?create=true"), "{}", r.stderr);
    assert_eq!(run(&["open", "--keyring", f, "--purpose", "p", "--store", &create, &token], "").code, 2);
    assert!(!typo.exists(), "a store URL with ?create=true created a new, empty store");
    // Nor a store of this process alone.
    let r = run(&["revoke", "--store", "memory:", "--user", "alice"], "");
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("no server reads"), "{}", r.stderr);
    assert_eq!(run(&["open", "--keyring", f, "--purpose", "p", "--store", "memory:", &token], "").code, 2);
}

#[test]
fn an_unreachable_store_is_a_configuration_error_not_an_acceptance() {
    let dir = tempfile::tempdir().unwrap();
    let file = init(dir.path());
    let f = file.to_str().unwrap();
    let token = ok(&["seal", "--keyring", f, "--purpose", "p"], "{}");
    let port = sealed_session_testkit::free_port();
    // The URL's password is never echoed.
    let store = format!("redis://app:hunter2@127.0.0.1:{port}/0");
    for args in [
        vec!["open", "--keyring", f, "--purpose", "p", "--store", &store, &token],
        vec!["revoke", "--store", &store, "--user", "alice"],
    ] {
        let r = run(&args, "");
        assert_eq!(r.code, 2, "{}", r.stderr);
        assert!(r.stdout.is_empty());
        assert!(r.stderr.contains("cannot connect to Redis"), "{}", r.stderr);
        assert!(!r.stderr.contains("hunter2"), "{}", r.stderr);
    }
}

/// A user revoked through `store` can no longer open the token sealed
/// before.
fn revoke_and_open_through(store: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = init(dir.path());
    let f = file.to_str().unwrap();
    let token = signed_in(f, "alice");
    ok(&["open", "--keyring", f, "--purpose", "p", "--store", store, &token], "");
    assert_eq!(json(&ok(&["revoke", "--store", store, "--user", "alice"], ""))["epoch"], 1);
    let r = run(&["open", "--keyring", f, "--purpose", "p", "--store", store, &token], "");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.starts_with("refused: revoked"), "{}", r.stderr);
}

/// A PostgreSQL server whose store has been in use for a while: its
/// tables, as the store's documentation gives them, and its generation
/// made ten seconds ago.
fn postgres_in_use() -> sealed_session_testkit::postgres::PostgresServer {
    let postgres = sealed_session_testkit::postgres::PostgresServer::start();
    let _ = postgres.psql(
        "CREATE TABLE sealed_session_meta (key text PRIMARY KEY, value bigint NOT NULL);
         CREATE TABLE sealed_session_user_epochs (user_id text PRIMARY KEY, epoch bigint NOT NULL);
         CREATE TABLE sealed_session_denied (session_id bytea PRIMARY KEY, expires_at bigint NOT NULL);",
    );
    let started = time::OffsetDateTime::now_utc().unix_timestamp() - 10;
    let _ = postgres.psql(&format!("INSERT INTO sealed_session_meta VALUES ('generation', {started})"));
    postgres
}

/// A Redis server whose keyspace has been in use for a while: its
/// generation ten seconds ago.
fn redis_in_use() -> RedisServer {
    let redis = RedisServer::start();
    let started = (time::OffsetDateTime::now_utc().unix_timestamp() - 10).to_string();
    assert_eq!(redis.cli(&["SET", "sealed-session:generation", &started]), "OK");
    redis
}

/// `revoke` and `open` on a store no server has set up (a wrong database
/// number, schema or file) are refused, and write nothing there: a
/// revocation into it would reach no server. `check` names what to look
/// at in the refusal, `empty` says whether the store is still untouched.
fn refused_where_no_server_set_up(store: &str, check: &str, empty: impl Fn() -> bool) {
    let dir = tempfile::tempdir().unwrap();
    let file = init(dir.path());
    let f = file.to_str().unwrap();
    let r = run(&["revoke", "--store", store, "--user", "alice"], "");
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains(check), "{}", r.stderr);
    let r = run(&["open", "--keyring", f, "--purpose", "p", "--store", store, &signed_in(f, "alice")], "");
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains(check), "{}", r.stderr);
    assert!(empty(), "the store was set up");
}

#[test]
fn a_sqlite_file_no_server_set_up_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.sqlite3");
    std::fs::write(&path, b"").unwrap();
    let store = format!("sqlite:{}", path.display());
    refused_where_no_server_set_up(&store, "check the path", || std::fs::read(&path).unwrap().is_empty());
}

// Both checks on one server of each store: the global logout comes after
// the revocation of alice (its token is bob's, whose epoch is untouched).
#[test]
fn revoke_and_open_and_a_global_logout_from_a_clock_ahead_with_redis() {
    let redis = redis_in_use();
    let other_database = redis.url().replace("/0", "/5");
    refused_where_no_server_set_up(&other_database, "database number", || {
        redis.cli(&["-n", "5", "DBSIZE"]) == "0"
    });
    revoke_and_open_through(&redis.url());
    revoke_a_token_from_a_host_two_hours_ahead(&redis.url());
    revoke_all_from_a_host_six_hours_ahead(&redis.url());
}

#[test]
fn revoke_and_open_and_a_global_logout_from_a_clock_ahead_with_postgres() {
    let postgres = postgres_in_use();
    let _ = postgres.psql("CREATE SCHEMA other");
    let other_schema = format!("{}?options[search_path]=other", postgres.url());
    refused_where_no_server_set_up(&other_schema, "check the URL's database", || {
        postgres.psql("SELECT count(*) FROM pg_tables WHERE schemaname = 'other'") == "0"
    });
    revoke_and_open_through(&postgres.url());
    revoke_a_token_from_a_host_two_hours_ahead(&postgres.url());
    revoke_all_from_a_host_six_hours_ahead(&postgres.url());
}

/// `revoke --session-token`, and `revoke --session --until`, from a host
/// whose clock runs two hours ahead, past the session's expiry (an hour
/// from now): whether the session has expired is the store's to say, by
/// its clock, so it is revoked. (The CLI used to call it expired by its own
/// clock and revoke nothing.)
fn revoke_a_token_from_a_host_two_hours_ahead(store: &str) {
    use sealed_session::{Keyring, Sealer, Session};
    let dir = tempfile::tempdir().unwrap();
    let file = init(dir.path());
    let f = file.to_str().unwrap();
    let sealer = Sealer::builder(Keyring::load(&file).unwrap())
        .absolute_timeout(std::time::Duration::from_secs(3600))
        .build()
        .unwrap();
    let token = sealer.seal(&Session::new(()).with_user("erin", 0)).unwrap();
    let purpose = ["--keyring", f, "--purpose", "__Host-session"];
    let two_hours_ahead = |args: &[&str], stdin: &str| {
        let mut command = Command::new("faketime");
        command.args(["-f", "+2h"]).arg(assert_cmd::cargo::cargo_bin("sealed-session"));
        command.args([&["revoke", "--store", store][..], args].concat());
        run_command(command.env("FAKETIME_DONT_FAKE_MONOTONIC", "1").write_stdin(stdin))
    };
    let r = two_hours_ahead(&[&["--session-token"][..], &purpose].concat(), &token);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(json(&r.stdout).get("already_expired").is_none(), "{}", r.stdout);
    let r = run(&[&["open", "--store", store][..], &purpose, &[&token]].concat(), "");
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stderr.contains("the session was logged out"), "{}", r.stderr);

    let other = sealer.seal(&Session::new(()).with_user("frank", 0)).unwrap();
    let envelope = json(&ok(&[&["open"][..], &purpose, &[&other]].concat(), ""));
    let id = envelope["session_id"].as_str().unwrap();
    let until = envelope["expires_at_unix"].as_i64().unwrap().to_string();
    let r = two_hours_ahead(&["--session", id, "--until", &until], "");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run(&[&["open", "--store", store][..], &purpose, &[&other]].concat(), "");
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stderr.contains("the session was logged out"), "{}", r.stderr);
}

/// `revoke --all` from a host whose clock runs six hours ahead: the store
/// dates the cutoff by its own clock, so logins everywhere keep working
/// (before, the cutoff moved six hours ahead and nothing could lower it).
/// The host's clock is moved with libfaketime, for the CLI process only.
fn revoke_all_from_a_host_six_hours_ahead(store: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = init(dir.path());
    let f = file.to_str().unwrap();
    let output = std::process::Command::new("faketime")
        .args(["-f", "+6h"])
        .arg(assert_cmd::cargo::cargo_bin("sealed-session"))
        .args(["revoke", "--store", store, "--all", "--yes"])
        .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
        .output()
        .expect("run faketime (Debian package faketime)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let cutoff = json(String::from_utf8_lossy(&output.stdout).trim())["revoked_through"].as_i64().unwrap();
    assert!((now - 2..=now + 1).contains(&cutoff), "cutoff {cutoff}, the store's time is {now}");
    assert!(stderr.contains("ahead of the store's"), "{stderr}");
    // A session sealed on a correct clock after the cutoff's second opens.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    // bob: the tests run it after revoking alice on the same store.
    let token = signed_in(f, "bob");
    ok(&["open", "--keyring", f, "--purpose", "p", "--store", store, &token], "");
}

/// An operator ending a stolen session from its token needs only the
/// keyring, the store and the cookie name: a remember-me token, and one the
/// CLI's old default timeouts called expired (idle for two hours), are
/// revoked; `open` says which profile a token has.
#[test]
fn revoke_takes_any_token_a_server_would_accept_and_open_names_its_profile() {
    use sealed_session::{Keyring, Sealer, Session};
    let (_dir, file, store) = keyring_and_store();
    let f = file.to_str().unwrap();
    let now = time::OffsetDateTime::now_utc();
    let server = Sealer::builder(Keyring::load(&file).unwrap())
        .remember_me(std::time::Duration::from_secs(30 * 86_400), std::time::Duration::from_secs(7 * 86_400))
        .build()
        .unwrap();
    let remembered = server.seal(&Session::new(()).with_user("alice", 0).remembered()).unwrap();
    let idle = server.seal_at(&Session::new(()).with_user("bob", 0), now - time::Duration::hours(2)).unwrap();
    let expired =
        server.seal_at(&Session::new(()).with_user("carol", 0), now - time::Duration::hours(13)).unwrap();
    let purpose = ["--keyring", f, "--purpose", "__Host-session"];

    let envelope = json(&ok(&[&["open"][..], &purpose, &[&remembered]].concat(), ""));
    assert_eq!(envelope["profile"], "remember-me");
    assert_eq!(envelope["user"], "alice");
    // As a server without remember-me opens it: refused.
    let r = run(&[&["open", "--no-remember-me"][..], &purpose, &[&remembered]].concat(), "");
    assert_eq!(r.code, 1, "{}", r.stdout);
    let r = run(
        &[&["open", "--no-remember-me", "--remember-ttl", "60"][..], &purpose, &[&remembered]].concat(),
        "",
    );
    assert_eq!(r.code, 2, "remember-me timeouts and none at once: {}", r.stderr);
    let r = run(&[&["open"][..], &purpose, &[&idle]].concat(), "");
    assert!(r.stderr.contains("expired"), "the server's timeouts were not given: {}", r.stderr);
    let standard = server.seal(&Session::new(()).with_user("dan", 0)).unwrap();
    assert_eq!(json(&ok(&[&["open"][..], &purpose, &[&standard]].concat(), ""))["profile"], "standard");

    for token in [&remembered, &idle] {
        let answer =
            json(&ok(&[&["revoke", "--store", &store, "--session-token"][..], &purpose].concat(), token));
        let inspected = server.inspect(token).unwrap();
        assert_eq!(answer["session"], inspected.session_id.to_hex());
        assert_eq!(answer["until"].as_i64(), Some(inspected.expires_at.unix_timestamp() + 60));
    }
    let r = run(&[&["open", "--store", &store][..], &purpose, &[&remembered]].concat(), "");
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("the session was logged out"), "{}", r.stderr);

    // Past its absolute expiry, no server opens it: nothing to do, no error.
    let answer =
        json(&ok(&[&["revoke", "--store", &store, "--session-token"][..], &purpose].concat(), &expired));
    assert_eq!(answer["already_expired"], true);
    // A token that does not authenticate is refused as such.
    // (A character in the middle: every one of its bits counts.)
    let mut forged = standard.clone();
    let flipped = if &forged[60..61] == "A" { "B" } else { "A" };
    forged.replace_range(60..61, flipped);
    let r = run(&[&["revoke", "--store", &store, "--session-token"][..], &purpose].concat(), &forged);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("invalid"), "{}", r.stderr);
}

/// A device-bound token (the format's test vector) opens with
/// `--device-bound`, as on a server with device-bound sessions, and is
/// refused as invalid without it, as such a server would refuse it.
#[test]
fn a_device_bound_token_opens_with_its_lifetime() {
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("../../../tests/vectors/v2.json")).unwrap();
    let bound = vectors["valid"].as_array().unwrap().iter().find(|v| v["device_bound"] == true).unwrap();
    let key = vectors["keys"].as_array().unwrap().iter().find(|k| k["id"] == bound["key_id"]).unwrap();
    let hex = key["secret"].as_str().unwrap();
    let secret: Vec<u8> =
        (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    let id = u32::try_from(key["id"].as_u64().unwrap()).unwrap();
    let keyring =
        sealed_session::Keyring::single(id, sealed_session::MasterKey::from_slice(&secret).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keyring.toml");
    std::fs::write(&file, keyring.to_toml_string()).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let now = time::OffsetDateTime::from_unix_timestamp(vectors["now"].as_i64().unwrap())
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let purpose = vectors["purpose"].as_str().unwrap();
    let lifetime = vectors["device_bound_lifetime"].to_string();
    let open = ["open", "--keyring", file.to_str().unwrap(), "--purpose", purpose, "--now", &now];
    let token = bound["token"].as_str().unwrap();

    let opened = json(&ok(&[&open[..], &["--device-bound", &lifetime]].concat(), token));
    assert_eq!(opened["device_bound"], true, "{opened}");
    assert_eq!(opened["session_id"], bound["session_id"], "{opened}");
    let r = run(&open, token);
    assert_eq!(r.code, 1, "{}", r.stdout);
    assert!(r.stderr.starts_with("refused: invalid"), "{}", r.stderr);
}

/// A token on stdin is read into memory sized once (and wiped on drop):
/// input longer than that is refused, not read on; as long as that, it is
/// read and refused as a token.
#[test]
fn a_token_on_stdin_longer_than_its_buffer_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = init(dir.path());
    let open = ["open", "--keyring", file.to_str().unwrap(), "--purpose", "p"];
    let r = run(&open, &"A".repeat(64 * 1024 + 1));
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(r.stderr.contains("the token on stdin is longer than 65536 bytes"), "{}", r.stderr);
    let r = run(&open, &"A".repeat(64 * 1024));
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.starts_with("refused:"), "{}", r.stderr);
}

/// The store can come from `SEALED_SESSION_STORE`, so that a password in
/// its URL stays off the command line (and out of `ps`).
#[test]
fn the_store_can_come_from_the_environment() {
    let (_dir, file, store) = keyring_and_store();
    let f = file.to_str().unwrap();
    let token = signed_in(f, "zoe");
    let from_env = |args: &[&str]| {
        let mut command = Command::cargo_bin("sealed-session").unwrap();
        run_command(command.args(args).env("SEALED_SESSION_STORE", &store).write_stdin(""))
    };
    let revoked = from_env(&["revoke", "--user", "zoe"]);
    assert_eq!(revoked.code, 0, "{}", revoked.stderr);
    assert_eq!(json(&revoked.stdout)["epoch"], 1);
    let opened = from_env(&["open", "--keyring", f, "--purpose", "p", &token]);
    assert_eq!(opened.code, 1, "open did not check the store it was given: {}", opened.stdout);
    assert!(opened.stderr.contains("logged out"), "{}", opened.stderr);
    // `--help` names the variable, never its value (the URL's password).
    for command in ["open", "revoke"] {
        let mut help = Command::cargo_bin("sealed-session").unwrap();
        let help = help.args([command, "--help"]).env("SEALED_SESSION_STORE", "redis://:s3cret-pw@db:6379/0");
        let r = run_command(help);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.contains("SEALED_SESSION_STORE"), "{}", r.stdout);
        assert!(!format!("{}{}", r.stdout, r.stderr).contains("s3cret"), "{command} --help: {}", r.stdout);
    }
}

/// A change to a keyring given through a symbolic link, or with a second
/// name (a hard link), is refused: the rename would replace one name and
/// leave the file the other leads to, which servers may read, with the old
/// keys.
#[test]
fn a_change_through_a_symbolic_or_hard_link_is_refused_and_leftover_copies_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let file = init(dir.path());
    let link = dir.path().join("link.toml");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    let before = std::fs::read(&file).unwrap();
    let r = run(&["keyring", "add", link.to_str().unwrap()], "");
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(r.stderr.contains("symbolic link"), "{}", r.stderr);
    assert_eq!(std::fs::read(&file).unwrap(), before, "the file it points to changed");
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link was replaced");
    let temps = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".tmp"));
    assert_eq!(temps.count(), 0, "a temporary file was left");
    std::fs::remove_file(&link).unwrap();
    // A copy a run killed while writing left behind holds keys: the next
    // change, under the lock, removes it.
    let id = "0123456789abcdef0123456789ABCDEF";
    let leftover = dir.path().join(format!(".keyring.toml.4242.{id}.tmp"));
    // Not this keyring's: another's (`keyring.toml.next`), or no name it writes.
    let others = [
        format!(".keyring.toml.next.4242.{id}.tmp"),
        format!(".keyring.toml.next.{id}.tmp"),
        ".keyring.toml.7.abc.tmp".to_owned(),
    ];
    for name in others.iter().chain([&format!(".keyring.toml.4242.{id}.tmp")]) {
        std::fs::write(dir.path().join(name), b"[[key]]").unwrap();
    }
    // A run that writes nothing removes nothing.
    ok(
        &[
            "keyring",
            "rotate",
            file.to_str().unwrap(),
            "--every",
            "30",
            "--keep",
            "90",
            "--now",
            "2030-01-01T00:00:00Z",
        ],
        "",
    );
    assert!(leftover.exists(), "a dry run removed a file");
    ok(&["keyring", "add", file.to_str().unwrap()], "");
    assert!(!leftover.exists(), "a leftover copy of the keyring stayed");
    for name in &others {
        assert!(dir.path().join(name).exists(), "{name}, no copy of this keyring, was removed");
    }
    assert!(dir.path().join(".keyring.toml.lock").exists(), "the lock file is no copy");
    // A second name (a hard link) would keep the old keys just the same.
    let before = std::fs::read(&file).unwrap();
    std::fs::hard_link(&file, &link).unwrap();
    let r = run(&["keyring", "add", file.to_str().unwrap()], "");
    assert_eq!(r.code, 2, "{}", r.stdout);
    assert!(r.stderr.contains("hard links"), "{}", r.stderr);
    assert_eq!(std::fs::read(&link).unwrap(), before, "the change reached one name only");
}

/// SECURITY.md: a SQLite store answers from its cache only while its last
/// poll of the file began under 250 ms ago, however late the polls run.
/// Here none runs after the CLI's revocation (a current-thread runtime is
/// not driven meanwhile), so only that bound can end the cached answer: 300
/// ms later by the store's clock, within the cache TTL, the check reads the
/// file.
#[test]
fn a_sqlite_cache_whose_polls_stopped_is_not_used_past_250_ms() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("revocations.sqlite3");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let clock = sealed_session::ManualClock::at_unix(sealed_session_testkit::unix_now() - 10);
    let options =
        sealed_session_sqlite::SqliteOptions::new(&path).create_if_missing(true).clock(clock.clone());
    let server = sealed_session::Verifier::new(
        sealed_session::Sealer::builder(sealed_session_testkit::keyring(4)).build().unwrap(),
        runtime.block_on(options.open()).unwrap(),
    );
    let token = runtime.block_on(async {
        let token = server.sealer().seal(&server.login("alice", ()).await.unwrap()).unwrap();
        // Polled (every 25 ms), and the answer cached.
        tokio::time::sleep(std::time::Duration::from_millis(60)).await;
        assert!(server.open::<()>(&token).await.is_ok());
        token
    });
    ok(&["revoke", "--store", &format!("sqlite:{}", path.display()), "--user", "alice"], "");
    clock.advance(std::time::Duration::from_millis(300));
    let result = runtime.block_on(server.open::<()>(&token));
    assert!(
        matches!(result, Err(sealed_session::VerifyError::Revoked(_))),
        "answered from the cache: {result:?}"
    );
}

/// `check` warns of a key ID more than two above the one before it: while
/// that key is rolled out, servers without it remove its cookies.
#[test]
fn check_warns_of_a_gap_in_key_ids() {
    let dir = tempfile::tempdir().unwrap();
    let file = init(dir.path());
    let f = file.to_str().unwrap();
    let clean = run(&["check", "--keyring", f], "");
    assert_eq!(json(&clean.stdout)["warnings"], serde_json::json!([]), "{}", clean.stdout);
    assert!(!clean.stderr.contains("warning"), "{}", clean.stderr);
    let [one] = <[String; 1]>::try_from(secrets(&file)).unwrap();
    let five = ok(&["keygen"], "");
    let text = format!(
        "[[key]]\nid = 1\nstate = \"active\"\nsecret = \"{one}\"\n\n[[key]]\nid = 5\nstate = \"primary\"\nsecret = \"{five}\"\n"
    );
    std::fs::write(&file, text).unwrap();
    let gap = run(&["check", "--keyring", f], "");
    assert_eq!(gap.code, 0, "{}", gap.stderr);
    let warnings = json(&gap.stdout)["warnings"].clone();
    assert!(warnings[0].as_str().unwrap().starts_with("key 5 follows key 1"), "{warnings}");
    assert!(gap.stderr.contains("warning: key 5 follows key 1"), "{}", gap.stderr);
}

/// No command prints a secret of the keyring it works on, on stdout or
/// stderr, whether it succeeds or fails: every keyring command, `check`
/// (valid and broken file) and `plan`, over a file that has held several
/// keys (base64url as in the file, and as hex).
#[test]
fn no_keyring_command_prints_a_secret() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keyring.toml");
    let f = file.to_str().unwrap();
    let mut printed = String::new();
    let mut known = std::collections::BTreeSet::new();
    let mut each = |args: &[&str]| {
        let r = run(args, "");
        printed.push_str(&r.stdout);
        printed.push_str(&r.stderr);
        if let Ok(text) = std::fs::read_to_string(&file) {
            known.extend(
                text.lines()
                    .filter_map(|l| Some(l.strip_prefix("secret = \"")?.strip_suffix('"')?.to_owned())),
            );
        }
        r.code
    };
    assert_eq!(each(&["keyring", "init", f]), 0);
    assert_eq!(each(&["keyring", "add", f]), 0);
    assert_eq!(each(&["keyring", "promote", f, "2"]), 0);
    assert_eq!(each(&["keyring", "retire", f, "1", "--at", "+1d"]), 0);
    assert_eq!(each(&["keyring", "retire", f, "1"]), 0);
    assert_eq!(each(&["keyring", "add", f, "--activate-at", "+1h"]), 0);
    assert_eq!(each(&["keyring", "list", f]), 0);
    assert_eq!(each(&["keyring", "plan", f]), 0);
    assert_eq!(each(&["check", "--keyring", f]), 0);
    assert_eq!(each(&["keyring", "rotate", f, "--every", "30", "--keep", "90"]), 0);
    assert_eq!(each(&["keyring", "retire", f, "3", "--replace"]), 0, "{printed}");
    // Failing ones: a key that does not exist, a second init, a broken file.
    assert_eq!(each(&["keyring", "promote", f, "99"]), 2);
    assert_eq!(each(&["keyring", "init", f]), 2);
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replacen("state = \"primary\"", "state = \"primery\"", 1)).unwrap();
    assert_eq!(each(&["check", "--keyring", f]), 2);
    assert_eq!(each(&["keyring", "list", f]), 2);
    assert_eq!(known.len(), 4, "every key the file held: {known:?}");
    for secret in &known {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(secret).unwrap();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert!(
            !printed.contains(secret.as_str()) && !printed.contains(&hex),
            "a secret was printed: {printed}"
        );
    }
}

/// A keyring written under a narrow umask is still `0600` (or the mode the
/// file had): the server that reads it must be able to. `0277` would make
/// a new file `0400`, and `0477` write-only.
#[test]
fn the_umask_does_not_change_a_keyrings_mode() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("keyring.toml");
    let f = file.to_str().unwrap();
    let under_umask = |umask: &str, args: &str| {
        let script = format!("umask {umask} && exec \"$0\" {args}");
        let status = std::process::Command::new("sh")
            .args(["-c", &script, env!("CARGO_BIN_EXE_sealed-session")])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "umask {umask}: {args}");
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777
    };
    assert_eq!(under_umask("0477", &format!("keyring init {f}")), 0o600);
    assert_eq!(under_umask("0277", &format!("keyring add {f}")), 0o600);
    let lock = std::fs::metadata(dir.path().join(".keyring.toml.lock")).unwrap();
    assert_eq!(lock.permissions().mode() & 0o777, 0o600, "the lock file the change made");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o400)).unwrap();
    assert_eq!(under_umask("0477", &format!("keyring add {f}")), 0o400, "a read-only keyring stays so");
    // One its owner cannot read (the umask's doing, before) becomes readable.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o200)).unwrap();
    assert_eq!(under_umask("0022", &format!("keyring add {f}")), 0o600);
}
