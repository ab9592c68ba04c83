//! The invalidation subscription that keeps every server's cache fresh.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use sealed_session::{Backoff, Feed, Heartbeat, Invalidation, Quiet};

use crate::link::{Conns, Link};

/// What the subscription needs of its store: the feed it reports to, the
/// link that says which server to subscribe on (and hears of failures), and
/// settings. The task ends soon after the store is dropped.
pub(crate) struct Subscription {
    pub(crate) feed: Weak<Feed>,
    pub(crate) link: Weak<Link>,
    pub(crate) channel: String,
    pub(crate) timeout: Duration,
    /// Keep cached answers while the subscription is down (for answers when
    /// Redis cannot be reached: `accept_stale_for`).
    pub(crate) keep_stale: bool,
}

/// Publishes a message for no session on `channel`, for the subscription to
/// hear (every server drops nothing for it). False if it failed; a ping
/// that timed out may still be sent, and counts as sent.
async fn ping(conns: &Conns, channel: &str, timeout: Duration) -> bool {
    let Some(message) = Invalidation::of_no_session() else { return false };
    let mut conn = conns.reader.clone();
    let mut publish = redis::cmd("PUBLISH");
    publish.arg(channel).arg(message);
    match tokio::time::timeout(timeout, publish.query_async::<i64>(&mut conn)).await {
        Ok(Ok(_)) => true,
        Ok(Err(err)) => {
            tracing::debug!(%err, "cannot ping the Redis revocation subscription");
            false
        }
        Err(_) => {
            tracing::debug!("pinging the Redis revocation subscription timed out");
            true
        }
    }
}

/// Whether a new subscription delivers: it hears its own ping (or any
/// other message) within the heartbeat's wait; if not, why. Redis confirms
/// a `SUBSCRIBE` itself, but something between (a proxy) may confirm it
/// and pass on nothing: the cache must not be used on the word of such a
/// subscription even until the heartbeat would notice.
async fn delivers<M>(
    messages: &mut (impl futures_util::Stream<Item = M> + Unpin),
    conns: &Conns,
    channel: &str,
    timeout: Duration,
) -> Result<(), &'static str> {
    if !ping(conns, channel, timeout).await {
        return Err("cannot publish the subscription a ping");
    }
    match tokio::time::timeout(Heartbeat::ping_wait(timeout), messages.next()).await {
        Ok(Some(_)) => Ok(()),
        _ => Err("the subscription does not deliver its own ping (a proxy between that passes no messages?)"),
    }
}

/// Keeps the invalidation subscription up for as long as the store lives:
/// the cache is used only while it is up and has delivered its own ping
/// ([`delivers`]). A subscription that stops delivering without closing (a
/// firewall or NAT that forgot the connection) is noticed by a ping
/// ([`Heartbeat`]): after 5 s of silence it publishes a message for no
/// session (beside the messages it applies meanwhile), and if nothing
/// arrives within 3 s (or four timeouts, up to a minute) it is taken for
/// lost and made anew.
pub(crate) async fn subscribe_forever(subscription: Subscription) {
    let Subscription { feed, link, channel, timeout, keep_stale } = subscription;
    let mut backoff = Backoff::default();
    // A refusal by the ACL is said once at `warn` (it recurs every second).
    let mut refusal_said = false;
    // Whether a subscription that did not deliver was said at `warn` since
    // the cache was last in use.
    let mut deaf_said = false;
    'subscribe: loop {
        let Some(conns) = link.upgrade().map(|link| link.conns()) else { return };
        let subscribing = async {
            let mut pubsub = conns.client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match tokio::time::timeout(timeout, subscribing).await {
            Ok(Ok(pubsub)) => 'live: {
                let mut messages = pubsub.into_on_message();
                if let Err(why) = delivers(&mut messages, &conns, &channel, timeout).await {
                    if std::mem::replace(&mut deaf_said, true) {
                        tracing::debug!(
                            why,
                            redis = %conns.address,
                            %channel,
                            "the Redis revocation subscription does not deliver yet"
                        );
                    } else {
                        tracing::warn!(
                            why,
                            redis = %conns.address,
                            %channel,
                            "the Redis revocation subscription does not deliver: checks go to Redis, without the \
                             cache, until it does"
                        );
                    }
                    break 'live;
                }
                backoff.reset();
                deaf_said = false;
                // Reported lost as it is dropped, below or with this task.
                let Some(connection) = Feed::connect(&feed, keep_stale) else { return };
                let mut heartbeat = Heartbeat::new(Instant::now(), timeout);
                let moved = loop {
                    // Wake up now and then to notice that the store was
                    // dropped, that the link followed a failover, or that
                    // the subscription went quiet.
                    let next = tokio::time::timeout(Duration::from_secs(1), messages.next()).await;
                    let Some(live) = feed.upgrade() else { return };
                    match next {
                        Ok(Some(message)) => {
                            heartbeat.heard(Instant::now());
                            live.message(message.get_payload::<String>().ok().as_deref());
                        }
                        Ok(None) => break false,
                        Err(_) => match heartbeat.quiet(Instant::now()) {
                            Quiet::Lost => {
                                tracing::warn!("the Redis revocation subscription delivers nothing, not even its own ping");
                                break false;
                            }
                            // Sent or not: a server that cannot take a ping
                            // is no reason to trust a silent subscription.
                            // Sent beside this loop, which goes on applying
                            // messages while Redis takes it.
                            Quiet::Ping => {
                                let (conns, channel) = (Arc::clone(&conns), channel.clone());
                                tokio::spawn(async move { ping(&conns, &channel, timeout).await });
                                heartbeat.pinged(Instant::now());
                            }
                            Quiet::Wait => {}
                        },
                    }
                    if link.upgrade().is_some_and(|link| !Arc::ptr_eq(&link.conns(), &conns)) {
                        break true;
                    }
                };
                drop(connection);
                if moved {
                    // The old primary may still be up (a partition): it no
                    // longer hears what is published on the new one.
                    tracing::warn!("the Redis primary changed; moving the revocation subscription to it");
                    backoff.reset();
                    continue 'subscribe;
                }
                // The server may have restarted or failed over.
                if let Some(link) = link.upgrade() {
                    link.note_failure();
                }
                tracing::warn!("lost the Redis revocation subscription; checks go to Redis until it is back");
            }
            Ok(Err(err)) if err.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoPerm) => {
                // An ACL that refuses it (connecting checks only PUBLISH).
                if refusal_said {
                    tracing::debug!(%err, "the Redis user may not subscribe to the revocation channel");
                } else {
                    tracing::warn!(%err, %channel, "the Redis user may not subscribe to the revocation channel");
                    refusal_said = true;
                }
            }
            Ok(Err(err)) => {
                tracing::debug!(%err, "cannot subscribe to Redis revocations yet");
                if let Some(link) = link.upgrade() {
                    link.note_failure();
                }
            }
            Err(_) => tracing::debug!("subscribing to Redis revocations timed out"),
        }
        if feed.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}
