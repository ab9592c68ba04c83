//! The user's sessions as a list of devices, with a session registry
//! ([`WebConfigBuilder::session_registry`](super::WebConfigBuilder::session_registry)).

use std::sync::Arc;

use time::OffsetDateTime;

use super::audit::{AuditKind, SessionRef};
use super::config::{LimitPolicy, RegistrySettings, Settings, BUILT_IN_LIMIT};
use super::handle::{HandleError, SessionHandle};
use crate::registry::{user_agent_label, SessionRecord};
use crate::session::to_datetime;
use crate::{check_revocation, LoginError, Sealer, Session, StoreError, Verified, VerifyError};

/// One of the user's sessions, as [`SessionHandle::devices`] lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Device {
    /// Its name in this list and in audit logs: a digest of its ID, which
    /// neither shows (the list shows the user's other sessions, whose IDs
    /// are theirs alone). [`SessionHandle::end_device`] takes it.
    pub reference: SessionRef,
    /// Whether it is the request's own session.
    pub current: bool,
    /// When it began (its login).
    pub created_at: OffsetDateTime,
    /// Its last recorded activity: updated when its cookie is re-issued,
    /// so it may be a few minutes behind.
    pub last_seen: OffsetDateTime,
    /// When it ends at the latest.
    pub expires_at: OffsetDateTime,
    /// A label of its browser ("Chrome on Linux").
    pub user_agent: String,
    /// Whether it is a "remember me" session.
    pub remembered: bool,
    /// Whether it is device-bound (DBSC).
    pub device_bound: bool,
}

/// How long a login's claim on a place under a refusing limit lasts before
/// the login records its session for good ([`SessionHandle::claim_place`]):
/// well past the clock leeway, as stores drop records by their own clocks.
const CLAIM_SECONDS: u64 = 300;

/// When the session of `record` ends at the latest: its record's end, or,
/// for a claim ([`SessionHandle::claim_place`]) whose login has not
/// recorded it for good, its absolute timeout from its start.
fn session_end(sealer: &Sealer, record: &SessionRecord) -> u64 {
    let absolute = sealer.absolute_of(record.remembered).unwrap_or(0);
    record.expires_at.max(record.created_at.saturating_add(absolute))
}

/// Whether the session of `record` surely no longer opens, for idleness:
/// its cookie's last activity is less than one renewal interval after its
/// record's (`renewal::record_due`), and it ends one idle timeout after
/// that; one clock leeway more for servers whose clocks differ. A
/// device-bound session's record moves with every proof; its bound cookie
/// dies one bound lifetime after the last, but its companion cookie can
/// bring it back with a refresh until the session's own idle timeout has
/// passed since the companion was last sealed, which a change of the
/// session's data does while the bound cookie lives: up to one bound
/// lifetime after the proof. A session the sealer has no profile for is
/// kept. One past its absolute timeout, as this sealer counts it, has ended
/// too (a timeout shortened since it was sealed: its cookie is refused, and
/// its record would count against a limit until it idled out).
fn timed_out(sealer: &Sealer, record: &SessionRecord, now: u64) -> bool {
    let Some((idle, renew_after)) = sealer.idle_profile(record.remembered) else {
        return false;
    };
    let absolute = sealer.absolute_of(record.remembered).unwrap_or(u64::MAX);
    if now >= record.created_at.saturating_add(absolute).saturating_add(sealer.leeway_secs()) {
        return true;
    }
    let lag = if record.device_bound {
        sealer.device_bound_lifetime().map_or(0, |lifetime| lifetime.as_secs())
    } else {
        renew_after
    };
    now >= record.last_seen.saturating_add(idle).saturating_add(lag).saturating_add(sealer.leeway_secs())
}

impl RegistrySettings {
    /// The registry's calls, timed and counted as the revocation store's
    /// are (`sealed_session_store_seconds{op="registry_list"}`, …).
    async fn list(&self, user_id: &str, now: u64) -> Result<Vec<SessionRecord>, StoreError> {
        crate::metrics::store_call("registry_list", self.registry.list(user_id, now)).await
    }

