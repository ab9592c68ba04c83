//! The key schedule: which key seals at a given time, which keys refuse,
//! and the rolling rotation a cron job keeps going.

use std::time::Duration;

use time::OffsetDateTime;

use super::{Entry, KeySpec, KeyState, Keyring};
use crate::error::KeyringError;

/// One stretch of a keyring's schedule: from `from` on (from the start if
/// `None`), key `key_id` seals, until the next period begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SealingPeriod {
    /// When the period begins; `None` for the first, which has always begun.
    pub from: Option<OffsetDateTime>,
    /// The key that seals during it.
    pub key_id: u32,
}

/// A rolling schedule for [`Keyring::rotated_at`]: a new key seals every
/// `every`, is written into the keyring at least `lead` before it does, and
/// each key keeps opening tokens for `keep` after its successor took over.
///
/// `keep` must be at least the longest session lifetime (the absolute
/// timeout of remember-me sessions if they are on), or sessions sealed just
/// before a switch are refused before they expire. `lead` must cover the
/// time it takes to bring a new keyring file to every server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct RotationPolicy {
    /// How long each key seals.
    pub every: Duration,
    /// How long a key still opens tokens after its successor took over.
    pub keep: Duration,
    /// How long before its activation a new key is written into the keyring.
    pub lead: Duration,
}

impl RotationPolicy {
    /// A new key every `every`, kept for `keep` after it stops sealing, and
    /// written two days before it activates (ASP.NET Core's choice).
    #[must_use]
    pub fn new(every: Duration, keep: Duration) -> Self {
        Self { every, keep, lead: Duration::from_secs(2 * 86_400) }
    }

    /// The same policy, with new keys written `lead` before they activate.
    #[must_use]
    pub fn lead(mut self, lead: Duration) -> Self {
        self.lead = lead;
        self
    }
}

/// The rank of `entry` as a sealer at Unix second `t`, higher wins: the
/// primary key ranks lowest, a scheduled key by its activation time. `None`
/// if the key does not seal at `t`.
fn rank_at(entry: &Entry, t: i64) -> Option<i64> {
    if t >= entry.retire {
        return None;
    }
    match (entry.spec.state, entry.activate) {
        (KeyState::Primary, _) => Some(i64::MIN),
        (KeyState::Active, Some(at)) if at <= t => Some(at),
        _ => None,
    }
}

/// The entry (an index) that seals at Unix second `t`, if any.
fn sealer_at(entries: &[Entry], t: i64) -> Option<usize> {
    let ranked = entries.iter().enumerate().filter_map(|(i, e)| rank_at(e, t).map(|rank| (rank, i)));
    ranked.max().map(|(_, i)| i)
}

/// Checks the schedule of `entries` and lists its periods. Which key seals
/// changes only when a key activates or retires, so checking those instants
/// checks every time.
pub(super) fn periods(entries: &[Entry], primary: usize) -> Result<Vec<(i64, usize)>, KeyringError> {
    let mut scheduled: Vec<&Entry> = entries.iter().filter(|e| e.activate.is_some()).collect();
    scheduled.sort_by_key(|e| e.activate);
    for pair in scheduled.windows(2) {
        if let [a, b] = pair {
            if a.activate == b.activate {
                return Err(KeyringError::SameActivation { first: a.spec.id, second: b.spec.id });
            }
        }
    }
    for entry in entries {
        if entry.activate.is_some_and(|at| entry.retire <= at) {
            return Err(KeyringError::RetiresBeforeActive(entry.spec.id));
        }
    }
    let mut instants: Vec<i64> = entries
        .iter()
        .flat_map(|e| [e.activate, (e.retire != i64::MIN && e.retire != i64::MAX).then_some(e.retire)])
        .flatten()
        .collect();
    instants.sort_unstable();
    instants.dedup();

    let mut periods = vec![(i64::MIN, primary)];
    let mut current = primary;
    for t in instants {
        let at = || OffsetDateTime::from_unix_timestamp(t).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let next = sealer_at(entries, t).ok_or_else(|| KeyringError::NoSealingKey { at: at() })?;
        if next == current {
            continue;
        }
        let rank = |i: usize| entries.get(i).map_or(i64::MIN, |e| e.activate.unwrap_or(i64::MIN));
        if rank(next) < rank(current) {
            let id = entries.get(current).map_or(0, |e| e.spec.id);
            return Err(KeyringError::RetiredBeforeSuccessor { id, at: at() });
        }
        periods.push((t, next));
        current = next;
    }
    Ok(periods)
}

