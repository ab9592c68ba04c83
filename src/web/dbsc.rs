//! Device-bound sessions (DBSC) in the web driver: the offer that follows a
//! login, the registration and refresh endpoints, and the companion cookie
//! that lets a refresh rebuild the session with no session database.
//!
//! Four tokens, each sealed under a purpose of its own derived from the
//! session cookie's name, so that none opens as another:
//!
//! - the **bound session cookie** (the session cookie itself, flagged
//!   device-bound): it opens until its last proof of possession plus the
//!   bound lifetime, and goes out with that `Max-Age`;
//! - the **companion cookie** (`<name>-dbsc`): the same session, with the
//!   binding's ID, under the session's own timeouts. A refresh request
//!   carries it, since the bound cookie has gone by then. It never opens as
//!   a session, and is worth nothing without the device's key;
//! - the **session identifier** the browser keeps (`Sec-Secure-Session-Id`):
//!   the binding's ID, the user, the absolute expiry and the device's public
//!   key, fixed at registration;
//! - **challenges** (`jti`): five minutes, for one session or binding, for
//!   registration or refresh, and single-use: a used challenge's ID is put
//!   on the revocation store's denylist until it expires.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::audit::AuditKind;
use super::config::{Settings, WebConfig};
use super::driver::{Answer, Begin, RequestView};
use crate::dbsc::{self, Algorithm, DevicePublicKey};
use crate::registry::user_agent_label;
use crate::revocation::check_revocation;
use crate::session::Times;
use crate::{CookieSpec, OpenError, RevocationStore, Sealer, Session, SessionId, StoreError, VerifyError};

/// Where browsers register a session by default.
pub const DEFAULT_REGISTRATION_PATH: &str = "/dbsc/register";
/// Where browsers refresh a bound session by default.
pub const DEFAULT_REFRESH_PATH: &str = "/dbsc/refresh";
/// How long a bound session cookie lives after each proof, by default: 10
/// minutes. A copy of it works no longer than that.
pub const DEFAULT_BOUND_LIFETIME: Duration = Duration::from_secs(600);
/// How long a challenge can be answered: 5 minutes.
pub const CHALLENGE_LIFETIME: Duration = Duration::from_secs(300);

