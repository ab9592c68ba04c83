//! The store's background tasks: the invalidation subscription, and the
//! periodic eviction-policy (and, through Sentinel, primary) check.

use std::sync::atomic::Ordering;
use std::sync::Weak;
use std::time::Duration;

use futures_util::StreamExt as _;

use crate::store::Inner;
use sealed_session::Invalidation;

/// Keeps the invalidation subscription up for as long as the store lives.
pub(crate) async fn subscribe_forever(store: Weak<Inner>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(inner) = store.upgrade() else { return };
        let (client, channel, timeout) =
            (inner.link.conns().client.clone(), inner.keys.channel.clone(), inner.config.timeout);
        drop(inner);
        let subscription = async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        match tokio::time::timeout(timeout, subscription).await {
            Ok(Ok(pubsub)) => {
                backoff = Duration::from_millis(50);
                let Some(inner) = store.upgrade() else { return };
                // Whatever was cached may have missed messages: start empty.
                inner.cache.clear();
                inner.subscribed.store(true, Ordering::SeqCst);
                drop(inner);
                let mut messages = pubsub.into_on_message();
                loop {
                    // Wake up now and then to notice that the store was dropped.
                    let next = tokio::time::timeout(Duration::from_secs(1), messages.next()).await;
                    let Some(inner) = store.upgrade() else { return };
                    match next {
                        Ok(Some(message)) => match message.get_payload::<String>() {
                            Ok(text) => inner.cache.apply(&Invalidation::parse(&text)),
                            Err(_) => inner.cache.clear(),
                        },
                        Ok(None) => break,
                        Err(_) => {}
                    }
                }
                let Some(inner) = store.upgrade() else { return };
                inner.subscribed.store(false, Ordering::SeqCst);
                if inner.config.accept_stale_for.is_none() {
                    inner.cache.clear();
                }
                // The server may have restarted or failed over.
                inner.link.note_failure();
                tracing::warn!("lost the Redis revocation subscription; checks go to Redis until it is back");
            }
            Ok(Err(err)) => {
                tracing::debug!(%err, "cannot subscribe to Redis revocations yet");
                if let Some(inner) = store.upgrade() {
                    inner.link.note_failure();
                }
            }
            Err(_) => tracing::debug!("subscribing to Redis revocations timed out"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

/// Reads the eviction policy again every `policy_check_interval` (and,
/// through Sentinel, asks who the primary is), for as long as the store lives.
pub(crate) async fn watch_policy(store: Weak<Inner>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(inner) = store.upgrade() else { return };
        inner.link.follow_failover().await;
        // A failure is logged and recorded: checks refuse until it passes.
        let _ = inner.check_policy().await;
    }
}
