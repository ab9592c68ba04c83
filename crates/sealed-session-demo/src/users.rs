//! The demo's users, with their passwords stored as Argon2id hashes (the
//! parameters OWASP recommends: 19 MiB, two passes, one lane).

use argon2::password_hash::{PasswordHash, PasswordVerifier as _};
use argon2::Argon2;

/// User name and PHC string of each demo user's password
/// (`alice-pass`, `bob-pass`).
const USERS: &[(&str, &str)] = &[
    (
        "alice",
        "$argon2id$v=19$m=19456,t=2,p=1$57CSuLeQIBE8UuOeftGzOg$MYLCwVrq+Z4pty3UZAetZQldw8DBAMKUE1YOw8TYLHg",
    ),
    (
        "bob",
        "$argon2id$v=19$m=19456,t=2,p=1$2KJiQPElbZXiHK9gYyqqbA$urx6Kd16PJRnwWkfGtSiFvotWVfl51IlimFuzoBhdn4",
    ),
];

/// Checked for unknown users, so that a wrong name costs as much time as a
/// wrong password.
const NO_SUCH_USER: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$0nI9ASwuj0rPNokNchxXZg$YOR4djV+uPTX+xA7iiasfk+Zi159GNw5NGNS5Ka9jL4";

/// Whether `password` is `username`'s. Takes tens of milliseconds on
/// purpose: call it off the async executor (`spawn_blocking`).
#[must_use]
pub fn check_password(username: &str, password: &str) -> bool {
    let known = USERS.iter().find(|(name, _)| *name == username).map(|(_, hash)| *hash);
    let verified = PasswordHash::new(known.unwrap_or(NO_SUCH_USER))
        .is_ok_and(|hash| Argon2::default().verify_password(password.as_bytes(), &hash).is_ok());
    verified && known.is_some()
}

#[cfg(test)]
mod tests {
    use super::check_password;

    #[test]
    fn only_the_right_password_for_a_known_user_passes() {
        assert!(check_password("alice", "alice-pass"));
        assert!(check_password("bob", "bob-pass"));
        assert!(!check_password("alice", "bob-pass"));
        assert!(!check_password("alice", ""));
        assert!(!check_password("mallory", "alice-pass"));
        assert!(!check_password("mallory", "no user has this password"), "the stand-in hash matches nobody");
    }
}