impl Keyring {
    /// The entry that seals at `now` (Unix seconds).
    pub(crate) fn sealing_entry(&self, now: u64) -> &Entry {
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        let index = self.periods.iter().rev().find(|(from, _)| *from <= now).map_or(self.primary, |p| p.1);
        self.entries.get(index).unwrap_or_else(|| self.primary_entry())
    }

    /// The ID of the key that seals at `at`: the primary key, or the most
    /// recently activated scheduled key whose time has come.
    ///
    /// ```
    /// use sealed_session::{KeySpec, KeyState, Keyring, MasterKey};
    /// use time::macros::datetime;
    ///
    /// let keyring = Keyring::new([
    ///     KeySpec::new(1, KeyState::Primary, MasterKey::generate()?),
    ///     KeySpec::new(2, KeyState::Active, MasterKey::generate()?)
    ///         .activate_at(datetime!(2027-01-01 00:00 UTC)),
    /// ])?;
    /// assert_eq!(keyring.sealing_id_at(datetime!(2026-12-31 23:59:59 UTC)), 1);
    /// assert_eq!(keyring.sealing_id_at(datetime!(2027-01-01 00:00 UTC)), 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn sealing_id_at(&self, at: OffsetDateTime) -> u32 {
        self.sealing_entry(u64::try_from(at.unix_timestamp()).unwrap_or(0)).spec.id
    }

    /// What key `id` does at `at`: [`KeyState::Primary`] if it seals then,
    /// [`KeyState::Retired`] if it refuses, [`KeyState::Active`] if it only
    /// opens. `None` if the keyring has no key `id`.
    #[must_use]
    pub fn state_at(&self, id: u32, at: OffsetDateTime) -> Option<KeyState> {
        let entry = self.entry(id)?;
        let now = u64::try_from(at.unix_timestamp()).unwrap_or(0);
        Some(if entry.refuses_at(now) {
            KeyState::Retired
        } else if self.sealing_entry(now).spec.id == id {
            KeyState::Primary
        } else {
            KeyState::Active
        })
    }

    /// The schedule, in order: which key seals from when. A keyring with no
    /// schedule has one period, its primary key's.
    #[must_use]
    pub fn sealing_periods(&self) -> Vec<SealingPeriod> {
        self.periods
            .iter()
            .filter_map(|&(from, index)| {
                let key_id = self.entries.get(index)?.spec.id;
                let from =
                    (from != i64::MIN).then(|| OffsetDateTime::from_unix_timestamp(from).ok()).flatten();
                Some(SealingPeriod { from, key_id })
            })
            .collect()
    }

    /// Scheduled rotation: this keyring plus a new `active` key, made now,
    /// that starts sealing at `at`. Returns the new keyring and the key's ID.
    ///
    /// # Errors
    /// As [`Keyring::with_new_key`], or a schedule error of [`Keyring::new`]
    /// (another key activates at the same second, say).
    pub fn with_new_key_activating_at(&self, at: OffsetDateTime) -> Result<(Self, u32), KeyringError> {
        self.with_new_spec(|key| key.activate_at(at))
    }

    /// Key `id` is retired from `at` on; it opens tokens until then.
    ///
    /// # Errors
    /// As [`Keyring::with_retire_at_as_of`] now.
    pub fn with_retire_at(&self, id: u32, at: OffsetDateTime) -> Result<Self, KeyringError> {
        self.with_retire_at_as_of(id, at, super::now())
    }

    /// Key `id` is retired from `at` on; it opens tokens until then. `now`
    /// is the time the change is made at: a key retired by then stays
    /// retired.
    ///
    /// # Errors
    /// [`KeyringError::NoSuchKey`] if there is no key `id`,
    /// [`KeyringError::AlreadyRetired`] if it refuses tokens at `now` (by
    /// its state or a retire date that has come: a later date would bring
    /// it back), a schedule error of [`Keyring::new`] if no newer key
    /// would seal from `at` on, or [`KeyringError::RetiredAtHandover`] if
    /// `at` is less than the clock leeway
    /// ([`DEFAULT_LEEWAY`](crate::DEFAULT_LEEWAY)) after the key stops
    /// sealing. A keyring does not know the sealers' leeway: with a longer
    /// one (`SealerBuilder::leeway`), leave that much yourself. Nor does
    /// [`Keyring::rotated_at`] check this: its `keep` is meant in days.
    pub fn with_retire_at_as_of(
        &self,
        id: u32,
        at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<Self, KeyringError> {
        let entry = self.entry(id).ok_or(KeyringError::NoSuchKey(id))?;
        if entry.refuses_at(u64::try_from(now.unix_timestamp()).unwrap_or(0)) {
            return Err(KeyringError::AlreadyRetired(id));
        }
        let retired =
            Self::new(self.keys().map(|k| if k.id == id { k.clone().retire_at(at) } else { k.clone() }))?;
        // A server whose clock runs behind by up to the leeway seals under
        // the key until its own clock reaches the handover.
        let leeway = time::Duration::try_from(crate::DEFAULT_LEEWAY).unwrap_or_default();
        let periods = self.sealing_periods();
        let handover = periods
            .iter()
            .zip(periods.iter().skip(1))
            .filter(|(period, _)| period.key_id == id)
            .filter_map(|(_, next)| next.from)
            .max();
        match handover.and_then(|end| end.checked_add(leeway)) {
            Some(earliest) if at < earliest => Err(KeyringError::RetiredAtHandover { id, at, earliest }),
            _ => Ok(retired),
        }
    }

    /// The same schedule, written as of `now`: the key that seals at `now`
    /// becomes `primary`, keys whose retire date has passed become `retired`,
    /// and keys that a newer one has replaced lose their activation time.
    /// From `now` on it seals and refuses exactly as this keyring does.
    ///
    /// # Errors
    /// A schedule error of [`Keyring::new`]; none for a keyring that loaded.
    pub fn normalized_at(&self, now: OffsetDateTime) -> Result<Self, KeyringError> {
        let t = u64::try_from(now.unix_timestamp()).unwrap_or(0);
        let sealer = self.sealing_entry(t).spec.id;
        Self::new(self.entries.iter().map(|e| {
            let mut spec = e.spec.clone();
            if e.refuses_at(t) {
                spec.state = KeyState::Retired;
            } else if spec.id == sealer {
                spec.state = KeyState::Primary;
            } else if spec.state == KeyState::Primary
                || e.activate.is_some_and(|at| at <= now.unix_timestamp())
            {
                // Replaced by the sealer: it only opens from now on.
                spec.state = KeyState::Active;
                spec.activate_at = None;
            }
            spec
        }))
    }

    /// One step of a rolling schedule under `policy`, as a daily cron job
    /// runs it at `now`: if no key is waiting to activate, a new one is
    /// added that activates `every` after the current one did (and at least
    /// `lead` from now); each key that a newer one replaces gets a retire
    /// date `keep` after that replacement (an `active` key with no
    /// activation time, replaced earlier or added by hand, gets one `keep`
    /// from `now`); a key retired by hand with no date is dated `now`;
    /// retired keys whose retire date is more than `keep` past are dropped,
    /// except the one with the highest ID (a new key's ID is
    /// the highest plus one, and a running server refuses a file that gives
    /// an ID it saw another secret); and the result is written as of `now`
    /// ([`Keyring::normalized_at`]). Returns the new keyring and the
    /// new key's ID, if one was added. Running it twice at once changes
    /// nothing the second time.
    ///
    /// # Errors
    /// [`KeyringError::Random`] if the OS random source fails,
    /// [`KeyringError::ZeroRotationPolicy`] for a zero `every`, `keep` or `lead`,
    /// or a schedule error of [`Keyring::new`] (the new key's activation
    /// would fall on another key's, say).
    pub fn rotated_at(
        &self,
        now: OffsetDateTime,
        policy: &RotationPolicy,
    ) -> Result<(Self, Option<u32>), KeyringError> {
        if policy.every.is_zero() || policy.keep.is_zero() || policy.lead.is_zero() {
            let RotationPolicy { every, keep, lead } = *policy;
            return Err(KeyringError::ZeroRotationPolicy { every, keep, lead });
        }
        let ring = self.normalized_at(now)?;
        let add = |at: OffsetDateTime, by: Duration| {
            at.checked_add(time::Duration::try_from(by).unwrap_or(time::Duration::MAX))
                .unwrap_or(OffsetDateTime::new_utc(time::Date::MAX, time::Time::MIDNIGHT))
        };
        // Written as of `now`, an active key with an activation time is one
        // still waiting: the one that seals is primary, replaced ones lost theirs.
        let pending = ring.keys().filter(|k| k.state == KeyState::Active && k.activate_at.is_some()).count();
        let (ring, added) = if pending == 0 {
            let current = ring.primary_entry().spec.clone();
            let since = current.activate_at.or(current.created).unwrap_or(now);
            let at = add(since, policy.every).max(add(now, policy.lead));
            let (ring, id) = ring.with_new_key_activating_at(at)?;
            (ring, Some(id))
        } else {
            (ring, None)
        };
        // The keys that seal in turn: the primary, then each scheduled key.
        let mut chain: Vec<&KeySpec> = ring
            .keys()
            .filter(|k| {
                k.state == KeyState::Primary || (k.state == KeyState::Active && k.activate_at.is_some())
            })
            .collect();
        chain.sort_by_key(|k| (k.state != KeyState::Primary, k.activate_at));
        let mut retire: Vec<(u32, OffsetDateTime)> = chain
            .windows(2)
            .filter_map(|pair| match pair {
                [key, next] if key.retire_at.is_none() => Some((key.id, add(next.activate_at?, policy.keep))),
                _ => None,
            })
            .collect();
        // Keys that only open (replaced before this schedule began) go `keep` from now.
        retire.extend(
            ring.keys()
                .filter(|k| k.state == KeyState::Active && k.activate_at.is_none() && k.retire_at.is_none())
                .map(|k| (k.id, add(now, policy.keep))),
        );
        // Keys retired by hand, with no date, are dated now: they leave the
        // file `keep` from now, as every retired key does, rather than keep
        // their secret in every copy of it for ever.
        retire.extend(
            ring.keys()
                .filter(|k| k.state == KeyState::Retired && k.retire_at.is_none())
                .map(|k| (k.id, now)),
        );
        // The key with the highest ID stays, retired, whatever its age: the
        // next key's ID is the highest in the file plus one, and an ID used
        // again for another secret is one a running server refuses to
        // reload (it knew the old one), so it would never follow the file.
        let highest = ring.keys().map(|k| k.id).max();
        let forgotten = |k: &KeySpec| {
            k.state == KeyState::Retired
                && k.retire_at.is_some_and(|at| add(at, policy.keep) <= now)
                && Some(k.id) != highest
        };
        let ring = Self::new(ring.keys().filter(|k| !forgotten(k)).map(|k| {
            match retire.iter().find(|(id, _)| *id == k.id) {
                Some(&(_, at)) => k.clone().retire_at(at),
                None => k.clone(),
            }
        }))?;
        Ok((ring, added))
    }
}