    async fn record(&self, record: &SessionRecord) -> Result<(), StoreError> {
        crate::metrics::store_call("registry_record", self.registry.record(record)).await
    }

    async fn remove(&self, user_id: &str, id: crate::SessionId) -> Result<(), StoreError> {
        crate::metrics::store_call("registry_remove", self.registry.remove(user_id, id)).await
    }
}

impl SessionHandle {
    fn registry(&self) -> Option<&RegistrySettings> {
        self.shared.ops.settings().registry.as_ref()
    }

    fn now(&self) -> u64 {
        crate::sealer::opening_time(self.shared.ops.settings().sealer.clock().unix_now())
    }

    /// The sessions of the request's user, oldest first, with this one
    /// marked: the records of the session registry whose sessions have
    /// neither expired nor been revoked (the revocation store is asked for
    /// each, so a record never lists a session logged out; one under a key
    /// retired since is listed until it idles out, as a record keeps no key
    /// ID). A
    /// session left idle is listed (and counted by a session limit) until
    /// its idle timeout, one renewal interval and the clock leeway have
    /// passed since its record's last activity: the record moves at most
    /// once per interval, so it may lag the cookie by one.
    ///
    /// # Errors
    /// [`HandleError::NoSession`] without a signed-in session,
    /// [`LoginError::Ended`] if it was logged out since the request opened
    /// it (the request then has no session), [`HandleError::NoRegistry`]
    /// without a registry, or [`HandleError::Store`] if the registry or the
    /// store cannot answer.
    pub async fn devices(&self) -> Result<Vec<Device>, HandleError> {
        let registry = self.registry().ok_or(HandleError::NoRegistry)?;
        let current = self.still_signed_in().await?;
        let user_id = current.session().user_id().ok_or(HandleError::NoSession)?;
        let id = current.session().id();
        let records = self.live_records(registry, user_id, Some(id)).await?;
        // This session's activity is its cookie's, whatever its record says.
        let seen = current.session().times().map_or(0, |times| times.last_seen);
        Ok(records
            .into_iter()
            .map(|record| Device {
                reference: SessionRef::of(record.id),
                current: record.id == id,
                created_at: to_datetime(record.created_at),
                last_seen: to_datetime(if record.id == id {
                    record.last_seen.max(seen)
                } else {
                    record.last_seen
                }),
                expires_at: to_datetime(session_end(&self.shared.ops.settings().sealer, &record)),
                user_agent: record.user_agent,
                remembered: record.remembered,
                device_bound: record.device_bound,
            })
            .collect())
    }

    /// Ends the user's session named `reference` (from
    /// [`devices`](Self::devices)) on every server, through the revocation
    /// store's denylist, and removes its record. Returns whether it ended
    /// one: a reference of another user's session, of an ended one, or of
    /// this request's own (use [`logout`](Self::logout) for that) ends
    /// nothing, and neither does one whose session ended or took a new ID
    /// (a new ID after sign-in, device binding) between the listing and
    /// the end: list again, and end it under its new reference.
    ///
    /// # Errors
    /// As [`devices`](Self::devices); nothing is ended if the store did not
    /// record the revocation.
    pub async fn end_device(&self, reference: SessionRef) -> Result<bool, HandleError> {
        let registry = self.registry().ok_or(HandleError::NoRegistry)?;
        let current = self.still_signed_in().await?;
        let user_id = current.session().user_id().ok_or(HandleError::NoSession)?;
        let records = self.live_records(registry, user_id, Some(current.session().id())).await?;
        let found = records
            .into_iter()
            .find(|record| SessionRef::of(record.id) == reference && record.id != current.session().id());
        let Some(record) = found else {
            return Ok(false);
        };
        if !self.end_record(registry, &record).await? {
            return Ok(false);
        }
        let by = SessionRef::of(current.session().id());
        self.audit(AuditKind::DeviceEnded { by }, |event| event.user(Some(user_id)).session(record.id));
        Ok(true)
    }

