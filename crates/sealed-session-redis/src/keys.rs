//! The keyspace and the Lua scripts that keep every operation atomic, the
//! global revocations dated by Redis's own clock (`TIME`), not the
//! application server's; a denylist entry lasts until its expiry by the
//! earlier of the two ([`DENY`]). (The session registry's records are
//! dated by the server that writes them, as in every store: [`RECORD`]
//! trims by its time.)

use redis::Script;
use sealed_session::{SessionId, SessionRecord};

/// Reads everything one check needs in one round trip, and starts a new
/// generation (dated by Redis) if the keyspace has none.
///
/// KEYS: generation, floor, user epoch (or the generation again when there
/// is no user), session denylist entry.
/// Returns: generation, floor, epoch, denied, whether a generation began.
const STATE: &str = r"
local generation = redis.call('GET', KEYS[1])
local started = 0
if not generation then
  generation = redis.call('TIME')[1]
  redis.call('SET', KEYS[1], generation)
  started = 1
end
local floor = redis.call('GET', KEYS[2]) or '0'
local epoch = '0'
if KEYS[3] ~= KEYS[1] then epoch = redis.call('GET', KEYS[3]) or '0' end
local denied = redis.call('EXISTS', KEYS[4])
return {generation, floor, epoch, denied, started}
";

/// Denylists a session until ARGV[1] (Unix seconds by the caller's clock,
/// which is ARGV[2]), never shortening an existing entry, and refusing an
/// expiry at or before the caller's time.
///
/// Redis expires the entry by its own clock: when that clock runs ahead of
/// the caller's, the expiry moves later by the difference, so that the
/// entry lasts until ARGV[1] by the writing server's clock, which the
/// servers that check it keep within the clock leeway (else a Redis clock
/// ahead by more than the leeway would drop an entry while its session
/// still opens). A Redis clock behind keeps it longer, which is harmless.
///
/// KEYS: the session's entry. Returns {1, now} when recorded (or already
/// longer), {0, now} when refused; `now` is the earlier of the two clocks.
pub(crate) const DENY: &str = r"
local time = redis.call('TIME')
local now = tonumber(time[1])
local ahead = math.max(0, now - tonumber(ARGV[2]))
local until_s = tonumber(ARGV[1]) + ahead
if until_s <= now then return {0, now - ahead} end
local pttl = redis.call('PTTL', KEYS[1])
if pttl == -1 then return {1, now - ahead} end
if pttl >= 0 then
  local now_ms = now * 1000 + math.floor(tonumber(time[2]) / 1000)
  if now_ms + pttl >= until_s * 1000 then return {1, now - ahead} end
end
redis.call('SET', KEYS[1], '1', 'EXAT', string.format('%d', until_s))
return {1, now - ahead}
";

/// Denylists a session until ARGV[1] only if it is not denylisted yet
/// (`SET NX`: one step, so of concurrent calls one wins), refusing an
/// expiry at or before the caller's time; ARGV[2] and the expiry's shift
/// as in [`DENY`].
///
/// KEYS: the session's entry. Returns {1, now} when this call wrote the
/// entry, {0, now} when it was there already or the expiry was refused.
pub(crate) const DENY_ONCE: &str = r"
local now = tonumber(redis.call('TIME')[1])
local ahead = math.max(0, now - tonumber(ARGV[2]))
local until_s = tonumber(ARGV[1]) + ahead
if until_s <= now then return {0, now - ahead} end
if redis.call('SET', KEYS[1], '1', 'EXAT', string.format('%d', until_s), 'NX') then return {1, now - ahead} end
return {0, now - ahead}
";

/// Raises the floor to the later of Redis's time and the current cutoff
/// (floor or generation); ARGV[1], the caller's time, counts only up to
/// Redis's (a caller whose clock runs ahead cannot push the cutoff past it).
/// Returns the new floor.
///
/// KEYS: floor, generation, and optionally the untrusted marker: then the
/// floor is raised only if the marker is there or ARGV[2] is `1` (the
/// caller saw the fault itself), the marker goes in the same step, and nil
/// is returned if nothing was done. Everything is read before anything is
/// written: a floor or generation that is not a plain number of seconds is
/// a `WRONGTYPE` error where the floor is to be raised, and the marker
/// stays.
pub(crate) const FLOOR: &str = r"
if KEYS[3] and ARGV[2] ~= '1' and redis.call('EXISTS', KEYS[3]) == 0 then return nil end
local now = tonumber(redis.call('TIME')[1])
local stored = redis.call('GET', KEYS[2])
local floor = redis.call('GET', KEYS[1]) or '0'
local function seconds(text)
  if not string.match(text, '^%d+$') or string.len(text) > 15 then return nil end
  return tonumber(text)
