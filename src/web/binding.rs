//! Device-bound sessions (DBSC): what a configuration holds for them (the
//! public [`DeviceBinding`] settings and the sealers of the companion cookie,
//! session identifiers and challenges), and what the driver asks of them on
//! an ordinary response (an offer after login, a new companion cookie when
//! a bound session is sealed again). The endpoints are in `dbsc.rs`.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::dbsc::{self, Algorithm};
use crate::session::Times;
use crate::{CookieSpec, SealError, Sealer, Session, SessionId};

/// Where browsers register a session by default.
pub const DEFAULT_REGISTRATION_PATH: &str = "/dbsc/register";
/// Where browsers refresh a bound session by default.
pub const DEFAULT_REFRESH_PATH: &str = "/dbsc/refresh";
/// How long a bound session cookie lives after each proof, by default: 10
/// minutes. A copy of it works no longer than that.
pub const DEFAULT_BOUND_LIFETIME: Duration = Duration::from_secs(600);
/// How long a challenge can be answered: 5 minutes. A challenge sent ahead
/// with a new bound cookie, for the browser's next refresh, can be
/// answered for the bound lifetime plus this.
pub const CHALLENGE_LIFETIME: Duration = Duration::from_secs(300);

/// Device-bound sessions, for [`WebConfigBuilder::device_bound_sessions`](super::WebConfigBuilder::device_bound_sessions):
/// where the endpoints are, how long a bound cookie lives, which
/// algorithms are offered, and which paths need a bound session.
///
/// ```
/// use sealed_session::web::DeviceBinding;
/// use std::time::Duration;
///
/// let binding = DeviceBinding::default()
///     .bound_lifetime(Duration::from_secs(300))
///     .require_for("/admin");
/// # let _ = binding;
/// ```
#[derive(Debug, Clone)]
pub struct DeviceBinding {
    pub(crate) registration_path: String,
    pub(crate) refresh_path: String,
    pub(crate) lifetime: Duration,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) offer_to_unbound: bool,
    pub(crate) required: Vec<String>,
    pub(crate) refresh_initiators: Vec<String>,
}

impl Default for DeviceBinding {
    /// The endpoints at [`DEFAULT_REGISTRATION_PATH`] and
    /// [`DEFAULT_REFRESH_PATH`], bound cookies of
    /// [`DEFAULT_BOUND_LIFETIME`], ES256 then RS256 offered at each login,
    /// no path that requires binding.
    fn default() -> Self {
        Self {
            registration_path: DEFAULT_REGISTRATION_PATH.to_owned(),
            refresh_path: DEFAULT_REFRESH_PATH.to_owned(),
            lifetime: DEFAULT_BOUND_LIFETIME,
            algorithms: vec![Algorithm::Es256, Algorithm::Rs256],
            offer_to_unbound: false,
            required: Vec::new(),
            refresh_initiators: Vec::new(),
        }
    }
}

impl DeviceBinding {
    /// The path of the registration endpoint, as the browser requests it
    /// and the driver sees it (mount the layer at the root).
    #[must_use]
    pub fn registration_path(mut self, path: impl Into<String>) -> Self {
        self.registration_path = path.into();
        self
    }

    /// The path of the refresh endpoint, as the browser requests it and the
    /// driver sees it.
    #[must_use]
    pub fn refresh_path(mut self, path: impl Into<String>) -> Self {
        self.refresh_path = path.into();
        self
    }

    /// How long a bound session cookie opens after each proof of
    /// possession (at least a second, at most the sealer's idle timeout and
    /// its remember-me idle timeout: building the configuration refuses a
    /// longer one): a stolen copy works no longer, and the browser proves
    /// possession again this often while it is used.
    #[must_use]
    pub fn bound_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// The algorithms offered, in order of preference (ES256 and RS256 by
    /// default; an empty list offers both).
    #[must_use]
    pub fn algorithms(mut self, algorithms: &[Algorithm]) -> Self {
        self.algorithms =
            if algorithms.is_empty() { Self::default().algorithms } else { algorithms.to_vec() };
        self
    }