    /// The request's signed-in session, if the store still has it live: one
    /// logged out (by ID, or everywhere) since the request opened it, while
    /// it read a slow body say, neither lists nor ends the user's other
    /// sessions, nor logs the user out everywhere (it could end the very
    /// session that ended it). The request then has no session.
    pub(super) async fn still_signed_in(&self) -> Result<Arc<Verified<Vec<u8>>>, HandleError> {
        let current = self.shared.read().current.clone().ok_or(HandleError::NoSession)?;
        let user_id = current.session().user_id().ok_or(HandleError::NoSession)?;
        let session = current.session();
        let state = self.shared.ops.state(user_id, session.id(), session.epoch()).await?;
        match check_revocation(session, &state) {
            Ok(()) => Ok(current),
            // The store lost data: it vouches for no session now.
            Err(err @ VerifyError::StoreFault { .. }) => Err(StoreError::Untrusted(Box::new(err)).into()),
            Err(_) => {
                self.shared.lock().lose();
                Err(LoginError::Ended.into())
            }
        }
    }

    /// The user's records whose sessions still open as far as the store
    /// knows; those that ended are removed (best effort), those the store
    /// cannot vouch for (it lost data) are kept but left out. The record of
    /// `shown`, a session this request opened, never times out: its record
    /// may lag (renewals that could not be written), the session does not.
    async fn live_records(
        &self,
        registry: &RegistrySettings,
        user_id: &str,
        shown: Option<crate::SessionId>,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let ops = &self.shared.ops;
        let (sealer, now) = (&ops.settings().sealer, self.now());
        let mut live = Vec::new();
        for record in registry.list(user_id, now).await? {
            // Another user's record (a registry that matches IDs loosely,
            // say without case) is none of this user's.
            if record.user_id != user_id {
                continue;
            }
            // A remembered session while remember-me is off: it cannot open
            // here, so it is neither listed nor counted (a limit would lock
            // the user out for its weeks), but its record stays, for when
            // the profile is back.
            if sealer.idle_profile(record.remembered).is_none() {
                continue;
            }
            let ended = (Some(record.id) != shown && timed_out(sealer, &record, now)) || {
                let state = ops.state(user_id, record.id, record.epoch).await?;
                let revoked = record.is_revoked(&state);
                if !revoked && record.is_ahead_of(&state) {
                    // The store lost data: the session is refused while that
                    // lasts, so it is neither listed nor counted, but it is no
                    // logout, so its record stays.
                    continue;
                }
                revoked
            };
            if ended {
                if let Err(err) = registry.remove(user_id, record.id).await {
                    tracing::warn!(error = %err, "cannot remove the record of a session that ended");
                }
            } else {
                live.push(record);
            }
        }
        Ok(live)
    }

    /// Denylists the session of `record` until it expires, then drops the
    /// record; whether this call ended it. An ID on the denylist already
    /// ended another way, or its session carries on under a new ID (which
    /// denylisted this one through the same one-time write): either way
    /// this call ended nothing.
    async fn end_record(
        &self,
        registry: &RegistrySettings,
        record: &SessionRecord,
    ) -> Result<bool, StoreError> {
        let sealer = &self.shared.ops.settings().sealer;
        let until = session_end(sealer, record).saturating_add(sealer.leeway_secs());
        let ended = self.shared.ops.revoke_session_once(record.id, until).await?;
        if let Err(err) = registry.remove(&record.user_id, record.id).await {
            tracing::warn!(error = %err, "cannot remove an ended session's record");
        }
        Ok(ended)
    }