end
local generation = seconds(stored or tostring(now))
local current = seconds(floor)
if not generation or not current then
  return redis.error_reply('WRONGTYPE the floor or generation key is not a number of seconds')
end
if KEYS[3] then redis.call('DEL', KEYS[3]) end
if not stored then redis.call('SET', KEYS[2], now) end
floor = math.max(math.min(tonumber(ARGV[1]), now), now, generation, current)
redis.call('SET', KEYS[1], string.format('%d', floor))
return floor
";

/// Writes a generation, dated by Redis, if the keyspace has none; returns
/// it and whether it began now.
///
/// KEYS: generation.
const GENERATION: &str = r"
local generation = redis.call('GET', KEYS[1])
if generation then return {generation, 0} end
generation = redis.call('TIME')[1]
redis.call('SET', KEYS[1], generation)
return {generation, 1}
";

/// Records a session in the user's registry hash, drops the records that
/// have expired and the oldest beyond the bound, and lets the hash expire
/// with its last record.
///
/// KEYS: the user's registry hash. ARGV: field (the session ID in hex),
/// value ([`encode_record`]), now, the bound.
pub(crate) const RECORD: &str = r"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local now = tonumber(ARGV[3])
local live = {}
local latest = 0
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local _, created, _, expires = string.match(all[i + 1], '^(%d+) (%d+) (%d+) (%d+) ')
  created, expires = tonumber(created), tonumber(expires)
  if expires == nil or created == nil or expires <= now then
    redis.call('HDEL', KEYS[1], all[i])
  else
    table.insert(live, {created, all[i]})
    if expires > latest then latest = expires end
  end
end
table.sort(live, function(a, b) if a[1] ~= b[1] then return a[1] < b[1] end return a[2] < b[2] end)
for i = 1, #live - tonumber(ARGV[4]) do redis.call('HDEL', KEYS[1], live[i][2]) end
if latest > 0 then redis.call('EXPIREAT', KEYS[1], latest) end
return 1
";

/// Whether `prefix` can be a store's: 1 to 256 visible ASCII characters,
/// and no part after a `:` that is `user` or `registry`. Under prefix `p`,
/// the keys `p:user:…` and `p:registry:…` hold any user ID after them: a
/// store under `p:user:x` would find its generation (`p:user:x:generation`)
/// where the store under `p` keeps the epoch of user `x:generation`.
/// (`p:session:…` holds 32 hex digits and nothing more: no other store's
/// key.)
pub(crate) fn valid_prefix(prefix: &str) -> bool {
    (1..=256).contains(&prefix.len())
        && prefix.bytes().all(|b| b.is_ascii_graphic())
        && !prefix.split(':').skip(1).any(|part| ["user", "registry"].contains(&part))
}

/// A registry record as its hash value: epoch, created, last seen, expiry,
/// remembered and device-bound (0 or 1), then the label (which may hold
/// spaces), separated by single spaces.
pub(crate) fn encode_record(record: &SessionRecord) -> String {
    format!(
        "{} {} {} {} {} {} {}",
        record.epoch,
        record.created_at.min(MAX_SCRIPT_TIME),
        record.last_seen,
        record.expires_at.min(MAX_SCRIPT_TIME),
        u8::from(record.remembered),
        u8::from(record.device_bound),
        record.user_agent
    )
}

