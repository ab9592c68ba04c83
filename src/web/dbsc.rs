//! Device-bound sessions (DBSC) in the web driver: the registration and
//! refresh endpoints (the settings, the offer that follows a login and the
//! companion cookie that lets a refresh rebuild the session with no session
//! database are in `binding.rs`).
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
//! - **challenges** (`jti`): five minutes, or, for the one sent ahead with
//!   each new bound cookie, the bound lifetime plus five minutes; for one
//!   session or binding, for registration or refresh, and single-use: a used challenge's ID is put
//!   on the revocation store's denylist until it expires, in one atomic
//!   step ([`RevocationStore::revoke_session_once`]) that only one of any
//!   number of concurrent requests with the same proof passes.

use serde::{Deserialize, Serialize};

use super::audit::{AuditEvent, AuditKind};
use super::binding::{ChallengeFor, Companion, DbscSettings};
use super::config::{Settings, WebConfig};
use super::driver::{Answer, Begin, RequestView};
use crate::dbsc::{self, DevicePublicKey};
use crate::registry::user_agent_label;
use crate::revocation::check_revocation;
use crate::session::Times;
use crate::{RevocationStore, Session, SessionId, StoreError, VerifyError};

/// The request header that carries a proof, and the name the draft used
/// before it, which is still accepted.
const PROOF_HEADERS: [&str; 2] = ["secure-session-response", "sec-session-response"];
/// The request header that names the session a refresh is for, and the
/// name the draft used before it, which is still accepted.
const SESSION_ID_HEADERS: [&str; 2] = ["sec-secure-session-id", "sec-session-id"];
/// The request header a browser sends when it skipped a refresh.
const SKIPPED_HEADER: &str = "secure-session-skipped";

/// The most of a `Secure-Session-Skipped` header's reason that is logged:
/// the draft's reasons are short tokens, and any client can send one.
const MAX_LOGGED_SKIPPED: usize = 64;

/// A `Secure-Session-Skipped` value as logged: its reason only, the part
/// before its parameters (whose `session_identifier` is the binding's
/// identifier), at most [`MAX_LOGGED_SKIPPED`] characters, printable ASCII
/// only (a token is; a log line per request, of a bounded size, whose text
/// no control or bidirectional character can disguise).
fn loggable(text: &str) -> String {
    let reason = text.split([';', ',']).next().unwrap_or_default();
    reason.chars().filter(char::is_ascii_graphic).take(MAX_LOGGED_SKIPPED).collect()
}

/// What a session identifier holds besides the binding's ID (its session
/// ID), user, epoch and absolute expiry: the device's public key.
#[derive(Serialize, Deserialize)]
struct Identifier {
    key: DevicePublicKey,
}