    /// Offers binding on every response to a signed-in session that is not
    /// bound, not only after login: sessions that began before binding was
    /// turned on get bound too. Costs a sealed challenge on each such
    /// response (browsers without DBSC never stop getting them).
    ///
    /// Whoever holds an unbound cookie gets the offer too: a thief with a
    /// copy can bind it to a key of their own (the owner's session then
    /// ends, as registration ends the unbound session), and that bound
    /// session passes [`require_for`](Self::require_for). Without this
    /// option only the answer to the login itself offers binding.
    #[must_use]
    pub fn offer_to_unbound_sessions(mut self) -> Self {
        self.offer_to_unbound = true;
        self
    }

    /// Requests to `path` and below (`/admin` covers `/admin` and
    /// `/admin/users`, not `/administrator`) with a session that is not
    /// device-bound are refused with `403` before their handler runs. A
    /// browser without DBSC cannot reach them signed in.
    ///
    /// The spellings that routers send to such a path count too: with
    /// empty or `.` segments (`//admin`, `/./admin`), `..` segments, or
    /// percent-encoded (whole, or a segment at a time). The path is the one the session layer sees: under
    /// axum's `Router::nest`, give the layer to the outer router, or name
    /// the paths as the nested router sees them.
    #[must_use]
    pub fn require_for(mut self, path: impl Into<String>) -> Self {
        self.required.push(path.into());
        self
    }

    /// Lets pages of hosts matching `pattern`, outside the session's
    /// origin, start a refresh of the bound cookie (the draft's
    /// `allowed_refresh_initiators`): a host (`app.example.com`, or an IPv4
    /// address), `*.example.com` for the hosts below a domain (not the
    /// domain itself), or `*` for any. By default only requests of the
    /// session's own origin do: a link from a sister host goes without a
    /// refresh, and arrives without the bound cookie if it lapsed. Each
    /// pattern is checked when the configuration is built
    /// ([`WebConfigError::DeviceBindingInitiator`](crate::web::WebConfigError::DeviceBindingInitiator)).
    ///
    /// Name hosts of the same site (`*.example.com` for `www.example.com`).
    /// A refresh another site starts is a cross-site request: under the
    /// default `SameSite=Lax` it carries no companion cookie (it has the
    /// session cookie's attributes), and the binding ends; only a session
    /// cookie with `SameSite=None` lets another site's pages refresh. The
    /// list goes out at registration: a binding keeps the list it was
    /// registered with. And the draft's privacy note: a host allowed to
    /// start refreshes can tell, by how long its request takes, whether
    /// the user is signed in here.
    #[must_use]
    pub fn allow_refresh_from(mut self, pattern: impl Into<String>) -> Self {
        self.refresh_initiators.push(pattern.into());
        self
    }

    /// Whether `path` needs a bound session: whether its segments begin
    /// with a required path's, read as it came, percent-decoded whole (some
    /// routers, actix-web's among them, route `/%61dmin` to `/admin`), or
    /// decoded a segment at a time (`%2E%2E` a dot segment, `%2F` kept
    /// inside its segment).
    pub(crate) fn requires(&self, path: &str) -> bool {
        use percent_encoding::percent_decode;
        let raw = path.as_bytes();
        let split = |bytes: &[u8]| bytes.split(|&b| b == b'/').map(<[u8]>::to_vec).collect::<Vec<_>>();
        let mut views = vec![split(raw)];
        if path.contains('%') {
            views.push(split(&percent_decode(raw).collect::<Vec<u8>>()));
            views.push(raw.split(|&b| b == b'/').map(|s| percent_decode(s).collect()).collect());
        }
        // `..` resolved, or taken as a segment like any other (axum routes
        // `/admin/..` to `/admin/{rest}`).
        views.iter().any(|view| {
            [true, false].into_iter().any(|resolve| {
                let path = segments(view.iter().map(Vec::as_slice), resolve);
                self.required
                    .iter()
                    .any(|prefix| path.starts_with(&segments(prefix.as_bytes().split(|&b| b == b'/'), true)))
            })
        })
    }
}

/// The segments of a path (`parts`, split at each `/`) as a router that
/// merges slashes would see them, and with `resolve`, one that also
/// resolves `..`: `//a/./b/../c/` is `[a, c]`, or `[a, b, .., c]`.
fn segments<'a>(parts: impl Iterator<Item = &'a [u8]>, resolve: bool) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    for segment in parts {
        match segment {
            b"" | b"." => {}
            b".." if resolve => {
                out.pop();
            }
            segment => out.push(segment),
        }
    }
    out
}

