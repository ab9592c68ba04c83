//! Counters and histograms through the `metrics` facade (feature
//! `metrics`), so that any exporter (Prometheus, StatsD, OpenTelemetry)
//! reports them. Without the feature every function here is empty.
//!
//! Labels hold only fixed words and key IDs: never a user ID, session ID,
//! token or secret.

/// `sealed_session_opens_total{result}`: sessions checked by a
/// [`Verifier`](crate::Verifier), `ok` or the refusal's
/// [`VerifyError::code`](crate::VerifyError::code).
pub(crate) fn opened(result: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("sealed_session_opens_total", "result" => result).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = result;
}

/// `sealed_session_seals_total{key_id}`: tokens sealed, by the key that
/// sealed them (an old key's count stops growing once a new one seals).
pub(crate) fn sealed(key_id: u32) {
    #[cfg(feature = "metrics")]
    metrics::counter!("sealed_session_seals_total", "key_id" => key_id.to_string()).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = key_id;
}

/// `sealed_session_reissues_total{reason}`: cookies sealed again with
/// nothing changed: `key_rotation`, `format_upgrade` or `idle_renewal`.
pub(crate) fn reissued(reason: crate::Reissue) {
    #[cfg(feature = "metrics")]
    {
        let reason = match reason {
            crate::Reissue::KeyRotation => "key_rotation",
            crate::Reissue::FormatUpgrade => "format_upgrade",
            crate::Reissue::IdleRenewal => "idle_renewal",
        };
        metrics::counter!("sealed_session_reissues_total", "reason" => reason).increment(1);
    }
    #[cfg(not(feature = "metrics"))]
    let _ = reason;
}

/// `sealed_session_events_total{event}`: what the web driver's audit log
/// records (`login`, `logout`, `logout_everywhere`, …), counted whether or
/// not an audit sink is configured.
pub(crate) fn event(name: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("sealed_session_events_total", "event" => name).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = name;
}

/// `sealed_session_revocations_total{kind}`: `user`, `session` or `all`,
/// through a [`Verifier`](crate::Verifier) or the web layer (a DBSC
/// registration's single-use mark of the unbound session is not counted).
pub(crate) fn revoked(kind: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!("sealed_session_revocations_total", "kind" => kind).increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = kind;
}

/// `sealed_session_store_seconds{op}` (a histogram of each call's time) and
/// `sealed_session_store_errors_total{op}`: the revocation store's calls
/// (`state`, `login_state`, `revoke_user`, `revoke_session`,
/// `revoke_session_once`, `revoke_all`) and the session registry's
/// (`registry_list`, `registry_record`, `registry_remove`).
#[cfg(feature = "metrics")]
pub(crate) async fn store_call<T, E>(
    op: &'static str,
    call: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, E> {
    let started = std::time::Instant::now();
    let result = call.await;
    metrics::histogram!("sealed_session_store_seconds", "op" => op).record(started.elapsed().as_secs_f64());
    if result.is_err() {
        metrics::counter!("sealed_session_store_errors_total", "op" => op).increment(1);
    }
    result
}

/// Without the feature: the store's future itself, so that the future every
/// request awaits holds no extra state.
#[cfg(not(feature = "metrics"))]
pub(crate) fn store_call<F: std::future::Future>(_op: &'static str, call: F) -> F {
    call
}

/// `sealed_session_cache_lookups_total{result}` (`hit`, `miss`, `bypass`
/// while the invalidation feed is down, or `stale`: an older answer given
/// while the store is unreachable, by opt-in) and, for answers,
/// `sealed_session_cache_staleness_seconds`: how old the answer was.
pub(crate) fn cache_lookup(result: &'static str, age_ms: Option<i64>) {
    #[cfg(feature = "metrics")]
    {
        metrics::counter!("sealed_session_cache_lookups_total", "result" => result).increment(1);
        if let Some(age_ms) = age_ms {
            #[allow(clippy::cast_precision_loss)] // milliseconds, far below 2^52
            metrics::histogram!("sealed_session_cache_staleness_seconds")
                .record(age_ms.max(0) as f64 / 1000.0);
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (result, age_ms);
}

/// The invalidation feed (pub/sub or `LISTEN`) of a shared store came up:
/// `sealed_session_feed_live` is 1, and `sealed_session_feed_reconnects_total`
/// counts it if it is not the first connection (the series exists, at 0,
/// from the first, so that a rate sees the first reconnection).
pub(crate) fn feed_up(reconnected: bool) {
    #[cfg(feature = "metrics")]
    {
        metrics::gauge!("sealed_session_feed_live").set(1.0);
        metrics::counter!("sealed_session_feed_reconnects_total").increment(u64::from(reconnected));
    }
    #[cfg(not(feature = "metrics"))]
    let _ = reconnected;
}

/// The invalidation feed was lost: `sealed_session_feed_live` is 0.
pub(crate) fn feed_down() {
    #[cfg(feature = "metrics")]
    metrics::gauge!("sealed_session_feed_live").set(0.0);
}

/// `sealed_session_keyring_reloads_total{result}`: `ok` or `refused`, by
/// the keyring watcher, counted once per version of the file.
#[cfg(feature = "watch")]
pub(crate) fn keyring_reload(ok: bool) {
    #[cfg(feature = "metrics")]
    metrics::counter!("sealed_session_keyring_reloads_total", "result" => if ok { "ok" } else { "refused" })
        .increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = ok;
}

/// `sealed_session_keyring_file_refused`: 1 while the keyring file on disk
/// is refused (the last good keyring stays in use), 0 while the keyring in
/// use is the file's; for an alert that lasts as long as the state does.
#[cfg(feature = "watch")]
pub(crate) fn keyring_file_refused(refused: bool) {
    #[cfg(feature = "metrics")]
    metrics::gauge!("sealed_session_keyring_file_refused").set(f64::from(u8::from(refused)));
    #[cfg(not(feature = "metrics"))]
    let _ = refused;
}

/// `sealed_session_keyring_retire_timestamp_seconds{key_id}`: when each key
/// retires (Unix seconds; 0 for one already retired, infinity for one with
/// no retire date), set whenever a keyring is put in use: for an alert on
/// a key that still seals after that time. A key of the keyring it replaces
/// (`previous`) that is gone reports 0, so that no stale date is left for
/// the alert to fire on.
pub(crate) fn keyring_in_use(keyring: &crate::Keyring, previous: Option<&crate::Keyring>) {
    #[cfg(feature = "metrics")]
    {
        let set = |id: u32, value: f64| {
            metrics::gauge!("sealed_session_keyring_retire_timestamp_seconds", "key_id" => id.to_string())
                .set(value);
        };
        for key in keyring.keys() {
            #[allow(clippy::cast_precision_loss)] // Unix seconds, far below 2^52
            let retire = match (key.state, key.retire_at) {
                (crate::KeyState::Retired, _) => 0.0,
                (_, Some(at)) => at.unix_timestamp() as f64,
                (_, None) => f64::INFINITY,
            };
            set(key.id, retire);
        }
        for gone in
            previous.into_iter().flat_map(crate::Keyring::keys).filter(|k| keyring.entry(k.id).is_none())
        {
            set(gone.id, 0.0);
        }
    }
    #[cfg(not(feature = "metrics"))]
    let _ = (keyring, previous);
}