/// Why a proof's challenge was not accepted.
enum ChallengeRefused {
    /// Expired, tampered with, for something else, or used already: the
    /// client may answer a new one.
    Stale(&'static str),
    /// The store could not be asked.
    Store(StoreError),
}

/// No session to audit a refusal with.
const NO_SESSION: Option<&Session<()>> = None;

/// The value of the first of `names` that the request has, if it has one
/// line of it: RFC 9651 joins several lines into a list, which is not the
/// one item these headers hold.
fn one_header<'r, R: RequestView + ?Sized>(request: &'r R, names: &[&'static str]) -> Option<&'r str> {
    let name = names.iter().find(|name| request.header(name).is_some())?;
    let mut values = request.header_values(name);
    let value = values.next()?;
    if values.next().is_some() {
        tracing::info!(header = name, "a DBSC header sent more than once is ignored");
        return None;
    }
    std::str::from_utf8(value).ok()
}

/// The text of a session-ID or proof header: a structured string, as the
/// draft writes them, or the bare value, as Chrome sends both (a bare value
/// is taken only if it is visible ASCII, as every identifier and JWT is).
fn string_or_bare(value: &str) -> Option<String> {
    let value = value.trim();
    if value.starts_with('"') {
        dbsc::parse_string_item(value).ok()
    } else {
        let bare = !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic());
        bare.then(|| value.to_owned())
    }
}

/// The proof a request carries, if any: the draft's header, or its earlier
/// name.
fn proof_text<R: RequestView + ?Sized>(request: &R) -> Option<String> {
    string_or_bare(one_header(request, &PROOF_HEADERS)?)
}

/// Whether two session IDs (a binding's, a challenge's) are one, compared
/// in constant time as every session ID is.
fn same_id(a: [u8; 16], b: [u8; 16]) -> bool {
    SessionId::from_bytes(a) == SessionId::from_bytes(b)
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
    try_again()
}

/// A refresh whose `what` names a key this server lacks or holds as due
/// later (kept, for a keyring rollout: another server opens it): `503`,
/// which keeps the browser's session, and a log line throttled as for
/// session cookies.
fn unknown_key(settings: &Settings, what: &str, key_id: u32) -> Begin {
    settings.unknown_key_refused(what, key_id);
    try_again()
}

/// `503`: the browser keeps its session and tries again later.
fn try_again() -> Begin {
    Begin::Answer(answer(503, "text/plain; charset=utf-8", "session store unavailable, try again".to_owned()))
}

/// How a refresh of the browser's session `identifier` (the header's
/// text, which Chrome reads before `continue`) ends when it is refused for
/// good.
struct Ending<'a> {
    settings: &'a Settings,
    dbsc: &'a DbscSettings,
    identifier: &'a str,
    /// Whether the request's companion cookie opens as another binding's:
    /// a later binding of the same browser (after a login or a
    /// re-authentication), whose refreshes need it. It is kept.
    companion_of_another: bool,
}

impl Ending<'_> {
    /// `{"continue": false}` ends the browser's session, and the companion
    /// cookie goes, unless it is another binding's. The reason is logged,
    /// and audited by its `code` with the session, if known.
    fn end<T>(
        &self,
        reason: &dyn std::fmt::Display,
        code: &'static str,
        session: Option<&Session<T>>,
    ) -> Begin {
        self.end_with(reason, code, |event| match session {
            Some(session) => event.user(session.user_id()).session(session.id()),
            None => event,
        })
    }

    /// [`Ending::end`] of a binding whose session is not known (only its
    /// identifier, which carries the binding's own ID): audited with the
    /// user alone.
    fn end_for_user(&self, reason: &dyn std::fmt::Display, code: &'static str, user: Option<&str>) -> Begin {
        self.end_with(reason, code, |event| event.user(user))
    }

    fn end_with(
        &self,
        reason: &dyn std::fmt::Display,
        code: &'static str,
        fill: impl FnOnce(AuditEvent) -> AuditEvent,
    ) -> Begin {
        tracing::info!(%reason, "DBSC refresh refused; the binding ends");
        self.settings.audit(AuditKind::DeviceBindingEnded { reason: code }, fill);
        let instructions = serde_json::json!({ "session_identifier": self.identifier, "continue": false });
        let mut answer = answer(200, "application/json", instructions.to_string());
        if !self.companion_of_another {
            answer.push("set-cookie", self.dbsc.companion_cookie.removal());
        }
        Begin::Answer(answer)
    }
}