    /// Before a login of `user_id`: the sessions that must end to make room
    /// under the session limit, or the refusal. `ending` are the sessions
    /// the login ends anyway (the request's own, a lapsed device-bound one,
    /// an injected duplicate's), which are not counted. Nothing ends here: the
    /// login ends them with [`end_for_room`](Self::end_for_room) once
    /// nothing else can make it fail.
    pub(crate) async fn room_for(
        &self,
        user_id: &str,
        ending: &[crate::SessionId],
    ) -> Result<Vec<SessionRecord>, HandleError> {
        let Some(registry) = self.registry() else {
            return Ok(Vec::new());
        };
        // Without a limit of the application's, the registry's own bound
        // is one, less a margin for logins at the same moment: a record it
        // dropped to stay within it would leave a session that opens but is
        // never listed, counted or ended. Its sessions are checked only once
        // the records come near it, and a registry or store that cannot say
        // (best effort, as recording is) lets the login through.
        let (max, policy, mut others) = match registry.limit {
            Some((max, policy)) => (max, policy, self.live_records(registry, user_id, None).await?),
            None => {
                let max = BUILT_IN_LIMIT;
                let near = match registry.list(user_id, self.now()).await {
                    Ok(records) => records.len() >= max,
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot count the user's session records");
                        false
                    }
                };
                if !near {
                    return Ok(Vec::new());
                }
                match self.live_records(registry, user_id, None).await {
                    Ok(others) => (max, LimitPolicy::EndOldest, others),
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot count the user's sessions");
                        return Ok(Vec::new());
                    }
                }
            }
        };
        others.retain(|record| !ending.contains(&record.id));
        let over = (others.len() + 1).saturating_sub(max);
        if over > 0 && policy == LimitPolicy::RefuseLogin {
            tracing::info!(max, "login refused: the user is at the session limit");
            return Err(HandleError::SessionLimit { max });
        }
        others.truncate(over);
        Ok(others)
    }

    /// Under a session limit that refuses logins
    /// ([`LimitPolicy::RefuseLogin`]): records the login's new `session`
    /// before any session ends, then counts the user's live sessions again,
    /// those the login ends anyway (`ending`) left out. Logins of one user
    /// at the same moment each counted the others' sessions missing in
    /// [`room_for`](Self::room_for); each now counts every other that
    /// recorded its session first, so of logins racing for the last places
    /// at most the limit go on (all of them may be refused). And since the
    /// new record is written before the session it replaces ends (a
    /// re-authentication's), no count made meanwhile misses both. Refused
    /// ([`HandleError::SessionLimit`]), or if the registry cannot record or
    /// count (the others' counts would miss this session), the record goes
    /// again and nothing has changed. Whether it recorded the session: the
    /// login records it at its end otherwise, as without such a limit. The
    /// record written here lasts five minutes, for a login dropped halfway:
    /// the login writes it again, for the session's life, once it is sent.
    pub(crate) async fn claim_place(
        &self,
        user_id: &str,
        session: &Session<Vec<u8>>,
        ending: &[crate::SessionId],
    ) -> Result<bool, HandleError> {
        let Some(registry) = self.registry() else {
            return Ok(false);
        };
        let Some((max, LimitPolicy::RefuseLogin)) = registry.limit else {
            return Ok(false);
        };
        let user_agent = self.shared.lock().user_agent.clone();
        let label = user_agent_label(user_agent.as_deref());
        let Some(mut record) = SessionRecord::of(session, &label, self.now()) else {
            return Ok(false);
        };
        // A claim, until the login records the session for good once it is
        // sent: one whose login is dropped halfway lapses within minutes,
        // instead of counting for the session's idle timeout.
        record.expires_at = record.expires_at.min(self.now().saturating_add(CLAIM_SECONDS));
        let counted = match registry.record(&record).await {
            Ok(()) => self.live_records(registry, user_id, None).await,
            Err(err) => Err(err),
        };
        let others = match counted {
            Ok(live) => live.iter().filter(|r| r.id != session.id() && !ending.contains(&r.id)).count(),
            Err(err) => {
                self.discard(session).await;
                return Err(err.into());
            }
        };
        if others + 1 > max {
            tracing::info!(max, "login refused: logins at the same moment took the last place");
            self.discard(session).await;
            return Err(HandleError::SessionLimit { max });
        }
        Ok(true)
    }

    /// A login's new session that will never be sent (the login was refused
    /// or failed after [`claim_place`](Self::claim_place) recorded it):
    /// denylisted, so that a record left behind counts for nothing, and
    /// its record removed (both best effort).
    pub(crate) async fn discard<T>(&self, session: &Session<T>) {
        let until = self.shared.ops.settings().sealer.denylist_until(session);
        if let Err(err) = self.ops().revoke_session(session.id(), until).await {
            tracing::warn!(error = %err, "cannot end a session that was never sent");
        }
        self.unregister(session).await;
    }

    /// Ends the sessions [`room_for`](Self::room_for) chose.
    pub(crate) async fn end_for_room(&self, records: &[SessionRecord]) -> Result<(), StoreError> {
        let Some(registry) = self.registry() else {
            return Ok(());
        };
        for record in records {
            // One that took a new ID meanwhile carries on, over the limit
            // until the next login counts.
            if self.end_record(registry, record).await? {
                self.audit(AuditKind::LimitEnforced, |event| {
                    event.user(Some(&record.user_id)).session(record.id)
                });
            }
        }
        Ok(())
    }

    /// Records `session` in the registry, if there is one, with the
    /// request's browser label; whether it is recorded (as
    /// [`Settings::register`]).
    pub(crate) async fn register<T>(&self, session: &Session<T>) -> bool {
        let user_agent = self.shared.lock().user_agent.clone();
        let label = user_agent_label(user_agent.as_deref());
        self.shared.ops.settings().register(session, &label).await
    }

    /// Removes the record of `session`, if there is a registry.
    pub(crate) async fn unregister<T>(&self, session: &Session<T>) {
        self.shared.ops.settings().unregister(session).await;
    }

    /// Removes the records of `user_id`'s sessions from before `epoch`
    /// (best effort, as [`Settings::unregister`]): after the user's epoch
    /// moved on to `epoch`, they have all ended, while a login on another
    /// server meanwhile, at `epoch`, has not.
    pub(crate) async fn unregister_user(&self, user_id: &str, epoch: u64) {
        let Some(registry) = self.registry() else {
            return;
        };
        let records = match registry.list(user_id, self.now()).await {
            Ok(records) => records,
            Err(err) => return tracing::warn!(error = %err, "cannot list the user's session records"),
        };
        for record in records.iter().filter(|record| record.epoch < epoch && record.user_id == user_id) {
            if let Err(err) = registry.remove(user_id, record.id).await {
                return tracing::warn!(error = %err, "cannot remove the user's session records");
            }
        }
    }
}

impl Settings {
    /// Records `session` in the registry, if there is one; whether it is
    /// recorded (or there was nothing to record). A failure is logged: the
    /// record comes back at the session's next re-issue, and nothing about
    /// whether it opens depends on it.
    pub(crate) async fn register<T>(&self, session: &Session<T>, label: &str) -> bool {
        let Some(registry) = &self.registry else {
            return true;
        };
        let now = crate::sealer::opening_time(self.sealer.clock().unix_now());
        let Some(record) = SessionRecord::of(session, label, now) else {
            return true;
        };
        match registry.record(&record).await {
            Ok(()) => true,
            Err(err) => {
                tracing::warn!(error = %err, "cannot record the session in the registry");
                false
            }
        }
    }

    /// Removes the record of `session`, if there is a registry (best
    /// effort: a record of a revoked session is never listed).
    pub(crate) async fn unregister<T>(&self, session: &Session<T>) {
        let (Some(registry), Some(user_id)) = (&self.registry, session.user_id()) else {
            return;
        };
        if let Err(err) = registry.remove(user_id, session.id()).await {
            tracing::warn!(error = %err, "cannot remove the session's record");
        }
    }
}