/// Whether `pattern` is one the draft matches hosts against ("Identify if
/// a host matches a pattern"): `*`; or a host as a browser serializes it,
/// alone or after `*.`: a domain in lower case (an internationalized one
/// in its `xn--` form), or an IPv4 address in dotted decimal, never after
/// `*.` (the draft matches addresses whole). Anything else (a scheme, a
/// port, a path, upper case, an empty label, an address a browser would
/// write otherwise, an IPv6 address) would match no request's host, or not
/// the one meant.
pub(crate) fn is_initiator_pattern(pattern: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    let (wildcard, host) = match pattern.strip_prefix("*.") {
        Some(host) => (true, host),
        None => (false, pattern),
    };
    // A browser reads a host whose last label is a number as an address.
    let last = host.rsplit('.').next().unwrap_or(host);
    if last.bytes().all(|b| b.is_ascii_digit()) || last.starts_with("0x") {
        return !wildcard && host.parse::<std::net::Ipv4Addr>().is_ok_and(|a| a.to_string() == host);
    }
    host.len() <= 253
        && host.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// The DBSC part of a configuration's settings.
pub(crate) struct DbscSettings {
    pub(crate) binding: DeviceBinding,
    /// Seals the companion cookie: the session's own timeouts.
    pub(crate) companion_sealer: Sealer,
    pub(crate) companion_cookie: CookieSpec,
    /// Seals session identifiers: the longest absolute timeout, no idle one
    /// (the companion carries that).
    pub(crate) identifier_sealer: Sealer,
    /// Seals challenges: each carries its own expiry, at most the bound
    /// lifetime plus [`CHALLENGE_LIFETIME`] (a challenge sent ahead).
    pub(crate) challenge_sealer: Sealer,
}

/// What the companion cookie holds besides the session: the binding it
/// belongs to, and the session's data as sealed.
#[derive(Serialize, Deserialize)]
pub(super) struct Companion {
    pub(super) binding: [u8; 16],
    pub(super) versioned: bool,
    pub(super) data: Vec<u8>,
    /// Sealed at the registration: the ID of the unbound session it
    /// replaced, whose CSRF tokens the pages shown before the registration
    /// carry, and the registration's proof time (the bound session's
    /// `last_seen` until its first refresh).
    pub(super) previous: Option<([u8; 16], u64)>,
}

/// What a challenge is for.
#[derive(Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum ChallengeFor {
    /// Registering the session with this ID.
    Registration([u8; 16]),
    /// Refreshing the binding with this ID.
    Refresh([u8; 16]),
    /// Refreshing the binding with this ID once more, after a refresh
    /// whose companion cookie's session had ended: the browser's retry
    /// brings the cookies it has now (a new session ID's companion, if the
    /// ID changed meanwhile), and a refusal then ends the binding.
    RefreshAgain([u8; 16]),
}

/// The IDs as [`SessionId`](crate::SessionId) shows one: a short prefix.
impl std::fmt::Debug for ChallengeFor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (name, id) = match self {
            Self::Registration(id) => ("Registration", id),
            Self::Refresh(id) => ("Refresh", id),
            Self::RefreshAgain(id) => ("RefreshAgain", id),
        };
        f.debug_tuple(name).field(&crate::SessionId::from_bytes(*id)).finish()
    }
}

impl DbscSettings {
    /// A new challenge for `purpose`, to be answered now: within
    /// [`CHALLENGE_LIFETIME`].
    pub(super) fn challenge(&self, purpose: ChallengeFor) -> Option<String> {
        self.challenge_for(purpose, CHALLENGE_LIFETIME)
    }

    /// A challenge for the next refresh of `binding`, sent with its new
    /// bound cookie (the draft's cached challenge): answerable until that
    /// cookie has expired and [`CHALLENGE_LIFETIME`] more, so that the
    /// browser's refresh takes one request instead of a `403` and a retry.
    pub(super) fn challenge_ahead(&self, binding: [u8; 16]) -> Option<String> {
        self.challenge_for(
            ChallengeFor::Refresh(binding),
            self.binding.lifetime.saturating_add(CHALLENGE_LIFETIME),
        )
    }

