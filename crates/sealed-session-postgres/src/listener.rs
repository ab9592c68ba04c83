//! The `LISTEN` connection that keeps every server's cache fresh.

use std::sync::Weak;
use std::time::{Duration, Instant};

use sealed_session::{Backoff, Feed, Heartbeat, Invalidation, Quiet};
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};

/// Notifies `channel` through the pool, for the listener to hear: for a
/// session no one has, so that every server (this library's older versions
/// too) takes it for an invalidation of nothing. False if it failed; a
/// ping that timed out may still be sent, and counts as sent.
async fn ping(pool: &PgPool, channel: &str, timeout: Duration) -> bool {
    let Some(payload) = Invalidation::of_no_session() else { return false };
    let notify = sqlx::query("SELECT pg_notify($1, $2)::text").bind(channel).bind(payload).execute(pool);
    match tokio::time::timeout(timeout, notify).await {
        Ok(Ok(_)) => true,
        Ok(Err(err)) => {
            tracing::debug!(%err, "cannot ping the PostgreSQL LISTEN connection");
            false
        }
        Err(_) => {
            tracing::debug!("pinging the PostgreSQL LISTEN connection timed out");
            true
        }
    }
}

/// Whether `listener` delivers: it hears its own ping (or any other
/// notification) within the heartbeat's wait; if not, why. A connection
/// pooler in transaction mode, say, takes the `LISTEN` and delivers
/// nothing; the cache must not be used on the word of such a connection
/// even until the heartbeat would notice.
async fn delivers(
    listener: &mut PgListener,
    pool: &PgPool,
    channel: &str,
    timeout: Duration,
) -> Result<(), &'static str> {
    if !ping(pool, channel, timeout).await {
        return Err("cannot send the connection a ping through the pool");
    }
    let heard = tokio::time::timeout(Heartbeat::ping_wait(timeout), listener.try_recv()).await;
    match heard {
        Ok(Ok(Some(_))) => Ok(()),
        _ => Err("the connection does not deliver its own ping (a connection pooler in transaction mode?)"),
    }
}

/// A `LISTEN` on `channel` that could not be set up (`why`): said at `warn`
/// the first time since the cache was last in use (`said` records that),
/// at `debug` after that, so that a store whose cache never comes up (a
/// slow link, a pooler) says so once without filling the log.
fn not_listening(said: &mut bool, channel: &str, why: &dyn std::fmt::Display) {
    if std::mem::replace(said, true) {
        tracing::debug!(%why, channel, "cannot LISTEN for PostgreSQL revocations yet");
    } else {
        tracing::warn!(
            %why,
            channel,
            "cannot LISTEN for PostgreSQL revocations: checks read the database, without the cache, until it can"
        );
    }
}

/// Keeps a `LISTEN` on `channel` for as long as the store (its `feed`)
/// lives, reporting to the feed: the cache is used only while the
/// connection is up and has delivered its own ping ([`delivers`]), and is
/// emptied whenever it (re)connects, since notifications sent meanwhile
/// are lost. A connection that stops delivering without closing (a
/// firewall or NAT that forgot it, a stalled server process) is noticed by
/// a ping ([`Heartbeat`]): after 5 s of
/// silence the listener notifies its own channel, and if nothing arrives
/// within 3 s (or four timeouts, up to a minute) it reconnects.
pub(crate) async fn listen_forever(feed: Weak<Feed>, pool: PgPool, channel: String, timeout: Duration) {
    let mut backoff = Backoff::default();
    // Whether a failure was said at `warn` since the cache was last in use.
    let mut said = false;
    loop {
        // A pool of its own, of the store pool's settings: a listener
        // dropped runs `UNLISTEN *` on its connection before giving it back,
        // which on a connection that delivers nothing may never end; it
        // must not hold a connection of the application's pool meanwhile.
        let own =
            PgPoolOptions::new().max_connections(1).connect_lazy_with((*pool.connect_options()).clone());
        let listening = async {
            let mut listener = PgListener::connect_with(&own).await?;
            // A lost connection is reported (`Ok(None)`), not silently
            // replaced: this loop reconnects, and the feed knows meanwhile.
            listener.eager_reconnect(false);
            listener.listen(&channel).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        match tokio::time::timeout(timeout.saturating_mul(4), listening).await {
            Ok(Ok(mut listener)) => 'live: {
                if let Err(why) = delivers(&mut listener, &pool, &channel, timeout).await {
                    not_listening(&mut said, &channel, &why);
                    break 'live;
                }
                backoff.reset();
                said = false;
                // Reported lost as it is dropped, at the end of this arm or
                // with this task.
                let Some(_connection) = Feed::connect(&feed, false) else { return };
                let mut heartbeat = Heartbeat::new(Instant::now(), timeout);
                loop {
                    // Wake up now and then to notice that the store was
                    // dropped, and that the connection went quiet.
                    let next = tokio::time::timeout(Duration::from_secs(1), listener.try_recv()).await;
                    let Some(live) = feed.upgrade() else { return };
                    match next {
                        Ok(Ok(Some(notification))) => {
                            heartbeat.heard(Instant::now());
                            live.message(Some(notification.payload()));
                        }
                        // The connection dropped. sqlx would reconnect on
                        // the next call, silently, and a call cut short by
                        // the timeout above would never report the outage:
                        // the cache stops now, and a new LISTEN brings it back.
                        Ok(Ok(None)) => {
                            tracing::warn!("lost the PostgreSQL LISTEN connection; checks read the database until it is back");
                            break;
                        }
                        Ok(Err(err)) => {
                            tracing::warn!(%err, "lost the PostgreSQL LISTEN connection; checks read the database until it is back");
                            break;
                        }
                        Err(_) => match heartbeat.quiet(Instant::now()) {
                            Quiet::Lost => {
                                tracing::warn!("the PostgreSQL LISTEN connection delivers nothing, not even its own ping; checks read the database until it is back");
                                break;
                            }
                            // Sent or not: a store that cannot take a ping
                            // is no reason to trust a silent connection.
                            // Sent beside this loop, which goes on applying
                            // notifications while the database takes it.
                            Quiet::Ping => {
                                let (pool, channel) = (pool.clone(), channel.clone());
                                tokio::spawn(async move { ping(&pool, &channel, timeout).await });
                                heartbeat.pinged(Instant::now());
                            }
                            Quiet::Wait => {}
                        },
                    }
                }
            }
            Ok(Err(err)) => not_listening(&mut said, &channel, &err),
            Err(_) => {
                let why = format!("no answer within {:?}", timeout.saturating_mul(4));
                not_listening(&mut said, &channel, &why);
            }
        }
        if feed.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}