/// The record of the user's session `field` (hex ID) and `value`, as
/// [`encode_record`] wrote it; `None` if it is not one.
pub(crate) fn decode_record(user_id: &str, field: &str, value: &str) -> Option<SessionRecord> {
    let mut parts = value.splitn(7, ' ');
    let mut number = || parts.next()?.parse::<u64>().ok();
    let (epoch, created_at, last_seen, expires_at) = (number()?, number()?, number()?, number()?);
    let (remembered, device_bound) = (number()?, number()?);
    let flag = |n: u64| match n {
        0 => Some(false),
        1 => Some(true),
        _ => None,
    };
    Some(SessionRecord {
        id: SessionId::from_hex(field)?,
        user_id: user_id.to_owned(),
        epoch,
        created_at,
        last_seen,
        expires_at,
        remembered: flag(remembered)?,
        device_bound: flag(device_bound)?,
        user_agent: parts.next()?.to_owned(),
    })
}

/// The largest time the scripts are given: Lua numbers are doubles.
pub(crate) const MAX_SCRIPT_TIME: u64 = (1 << 53) - 1;

/// The scripts run by hash (`EVALSHA`). Writes send their script's text
/// (`EVAL`) instead, in a pipeline with `WAIT`.
pub(crate) struct Scripts {
    pub(crate) state: Script,
    pub(crate) generation: Script,
}

impl Scripts {
    pub(crate) fn new() -> Self {
        Self { state: Script::new(STATE), generation: Script::new(GENERATION) }
    }
}

/// The store's keys and channel, under one prefix.
pub(crate) struct Keys {
    pub(crate) generation: String,
    pub(crate) floor: String,
    /// Set (without expiry) while a server finds Redis's settings unsafe:
    /// whichever server next finds them safe logs everyone out, even one
    /// that started, or followed a failover, after the fault.
    pub(crate) untrusted: String,
    pub(crate) channel: String,
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            generation: format!("{prefix}:generation"),
            floor: format!("{prefix}:floor"),
            untrusted: format!("{prefix}:untrusted"),
            channel: format!("{prefix}:revocations"),
            prefix: prefix.to_owned(),
        }
    }

    pub(crate) fn user(&self, user_id: &str) -> String {
        format!("{}:user:{user_id}", self.prefix)
    }

    pub(crate) fn session(&self, session: &SessionId) -> String {
        format!("{}:session:{}", self.prefix, session.to_hex())
    }

    /// The hash of the user's session registry records.
    pub(crate) fn registry(&self, user_id: &str) -> String {
        format!("{}:registry:{user_id}", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealed_session::Session;

    #[test]
    fn a_record_reads_back_as_written_and_anything_else_is_none() {
        let record = SessionRecord {
            id: Session::new(()).id(),
            user_id: "alice".to_owned(),
            epoch: 3,
            created_at: 10,
            last_seen: 20,
            expires_at: 30,
            user_agent: "Chrome on Linux".to_owned(),
            remembered: true,
            device_bound: false,
        };
        let (field, value) = (record.id.to_hex(), encode_record(&record));
        assert_eq!(value, "3 10 20 30 1 0 Chrome on Linux");
        assert_eq!(decode_record("alice", &field, &value), Some(record));
        for bad in ["3 10 20 30 1 2 x", "3 10 20 30 1 0", "3 10 x 30 1 0 y", ""] {
            assert_eq!(decode_record("alice", &field, bad), None, "{bad}");
        }
        assert_eq!(decode_record("alice", "zz", &value), None);
    }

    #[test]
    fn only_a_prefix_that_names_no_other_stores_keys_is_valid() {
        let longest = "p".repeat(256);
        for good in
            ["sealed-session", "app", "app:sessions", "a:users", "user", "a:b:c", "a:session", &longest]
        {
            assert!(super::valid_prefix(good), "{good}");
        }
        let longer = "p".repeat(257);
        for bad in ["", "a b", "a\n", "é", "a:user", "a:user:x", "a:b:registry", &longer] {
            assert!(!super::valid_prefix(bad), "{bad:?}");
        }
    }

    #[test]
    fn keys_live_under_the_prefix() {
        let keys = Keys::new("app");
        assert_eq!(keys.user("alice"), "app:user:alice");
        assert_eq!((keys.generation.as_str(), keys.floor.as_str()), ("app:generation", "app:floor"));
        assert_eq!(keys.untrusted, "app:untrusted");
        let session = Session::new(()).id();
        assert_eq!(keys.session(&session), format!("app:session:{}", session.to_hex()));
    }
}