    fn challenge_for(&self, purpose: ChallengeFor, lifetime: Duration) -> Option<String> {
        let now = crate::sealer::opening_time(self.challenge_sealer.clock().unix_now());
        let expires_at = now.saturating_add(lifetime.as_secs());
        let challenge =
            Session::try_new(purpose).ok()?.with_times(Times { issued_at: now, expires_at, last_seen: now });
        self.challenge_sealer
            .seal(&challenge)
            .inspect_err(|err| tracing::error!(error = %err, "cannot seal a DBSC challenge"))
            .ok()
    }

    /// The `Secure-Session-Registration` value that offers binding to the
    /// session `id`.
    pub(crate) fn offer(&self, id: SessionId) -> Option<String> {
        let challenge = self.challenge(ChallengeFor::Registration(*id.as_bytes()))?;
        dbsc::registration_header(&self.binding.algorithms, &self.binding.registration_path, &challenge, None)
    }

    /// The companion cookie for the bound `session` of `binding`. Last
    /// active at most one bound lifetime after the session's last proof
    /// (when its bound cookie stops opening), however long the request that
    /// seals it ran: the session registry counts on that bound.
    pub(super) fn companion(
        &self,
        session: &Session<Vec<u8>>,
        binding: [u8; 16],
        versioned: bool,
        previous: Option<([u8; 16], u64)>,
    ) -> Result<String, SealError> {
        let lifetime = self.binding.lifetime.as_secs();
        let active_at = session.times().map(|times| times.last_seen.saturating_add(lifetime));
        let data = session.data().clone();
        let mut companion = session.with_data(Companion { binding, versioned, data, previous });
        companion.set_device_bound(false);
        let issued = self.companion_sealer.issue_for(companion, Some(&self.companion_cookie), active_at)?;
        Ok(issued.text)
    }

    /// Whether the companion cookie of the bound `session` (just sealed
    /// with new data) fits: it carries the data too, under a longer name,
    /// and one that cannot be sent would leave the browser's old one, whose
    /// data the next refresh would bring back. Measured, not sealed, at its
    /// largest (with a previous ID).
    pub(crate) fn check_companion(
        &self,
        session: &Session<Vec<u8>>,
        versioned: bool,
    ) -> Result<(), SealError> {
        let companion = session.with_data(Companion {
            binding: [0; 16],
            versioned,
            data: session.data().clone(),
            previous: Some(([0; 16], u64::MAX)),
        });
        self.companion_sealer.check_fits(&companion, &self.companion_cookie)
    }