impl<S: RevocationStore + 'static> WebConfig<S> {
    /// Answers a DBSC registration or refresh request, if `request` is one.
    pub(crate) async fn dbsc_endpoint<R: RequestView + ?Sized>(&self, request: &R) -> Option<Begin> {
        let dbsc = self.settings.dbsc.as_ref()?;
        if let Some(skipped) = request.header_text(SKIPPED_HEADER) {
            // Any client can send the header with every request: `info`
            // once a minute at most.
            if self.settings.skipped_said.due(self.settings.sealer.clock().unix_now()) {
                tracing::info!(skipped = %loggable(skipped), "the browser skipped a DBSC refresh (said once a minute at most)");
            } else {
                tracing::debug!(skipped = %loggable(skipped), "the browser skipped a DBSC refresh");
            }
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
            return refuse_registration(&"no single readable Secure-Session-Response header");
        };
        let [values] = crate::cookie::scan([&settings.cookie], request.header_values("cookie"));
        let current = match self.open_session(values.as_slice()).await {
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
            Some((challenge, ChallengeFor::Registration(id))) if same_id(id, *session.id().as_bytes()) => {
                challenge
            }
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
        let previous = Some(*session.id().as_bytes());
        let Some((cookie, companion)) = self.bind(dbsc, bound, *binding.as_bytes(), versioned, now, previous)
        else {
            return refuse_registration(&"the bound session could not be sealed");
        };
        let mut identifier = session.with_data(Identifier { key });
        identifier.set_id(binding);
        identifier.set_device_bound(false);
        let identifier = match dbsc.identifier_sealer.seal(&identifier) {
            Ok(identifier) => identifier,
            Err(err) => return refuse_registration(&err),
        };
        // The unbound cookie stops opening, as at login; only one
        // registration of it (of any number racing) ends it and binds.
        let until = self.verifier.sealer().denylist_until(session);
        let once = self.verifier.store().revoke_session_once(session.id(), until);
        match crate::metrics::store_call("revoke_session_once", once).await {
            Ok(true) => {}
            Ok(false) => return refuse_registration(&"the session was ended or bound meanwhile"),
            Err(err) => return unavailable(&err),
        }
        let mut instructions = serde_json::json!({
            "session_identifier": identifier,
            "refresh_url": dbsc.binding.refresh_path,
            "scope": scope(settings),
            "credentials": [{
                "type": "cookie",
                "name": settings.cookie.name(),
                "attributes": settings.cookie.credential_attributes(),
            }],
        });
        if !dbsc.binding.refresh_initiators.is_empty() {
            let initiators = serde_json::json!(dbsc.binding.refresh_initiators);
            if let Some(fields) = instructions.as_object_mut() {
                fields.insert("allowed_refresh_initiators".to_owned(), initiators);
            }
        }
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
        push_challenge_ahead(&mut answer, dbsc, *binding.as_bytes(), &identifier);
        Begin::Answer(answer)
    }

    /// The refresh endpoint: a new bound cookie for a proof of the bound
    /// key, made from the companion cookie.
    async fn refresh<R: RequestView + ?Sized>(&self, dbsc: &DbscSettings, request: &R) -> Begin {
        let settings = &self.settings;
        let identifier_text = one_header(request, &SESSION_ID_HEADERS).and_then(string_or_bare);
        // Only a browser sends a `Sec-` header (a page cannot set one), so a
        // request without it is no refresh: it changes nothing, or a form
        // on another site could end the binding by removing the companion.
        let Some(identifier_text) = identifier_text else {
            tracing::info!("DBSC refresh refused: no readable Sec-Secure-Session-Id header");
            return Begin::Answer(answer(
                400,
                "text/plain; charset=utf-8",
                "a refresh needs a Sec-Secure-Session-Id header".to_owned(),
            ));
        };
        let mut ending = Ending { settings, dbsc, identifier: &identifier_text, companion_of_another: false };
        let identifier = match dbsc.identifier_sealer.open::<Identifier>(&identifier_text) {
            Ok(identifier) => identifier,
            Err(err) => {
                if let Some(id) = dbsc.identifier_sealer.newer_keyring_may_open(&identifier_text, &err) {
                    return unknown_key(settings, "DBSC session identifier", id);
                }
                // Of no binding this server knows: a companion that opens
                // is some other binding's.
                ending.companion_of_another = dbsc
                    .companion_cookie
                    .values_in(request.header_values("cookie"))
                    .any(|value| dbsc.companion_sealer.open::<Companion>(value).is_ok());
                return ending.end(&err, "invalid_identifier", NO_SESSION);
            }
        };
        let binding = *identifier.session().id().as_bytes();
        let user = identifier.session().user_id();
        let (mut companion, mut another, mut rollout) = (None, false, None);
        for value in dbsc.companion_cookie.values_in(request.header_values("cookie")) {
            match dbsc.companion_sealer.open::<Companion>(value) {
                Ok(opened)
                    if same_id(opened.session().data().binding, binding)
                        && opened.session().user_id() == user =>
                {
                    companion = Some(opened);
                    break;
                }
                Ok(_) => {
                    tracing::info!("a DBSC companion cookie of another binding was ignored");
                    another = true;
                }
                // Waited for only if no other value is this binding's
                // companion: a value planted ahead of it must not stall
                // the refresh.
                Err(err) => match dbsc.companion_sealer.newer_keyring_may_open(value, &err) {
                    Some(id) => rollout = rollout.or(Some(id)),
                    None => tracing::info!(reason = %err, "DBSC companion cookie refused"),
                },
            }
        }
        if let (None, Some(id)) = (&companion, rollout) {
            return unknown_key(settings, "DBSC companion cookie", id);
        }
        let Some(companion) = companion else {
            let reason = "no companion cookie of this binding (expired, idle or removed)";
            ending.companion_of_another = another;
            return ending.end_for_user(&reason, "no_companion", identifier.session().user_id());
        };
        let Some(proof) = proof_text(request) else {
            return ask_for_proof(dbsc, binding, &identifier_text);
        };
        // A proof that cannot be read names no challenge to judge it by: it
        // is answered as a missing one, with a new challenge (spec.bs, "Send
        // request": a 403 has the browser sign again). Logging the session
        // out for it would end every session of a browser whose proofs this
        // server cannot read, and a client without the device's key ends
        // the session all the same with a proof it signs itself.
        let proof = match dbsc::parse_proof(&proof) {
            Ok(proof) => proof,
            Err(err) => {
                tracing::info!(reason = %err, "DBSC refresh: the proof cannot be read; a new challenge is sent");
                return ask_for_proof(dbsc, binding, &identifier_text);
            }
        };
        let (challenge, again) = match open_challenge(dbsc, proof.claimed_challenge()) {
            Some((challenge, ChallengeFor::Refresh(id))) if same_id(id, binding) => (challenge, false),
            Some((challenge, ChallengeFor::RefreshAgain(id))) if same_id(id, binding) => (challenge, true),
            _ => {
                tracing::info!("DBSC refresh: the proof answers no current challenge of this binding");
                return ask_for_proof(dbsc, binding, &identifier_text);
            }
        };
        match proof.verify_refresh(&identifier.session().data().key) {
            Ok(_) => {}
            // The device's own signature, in a form the draft forbids: a
            // client's fault, never a copy's, so no one is logged out.
            Err(err @ dbsc::DbscProofError::UnexpectedKey) => {
                tracing::info!(reason = %err, "DBSC refresh: the proof is refused; a new challenge is sent");
                return ask_for_proof(dbsc, binding, &identifier_text);
            }
            Err(err) => return self.end_unproven(&ending, &err, companion.session()).await,
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
        let state = crate::revocation::state_at_epoch(
            self.verifier.store(),
            companion.user_id(),
            companion.id(),
            companion.epoch(),
        );
        let state = match state.await {
            Ok(state) => state,
            Err(err) => return unavailable(&err),
        };
        if let Err(err) = check_revocation(&companion, &state) {
            if matches!(err, VerifyError::StoreFault { .. }) {
                tracing::error!(reason = %err, "DBSC refresh refused");
            } else if matches!(err, VerifyError::Revoked(_)) && !again {
                // The companion may be one the browser replaced as this
                // request went (a new session ID: `renew_id` on another
                // request): it is asked once more, with the cookies it has
                // now, before the binding ends.
                tracing::info!(reason = %err, "DBSC refresh: the companion's session ended; asked once more");
                return ask_again(dbsc, binding, &identifier_text);
            }
            return ending.end(&err, err.code(), Some(&companion));
        }
        let versioned = companion.data().versioned;
        let session = companion.with_data(companion.data().data.clone());
        let now = crate::sealer::opening_time(settings.sealer.clock().unix_now());
        if settings.registry.is_some() {
            let mut listed = session.clone();
            listed.set_device_bound(true);
            settings.register(&listed, &user_agent_label(request.header_text("user-agent"))).await;
        }
        let Some((cookie, companion)) = self.bind(dbsc, session, binding, versioned, now, None) else {
            return ending.end(&"the bound session could not be sealed", "seal_failed", NO_SESSION);
        };
        tracing::debug!("DBSC refresh: a new bound cookie");
        let mut answer = answer(200, "text/plain; charset=utf-8", String::new());
        answer.push("set-cookie", cookie);
        answer.push("set-cookie", companion);
        push_challenge_ahead(&mut answer, dbsc, binding, &identifier_text);
        Begin::Answer(answer)
    }

    /// Ends a refresh that brings the binding's identifier and companion
    /// cookie and a proof of a current challenge that the device's key did
    /// not sign: whoever sent it holds copies of the session's cookies, not
    /// the device. So the session is logged out on every server (the bound
    /// cookie and every copy of the companion stop opening, the device's own
    /// next refresh ends), not only for this client; the user signs in
    /// again. If the store cannot record that, the refresh still ends for
    /// this client, and the failure is logged.
    async fn end_unproven(
        &self,
        ending: &Ending<'_>,
        reason: &(dyn std::fmt::Display + Sync),
        session: &Session<Companion>,
    ) -> Begin {
        if let Err(err) = self.verifier.logout(session).await {
            tracing::error!(error = %err, "a DBSC refresh without a valid proof could not log the session out");
            // The audit log tells a session still alive from one ended.
            return ending.end(reason, "invalid_proof_not_logged_out", Some(session));
        }
        ending.end(reason, "invalid_proof", Some(session))
    }

    /// The bound cookie and companion cookie of `session`, proven at `now`;
    /// at a registration, the companion names the unbound session it
    /// replaced (`previous`) until the first refresh.
    fn bind(
        &self,
        dbsc: &DbscSettings,
        mut session: Session<Vec<u8>>,
        binding: [u8; 16],
        versioned: bool,
        now: u64,
        previous: Option<[u8; 16]>,
    ) -> Option<(String, String)> {
        let times = session.times()?;
        let last_seen = now.max(times.issued_at);
        session = session.with_times(Times { last_seen, ..times });
        session.set_device_bound(true);
        let (cookie, _) = self
            .settings
            .sealer
            .issue_raw(session.clone(), versioned, Some(&self.settings.cookie), None)
            .inspect_err(|err| tracing::error!(error = %err, "cannot seal the bound session"))
            .ok()?;
        let companion = dbsc
            .companion(&session, binding, versioned, previous.map(|id| (id, last_seen)))
            .inspect_err(|err| tracing::error!(error = %err, "cannot seal the DBSC companion cookie"))
            .ok()?;
        Some((cookie, companion))
    }

    /// Marks `challenge` used until it expires, if it was not used and
    /// predates no cutoff (a global logout, or a store that lost data and
    /// with it the denylist). The mark is one atomic step in the store, so
    /// of concurrent requests with the same proof only one passes.
    async fn use_challenge(&self, challenge: &Session<ChallengeFor>) -> Result<(), ChallengeRefused> {
        const USED: ChallengeRefused =
            ChallengeRefused::Stale("the challenge was used already (a replayed proof)");
        let store = self.verifier.store();
        let state = store.state(None, challenge.id()).await.map_err(ChallengeRefused::Store)?;
        if check_revocation(challenge, &state).is_err() {
            return Err(USED);
        }
        let until = challenge
            .times()
            .map_or(u64::MAX, |t| t.expires_at)
            .saturating_add(self.settings.sealer.leeway_secs());
        match store.revoke_session_once(challenge.id(), until).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(USED),
            Err(err) => Err(ChallengeRefused::Store(err)),
        }
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

/// The challenge of the binding's next refresh, on the response that
/// brings its new bound cookie: the browser keeps it (the draft's "cache
/// challenge") and signs it when the cookie has expired. Without it (it
/// could not be sealed) the next refresh takes a `403` first.
fn push_challenge_ahead(answer: &mut Answer, dbsc: &DbscSettings, binding: [u8; 16], identifier: &str) {
    let header =
        dbsc.challenge_ahead(binding).and_then(|challenge| dbsc::challenge_header(&challenge, identifier));
    if let Some(header) = header {
        answer.push("secure-session-challenge", header);
    }
}

/// `403` with a new challenge: the browser signs it and asks again.
fn ask_for_proof(dbsc: &DbscSettings, binding: [u8; 16], identifier: &str) -> Begin {
    ask_with(dbsc, ChallengeFor::Refresh(binding), identifier)
}

/// [`ask_for_proof`] after a refresh whose companion's session had ended:
/// its challenge says so, and the retry ends the binding if it fails the
/// same way.
fn ask_again(dbsc: &DbscSettings, binding: [u8; 16], identifier: &str) -> Begin {
    ask_with(dbsc, ChallengeFor::RefreshAgain(binding), identifier)
}

fn ask_with(dbsc: &DbscSettings, purpose: ChallengeFor, identifier: &str) -> Begin {
    let header = dbsc.challenge(purpose).and_then(|challenge| dbsc::challenge_header(&challenge, identifier));
    // A 403 without a challenge ends the browser's session (Chrome:
    // `kInvalidChallenge`); a 503 keeps it for a later try.
    let Some(header) = header else {
        tracing::error!("no DBSC challenge could be sealed; the browser is told to try again later");
        return Begin::Answer(answer(503, "text/plain; charset=utf-8", "try again later".to_owned()));
    };
    let mut answer =
        answer(403, "text/plain; charset=utf-8", "a proof of the session's key is needed".to_owned());
    answer.push("secure-session-challenge", header);
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

#[cfg(test)]
mod tests {
    use super::{ask_for_proof, Begin, DbscSettings};
    use crate::web::DeviceBinding;
    use crate::{CookieSpec, Keyring, Sealer};

    /// A refresh that needs a proof but cannot seal a challenge (here: the
    /// clock reads before 1970) answers `503`, which keeps the browser's
    /// session for a later try, not a `403` without a challenge, which
    /// ends it (Chrome: `kInvalidChallenge`).
    #[test]
    fn a_refresh_that_cannot_seal_a_challenge_answers_503() {
        let settings = |unix_now: i64| {
            let sealer = Sealer::builder(Keyring::generate().unwrap())
                .clock(crate::ManualClock::at_unix(unix_now))
                .build()
                .unwrap();
            DbscSettings {
                binding: DeviceBinding::default(),
                companion_sealer: sealer.with_purpose("__Host-session-dbsc"),
                companion_cookie: CookieSpec::named("__Host-session-dbsc").unwrap(),
                identifier_sealer: sealer.with_purpose_without_idle("__Host-session-dbsc-id"),
                challenge_sealer: sealer.with_purpose("__Host-session-dbsc-challenge"),
            }
        };
        let asked = |unix_now: i64| match ask_for_proof(&settings(unix_now), [1; 16], "id") {
            Begin::Answer(answer) => {
                let challenges =
                    answer.headers().filter(|(name, _)| *name == "secure-session-challenge").count();
                (answer.status(), challenges)
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(asked(1_800_000_000), (403, 1));
        assert_eq!(asked(-100), (503, 0));
    }

    #[test]
    fn a_skipped_header_is_logged_short_and_on_one_line() {
        assert_eq!(super::loggable("quota_exceeded;session_identifier=\"AgAAsecret\""), "quota_exceeded");
        assert_eq!(super::loggable("unreachable, quota_exceeded"), "unreachable");
        assert_eq!(
            super::loggable("\u{202e}nwonknu\u{200b}\u{7f}x"),
            "nwonknux",
            "no bidi, zero-width or DEL"
        );
        let long = format!("a\nb\r{}", "c".repeat(100_000));
        let logged = super::loggable(&long);
        assert_eq!(logged.chars().count(), 64, "as SECURITY.md says");
        assert!(logged.starts_with("abccc"), "{logged}");
    }
}