/// The request header that carries a proof, and the name the draft used
/// before it, which is still accepted.
const PROOF_HEADERS: [&str; 2] = ["secure-session-response", "sec-session-response"];
/// The request header that names the session a refresh is for, and the
/// name the draft used before it, which is still accepted.
const SESSION_ID_HEADERS: [&str; 2] = ["sec-secure-session-id", "sec-session-id"];
/// The request header a browser sends when it skipped a refresh.
const SKIPPED_HEADER: &str = "secure-session-skipped";

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
    /// possession (at least a second): a stolen copy works no longer, and
    /// the browser proves possession again this often while it is used.
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
    #[must_use]
    pub fn offer_to_unbound_sessions(mut self) -> Self {
        self.offer_to_unbound = true;
        self
    }

    /// Requests to `path` and below (`/admin` covers `/admin` and
    /// `/admin/users`, not `/administrator`) with a session that is not
    /// device-bound are refused with `403` before their handler runs. A
    /// browser without DBSC cannot reach them signed in.
    #[must_use]
    pub fn require_for(mut self, path: impl Into<String>) -> Self {
        self.required.push(path.into().trim_end_matches('/').to_owned());
        self
    }

    /// Whether `path` needs a bound session.
    pub(crate) fn requires(&self, path: &str) -> bool {
        self.required.iter().any(|prefix| {
            path.strip_prefix(prefix.as_str()).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    }
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
    /// Seals challenges: [`CHALLENGE_LIFETIME`].
    pub(crate) challenge_sealer: Sealer,
}

/// What the companion cookie holds besides the session: the binding it
/// belongs to, and the session's data as sealed.
#[derive(Serialize, Deserialize)]
struct Companion {
    binding: [u8; 16],
    versioned: bool,
    data: Vec<u8>,
}

/// What a session identifier holds besides the binding's ID (its session
/// ID), user, epoch and absolute expiry: the device's public key.
#[derive(Serialize, Deserialize)]
struct Identifier {
    key: DevicePublicKey,
}

/// What a challenge is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
enum ChallengeFor {
    /// Registering the session with this ID.
    Registration([u8; 16]),
    /// Refreshing the binding with this ID.
    Refresh([u8; 16]),
}

/// Why a proof's challenge was not accepted.
enum ChallengeRefused {
    /// Expired, tampered with, for something else, or used already: the
    /// client may answer a new one.
    Stale(&'static str),
    /// The store could not be asked.
    Store(StoreError),
}

impl DbscSettings {
    /// A new challenge for `purpose`.
    fn challenge(&self, purpose: ChallengeFor) -> Option<String> {
        let challenge = Session::try_new(purpose).ok()?;
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

    /// The companion cookie for the bound `session` of `binding`.
    fn companion(&self, session: &Session<Vec<u8>>, binding: [u8; 16], versioned: bool) -> Option<String> {
        let mut companion = session.with_data(Companion { binding, versioned, data: session.data().clone() });
        companion.set_device_bound(false);
        self.companion_sealer
            .issue_cookie(companion, &self.companion_cookie)
            .inspect_err(|err| tracing::error!(error = %err, "cannot seal the DBSC companion cookie"))
            .ok()
            .map(|(_, header)| header)
    }

    /// The companion cookie for `session` (bound, just sealed again on an
    /// ordinary request: new data, a new ID, a rotated key), with the
    /// binding of the request's companion cookie. `None` if the request had
    /// none that opens for this user: the next refresh then ends the
    /// binding.
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
            Some(binding) => self.companion(session, binding, versioned),
            None => {
                tracing::warn!(
                    "a bound session changed without its companion cookie: its next refresh will fail"
                );
                None
            }
        }
    }
}

/// The proof a request carries, if any: the draft's header (a structured
/// string), or its earlier name; a bare token is taken too.
/// No session to audit a refusal with.
const NO_SESSION: Option<&Session<()>> = None;

fn proof_text<R: RequestView + ?Sized>(request: &R) -> Option<String> {
    let value = PROOF_HEADERS.iter().find_map(|name| request.header_text(name))?;
    if value.trim_start().starts_with('"') {
        dbsc::parse_string_item(value).ok()
    } else {
        Some(value.trim().to_owned())
    }
}

/// The headers of every DBSC answer: not stored by any cache, not framed,
/// not readable cross-origin (no CORS header is ever added).
fn answer(status: u16, content_type: &'static str, body: String) -> Answer {
    let mut answer = Answer::new(status, body);
    answer.push("content-type", content_type.to_owned());
    answer.push("cache-control", "no-store".to_owned());
    answer.push("x-frame-options", "DENY".to_owned());
    answer.push("cross-origin-resource-policy", "same-origin".to_owned());
    answer
}

/// A refused registration (the browser gives up; the session stays as it
/// was). The reason is logged.
fn refuse_registration(reason: &dyn std::fmt::Display) -> Begin {
    tracing::info!(%reason, "DBSC registration refused");
    Begin::Answer(answer(403, "text/plain; charset=utf-8", "registration refused".to_owned()))
}

/// `503`: the store could not be asked; the browser tries again later and
/// keeps the session.
fn unavailable(err: &dyn std::fmt::Display) -> Begin {
    tracing::warn!(error = %err, "DBSC request cannot be checked against the revocation store");
    Begin::Answer(answer(503, "text/plain; charset=utf-8", "session store unavailable, try again".to_owned()))
}

impl<S: RevocationStore + 'static> WebConfig<S> {
    /// Answers a DBSC registration or refresh request, if `request` is one.
    pub(crate) async fn dbsc_endpoint<R: RequestView + ?Sized>(&self, request: &R) -> Option<Begin> {
        let dbsc = self.settings.dbsc.as_ref()?;
        if let Some(skipped) = request.header_text(SKIPPED_HEADER) {
            tracing::info!(skipped, "the browser skipped a DBSC refresh");
        }
        if request.method() != "POST" {
            return None;
        }
        let path = request.path();
        if path == dbsc.binding.registration_path {
            Some(self.register(dbsc, request).await)
        } else if path == dbsc.binding.refresh_path {
            Some(self.refresh(dbsc, request).await)
        } else {
            None
        }
    }

    /// The registration endpoint: binds the request's session to the key of
    /// its proof, which answers a registration challenge for it.
    async fn register<R: RequestView + ?Sized>(&self, dbsc: &DbscSettings, request: &R) -> Begin {
        let settings = &self.settings;
        let Some(proof) = proof_text(request) else {
            return refuse_registration(&"no Secure-Session-Response header");
        };
        let values = settings.cookie.values_in(request.header_values("cookie"));
        let current = match self.open_session(values).await {
            Ok((Some(current), _)) => current,
            Ok((None, _)) => return refuse_registration(&"no session to bind"),
            Err(err) => return unavailable(&err),
        };
        let session = current.session();
        if session.is_device_bound() {
            return refuse_registration(&"the session is bound already");
        }
        let proof = match dbsc::parse_proof(&proof) {
            Ok(proof) => proof,
            Err(err) => return refuse_registration(&err),
        };
        let challenge = match open_challenge(dbsc, proof.claimed_challenge()) {
            Some((challenge, ChallengeFor::Registration(id))) if id == *session.id().as_bytes() => challenge,
            _ => return refuse_registration(&"the challenge is not this session's, or has expired"),
        };
        let key = match proof.verify_registration(&dbsc.binding.algorithms, None) {
            Ok(verified) => verified.key,
            Err(err) => return refuse_registration(&err),
        };
        match self.use_challenge(&challenge).await {
            Ok(()) => {}
            Err(ChallengeRefused::Stale(reason)) => return refuse_registration(&reason),
            Err(ChallengeRefused::Store(err)) => return unavailable(&err),
        }
        // Everything is sealed before the unbound session ends, so that a
        // session too large to bind stays as it was.
        let mut bound = session.clone();
        let (Ok(()), Ok(binding)) = (bound.renew_id(), SessionId::random()) else {
            return refuse_registration(&"no random ID could be drawn");
        };
        let bound_id = bound.id();
        let versioned = current.opened().is_versioned_data();
        let now = crate::sealer::opening_time(settings.sealer.clock().unix_now());
        let mut listed = bound.clone();
        listed.set_device_bound(true);
        let Some((cookie, companion)) = self.bind(dbsc, bound, *binding.as_bytes(), versioned, now) else {
            return refuse_registration(&"the bound session could not be sealed");
        };
        let mut identifier = session.with_data(Identifier { key });
        identifier.set_id(binding);
        identifier.set_device_bound(false);
        let identifier = match dbsc.identifier_sealer.seal(&identifier) {
            Ok(identifier) => identifier,
            Err(err) => return refuse_registration(&err),
        };
        // The unbound cookie stops opening, as at login.
        let until = self.verifier.denylist_until(session);
        if let Err(err) = self.verifier.store().revoke_session(session.id(), until).await {
            return unavailable(&err);
        }
        let instructions = serde_json::json!({
            "session_identifier": identifier,
            "refresh_url": dbsc.binding.refresh_path,
            "scope": scope(settings),
            "credentials": [{
                "type": "cookie",
                "name": settings.cookie.name(),
                "attributes": settings.cookie.credential_attributes(),
            }],
        });
        tracing::info!("DBSC registration: the session is device-bound");
        if settings.registry.is_some() {
            settings.unregister(session).await;
            settings.register(&listed, &user_agent_label(request.header_text("user-agent"))).await;
        }
        settings.audit(AuditKind::DeviceBound, |event| {
            event.user(session.user_id()).session(bound_id).previous(Some(session.id()))
        });
        let mut answer = answer(200, "application/json", instructions.to_string());
        answer.push("set-cookie", cookie);
        answer.push("set-cookie", companion);
        Begin::Answer(answer)
    }

    /// The refresh endpoint: a new bound cookie for a proof of the bound
    /// key, made from the companion cookie.
    async fn refresh<R: RequestView + ?Sized>(&self, dbsc: &DbscSettings, request: &R) -> Begin {
        let settings = &self.settings;
        let identifier_text = SESSION_ID_HEADERS
            .iter()
            .find_map(|name| request.header_text(name))
            .and_then(|value| dbsc::parse_string_item(value).ok());
        let Some(identifier_text) = identifier_text else {
            return self.end_binding(dbsc, &"no Sec-Secure-Session-Id header", "no_identifier", NO_SESSION);
        };
        let identifier = match dbsc.identifier_sealer.open::<Identifier>(&identifier_text) {
            Ok(identifier) => identifier,
            Err(err @ OpenError::UnknownKey(_)) => return unavailable(&err),
            Err(err) => return self.end_binding(dbsc, &err, "invalid_identifier", NO_SESSION),
        };
        let binding = *identifier.session().id().as_bytes();
        let user = identifier.session().user_id();
        let mut companion = None;
        for value in dbsc.companion_cookie.values_in(request.header_values("cookie")) {
            match dbsc.companion_sealer.open::<Companion>(value) {
                Ok(opened)
                    if opened.session().data().binding == binding && opened.session().user_id() == user =>
                {
                    companion = Some(opened);
                    break;
                }
                Ok(_) => tracing::info!("a DBSC companion cookie of another binding was ignored"),
                Err(err @ OpenError::UnknownKey(_)) => return unavailable(&err),
                Err(err) => tracing::info!(reason = %err, "DBSC companion cookie refused"),
            }
        }
        let Some(companion) = companion else {
            let reason = "no companion cookie of this binding (expired, idle or removed)";
            return self.end_binding(dbsc, &reason, "no_companion", Some(identifier.session()));
        };
        let Some(proof) = proof_text(request) else {
            return ask_for_proof(dbsc, binding, &identifier_text);
        };
        let proof = match dbsc::parse_proof(&proof) {
            Ok(proof) => proof,
            Err(err) => return self.end_binding(dbsc, &err, "invalid_proof", Some(companion.session())),
        };
        let challenge = match open_challenge(dbsc, proof.claimed_challenge()) {
            Some((challenge, ChallengeFor::Refresh(id))) if id == binding => challenge,
            _ => {
                tracing::info!("DBSC refresh: the proof answers no current challenge of this binding");
                return ask_for_proof(dbsc, binding, &identifier_text);
            }
        };
        if let Err(err) = proof.verify_refresh(&identifier.session().data().key) {
            return self.end_binding(dbsc, &err, "invalid_proof", Some(companion.session()));
        }
        match self.use_challenge(&challenge).await {
            Ok(()) => {}
            Err(ChallengeRefused::Stale(reason)) => {
                tracing::info!(reason, "DBSC refresh: challenge refused");
                return ask_for_proof(dbsc, binding, &identifier_text);
            }
            Err(ChallengeRefused::Store(err)) => return unavailable(&err),
        }
        // Revocation works as for any session: logout, logout everywhere,
        // logout of everyone.
        let companion = companion.into_session();
        let state = match self.verifier.store().state(companion.user_id(), companion.id()).await {
            Ok(state) => state,
            Err(err) => return unavailable(&err),
        };
        if let Err(err) = check_revocation(&companion, &state) {
            if matches!(err, VerifyError::StoreFault { .. }) {
                tracing::error!(reason = %err, "DBSC refresh refused");
            }
            return self.end_binding(dbsc, &err, err.code(), Some(&companion));
        }
        let versioned = companion.data().versioned;
        let session = companion.with_data(companion.data().data.clone());
        let now = crate::sealer::opening_time(settings.sealer.clock().unix_now());
        if settings.registry.is_some() {
            let mut listed = session.clone();
            listed.set_device_bound(true);
            settings.register(&listed, &user_agent_label(request.header_text("user-agent"))).await;
        }
        let Some((cookie, companion)) = self.bind(dbsc, session, binding, versioned, now) else {
            return self.end_binding(
                dbsc,
                &"the bound session could not be sealed",
                "seal_failed",
                NO_SESSION,
            );
        };
        tracing::debug!("DBSC refresh: a new bound cookie");
        let mut answer = answer(200, "text/plain; charset=utf-8", String::new());
        answer.push("set-cookie", cookie);
        answer.push("set-cookie", companion);
        Begin::Answer(answer)
    }

    /// The bound cookie and companion cookie of `session`, proven at `now`.
    fn bind(
        &self,
        dbsc: &DbscSettings,
        mut session: Session<Vec<u8>>,
        binding: [u8; 16],
        versioned: bool,
        now: u64,
    ) -> Option<(String, String)> {
        let times = session.times()?;
        session = session.with_times(Times { last_seen: now.max(times.issued_at), ..times });
        session.set_device_bound(true);
        let (cookie, _) = self
            .settings
            .sealer
            .issue_raw(session.clone(), versioned, Some(&self.settings.cookie))
            .inspect_err(|err| tracing::error!(error = %err, "cannot seal the bound session"))
            .ok()?;
        let companion = dbsc.companion(&session, binding, versioned)?;
        Some((cookie, companion))
    }

    /// The refresh is refused for good: `{"continue": false}` ends the
    /// browser's session, and the companion cookie goes. The reason is
    /// logged, and audited by its `code` with the session, if known.
    fn end_binding<T>(
        &self,
        dbsc: &DbscSettings,
        reason: &dyn std::fmt::Display,
        code: &'static str,
        session: Option<&Session<T>>,
    ) -> Begin {
        tracing::info!(%reason, "DBSC refresh refused; the binding ends");
        self.settings.audit(AuditKind::DeviceBindingEnded { reason: code }, |event| match session {
            Some(session) => event.user(session.user_id()).session(session.id()),
            None => event,
        });
        let mut answer = answer(200, "application/json", r#"{"continue":false}"#.to_owned());
        answer.push("set-cookie", dbsc.companion_cookie.removal());
        Begin::Answer(answer)
    }

    /// Checks that `challenge` was not used, and marks it used until it
    /// expires.
    async fn use_challenge(&self, challenge: &Session<ChallengeFor>) -> Result<(), ChallengeRefused> {
        let store = self.verifier.store();
        let state = store.state(None, challenge.id()).await.map_err(ChallengeRefused::Store)?;
        if check_revocation(challenge, &state).is_err() {
            return Err(ChallengeRefused::Stale("the challenge was used already (a replayed proof)"));
        }
        let until = challenge
            .times()
            .map_or(u64::MAX, |t| t.expires_at)
            .saturating_add(self.settings.sealer.leeway_secs());
        store.revoke_session(challenge.id(), until).await.map_err(ChallengeRefused::Store)
    }
}

/// The challenge `text`, if it is one of ours and has not expired.
fn open_challenge(dbsc: &DbscSettings, text: &str) -> Option<(Session<ChallengeFor>, ChallengeFor)> {
    let opened = dbsc
        .challenge_sealer
        .open::<ChallengeFor>(text)
        .inspect_err(|err| tracing::info!(reason = %err, "DBSC challenge refused"))
        .ok()?;
    let purpose = *opened.session().data();
    Some((opened.into_session(), purpose))
}

/// `403` with a new challenge: the browser signs it and asks again.
fn ask_for_proof(dbsc: &DbscSettings, binding: [u8; 16], identifier: &str) -> Begin {
    let header = dbsc
        .challenge(ChallengeFor::Refresh(binding))
        .and_then(|challenge| dbsc::challenge_header(&challenge, identifier));
    let mut answer =
        answer(403, "text/plain; charset=utf-8", "a proof of the session's key is needed".to_owned());
    if let Some(header) = header {
        answer.push("secure-session-challenge", header);
    }
    Begin::Answer(answer)
}

/// The session's scope: the configured origin, else the registration
/// request's own (the draft's default), origin-scoped.
fn scope(settings: &Settings) -> serde_json::Value {
    match &settings.origin {
        Some(origin) => serde_json::json!({ "origin": origin, "include_site": false }),
        None => serde_json::json!({ "include_site": false }),
    }
}