    /// The bound sessions the companion cookie values `sent` carry (those
    /// that open), with their data: for a logout from a browser whose
    /// bound cookie has lapsed, which comes with the companion alone.
    pub(crate) fn companion_sessions<'v>(
        &self,
        sent: impl Iterator<Item = &'v str>,
    ) -> Vec<Session<Vec<u8>>> {
        sent.filter_map(|value| self.companion_sealer.open::<Companion>(value).ok())
            .map(|companion| {
                let session = companion.into_session();
                session.with_data(session.data().data.clone())
            })
            .collect()
    }

    /// The ID of the unbound session that the bound `session` replaced at
    /// its registration, as the companion cookie among `sent` of the same
    /// session and user names it, until the session's first refresh (its
    /// last proof is then later than the registration's, whatever companion
    /// the request brings): pages shown before the registration carry CSRF
    /// tokens for that ID.
    pub(crate) fn previous_id<'v, T>(
        &self,
        session: &Session<T>,
        sent: impl Iterator<Item = &'v str>,
    ) -> Option<SessionId> {
        sent.filter_map(|value| self.companion_sealer.open::<Companion>(value).ok())
            .find(|companion| {
                let companion = companion.session();
                companion.id() == session.id() && companion.user_id() == session.user_id()
            })
            .and_then(|companion| companion.session().data().previous)
            .filter(|&(_, proven_at)| session.times().is_some_and(|times| times.last_seen == proven_at))
            .map(|(id, _)| SessionId::from_bytes(id))
    }

    /// The companion cookie for `session` (bound, just sealed again on an
    /// ordinary request: new data, a new ID, a rotated key), with the
    /// binding of the request's companion cookie. `None` if the request had
    /// none that opens for this user: the next refresh then ends the
    /// binding. If the new one cannot be sealed, the old one is removed (so
    /// the next refresh ends the binding rather than bring back its data).
    pub(crate) fn reissue_companion<'v>(
        &self,
        session: &Session<Vec<u8>>,
        versioned: bool,
        sent: impl Iterator<Item = &'v str>,
    ) -> Option<String> {
        let binding = sent
            .filter_map(|value| self.companion_sealer.open::<Companion>(value).ok())
            .find(|old| old.session().user_id() == session.user_id())
            .map(|old| old.session().data().binding);
        match binding {
            Some(binding) => Some(self.companion(session, binding, versioned, None).unwrap_or_else(|err| {
                tracing::error!(
                    error = %err,
                    "cannot seal the DBSC companion cookie: it is removed, and the binding ends at the next refresh"
                );
                self.companion_cookie.removal()
            })),
            None => {
                tracing::warn!(
                    "a bound session changed without its companion cookie: its next refresh will fail"
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ChallengeFor, DbscSettings, DeviceBinding};
    use crate::{CookieSpec, Keyring, Sealer, Session};

    /// A path's `%XX` sequences decoded (others kept), written apart from
    /// the crate the code uses.
    fn percent_decoded(text: &str) -> Vec<u8> {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
            match hex.and_then(|h| u8::from_str_radix(h, 16).ok()).filter(|_| bytes[i] == b'%') {
                Some(byte) => {
                    out.push(byte);
                    i += 3;
                }
                None => {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
        }
        out
    }

    /// RFC 3986's "remove dot segments" (section 5.2.4), on a path whose
    /// runs of slashes were merged first, as a normalizing router does.
    fn normalized(path: &[u8]) -> Vec<u8> {
        let mut input = Vec::new();
        for &byte in path {
            if !(byte == b'/' && input.last() == Some(&b'/')) {
                input.push(byte);
            }
        }
        let mut output: Vec<u8> = Vec::new();
        while !input.is_empty() {
            if input.starts_with(b"../") || input.starts_with(b"./") {
                let skip = if input.starts_with(b"../") { 3 } else { 2 };
                input.drain(..skip);
            } else if input.starts_with(b"/./") {
                input.drain(..2);
            } else if input == b"/." {
                input = b"/".to_vec();
            } else if input.starts_with(b"/../") || input == b"/.." {
                if input == b"/.." {
                    input = b"/".to_vec();
                } else {
                    input.drain(..3);
                }
                let cut = output.iter().rposition(|&b| b == b'/').unwrap_or(0);
                output.truncate(cut);
            } else if input == b"." || input == b".." {
                input.clear();
            } else {
                let start = usize::from(input.first() == Some(&b'/'));
                let end = input[start..].iter().position(|&b| b == b'/').map_or(input.len(), |at| at + start);
                output.extend(input.drain(..end));
            }
        }
        output
    }

    /// Whether a router that sees `path` as `segments` routes it to
    /// `/admin` or below.
    fn routes_to_admin(segments: &[Vec<u8>]) -> bool {
        segments.iter().find(|segment| !segment.is_empty() && segment.as_slice() != b".").map(Vec::as_slice)
            == Some(b"admin")
    }

    fn split(path: &[u8]) -> Vec<Vec<u8>> {
        path.split(|&b| b == b'/').map(<[u8]>::to_vec).collect()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]
        /// Any spelling of a path that a router would send to a required
        /// path needs a bound session: as it came, or percent-decoded whole,
        /// each with runs of slashes merged and dot segments resolved as
        /// RFC 3986 does, or with `..` kept as a segment (axum's
        /// `/admin/{rest}`); or decoded a segment at a time (`%2F` kept
        /// inside its segment) and resolved. The router models are written
        /// here, apart from the code under test.
        #[test]
        fn every_path_a_router_sends_to_a_required_one_requires_binding(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "admin", "%61dmin", "adm%69n", "%61%64%6D%69%6E", "a", "x", "..", ".", "%2e%2e", "%2E",
                "", "%2F", "admin%2Fx", "x%2Fy", ".%2e", "%2e.", "%2fadmin", "admi", "n",
            ]), 0..7)
        ) {
            let path = format!("/{}", parts.join("/"));
            let binding = DeviceBinding::default().require_for("/admin");
            let decoded = percent_decoded(&path);
            let routed = [path.as_bytes(), decoded.as_slice()].into_iter().any(|view| {
                routes_to_admin(&split(&normalized(view))) || routes_to_admin(&split(view))
            }) || {
                // Decoded a segment at a time, `..` resolved over segments.
                let mut kept: Vec<Vec<u8>> = Vec::new();
                for segment in path.split('/').map(percent_decoded) {
                    match segment.as_slice() {
                        b"" | b"." => {}
                        b".." => drop(kept.pop()),
                        _ => kept.push(segment),
                    }
                }
                routes_to_admin(&kept)
            };
            if routed {
                proptest::prop_assert!(binding.requires(&path), "{path}");
            }
        }
    }

    /// The router models above send what they should to `/admin` (else the
    /// property proves nothing).
    #[test]
    fn the_router_models_route_what_they_should() {
        assert!(routes_to_admin(&split(&normalized(b"/x/../admin"))));
        assert!(routes_to_admin(&split(&normalized(b"//./admin/"))));
        assert!(!routes_to_admin(&split(&normalized(b"/admin/../x"))));
        assert!(routes_to_admin(&split(b"/admin/..")));
        assert!(routes_to_admin(&split(&normalized(&percent_decoded("/%61dmin")))));
        assert!(routes_to_admin(&split(&normalized(&percent_decoded("/x/%2e%2e/admin")))));
        assert!(!routes_to_admin(&split(b"/administrator")));
        assert_eq!(normalized(b"/a/b/c/./../../g"), b"/a/g", "RFC 3986's own example");
        assert_eq!(normalized(b"mid/content=5/../6"), b"mid/6", "RFC 3986's own example");
    }

    /// A bound session changed on an ordinary request gets a new companion
    /// cookie; one whose companion cannot be sealed (too large) has the old
    /// one removed, so that the next refresh ends the binding instead of
    /// bringing back the old data.
    #[test]
    fn a_companion_that_cannot_be_sealed_again_is_removed() {
        let sealer = Sealer::builder(Keyring::generate().unwrap()).build().unwrap();
        let settings = DbscSettings {
            binding: DeviceBinding::default(),
            companion_sealer: sealer.with_purpose("__Host-session-dbsc"),
            companion_cookie: CookieSpec::named("__Host-session-dbsc").unwrap(),
            identifier_sealer: sealer.with_purpose_without_idle("__Host-session-dbsc-id"),
            challenge_sealer: sealer.with_purpose("__Host-session-dbsc-challenge"),
        };
        let session = |len: usize| Session::new(vec![7u8; len]).with_user("alice", 0);
        let old = settings.companion(&session(8), [1; 16], false, None).unwrap();
        let value = old.split(';').next().unwrap().split_once('=').unwrap().1.to_owned();

        let again = settings.reissue_companion(&session(16), false, [value.as_str()].into_iter()).unwrap();
        assert!(again.starts_with("__Host-session-dbsc=") && !again.contains("Max-Age=0"), "{again}");
        let reopened = again.split(';').next().unwrap().split_once('=').unwrap().1;
        let reopened = settings.companion_sealer.open::<super::Companion>(reopened).unwrap();
        assert_eq!((reopened.session().data().binding, reopened.session().data().data.len()), ([1; 16], 16));

        let too_large = settings.reissue_companion(&session(8_000), false, [value.as_str()].into_iter());
        assert_eq!(too_large, Some(settings.companion_cookie.removal()));
    }

    #[test]
    fn a_challenges_debug_shows_no_whole_id() {
        let id = [0xab; 16];
        for purpose in
            [ChallengeFor::Registration(id), ChallengeFor::Refresh(id), ChallengeFor::RefreshAgain(id)]
        {
            let shown = format!("{purpose:?}");
            assert!(!shown.contains("abababab") && !shown.contains("171, 171"), "{shown}");
            assert!(shown.contains("abab"), "a prefix, as SessionId shows: {shown}");
        }
    }
}
