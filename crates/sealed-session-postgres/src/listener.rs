//! The `LISTEN` connection that keeps every server's cache fresh.

use std::sync::Weak;
use std::time::Duration;

use sealed_session::{Backoff, Feed};
use sqlx::postgres::{PgListener, PgPool};

/// Keeps a `LISTEN` on `channel` for as long as the store (its `feed`)
/// lives, reporting to the feed: the cache is used only while the
/// connection is up, and is emptied whenever it (re)connects, since
/// notifications sent meanwhile are lost.
pub(crate) async fn listen_forever(feed: Weak<Feed>, pool: PgPool, channel: String, timeout: Duration) {
    let mut backoff = Backoff::default();
    loop {
        let listening = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            // A lost connection is reported (`Ok(None)`), not silently
            // replaced: this loop reconnects, and the feed knows meanwhile.
            listener.eager_reconnect(false);
            listener.listen(&channel).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        match tokio::time::timeout(timeout.saturating_mul(4), listening).await {
            Ok(Ok(mut listener)) => {
                backoff.reset();
                let Some(live) = feed.upgrade() else { return };
                live.connected();
                drop(live);
                loop {
                    // Wake up now and then to notice that the store was dropped.
                    let next = tokio::time::timeout(Duration::from_secs(1), listener.try_recv()).await;
                    let Some(live) = feed.upgrade() else { return };
                    match next {
                        Ok(Ok(Some(notification))) => live.message(Some(notification.payload())),
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
                        Err(_) => {}
                    }
                }
                let Some(live) = feed.upgrade() else { return };
                live.lost(false);
            }
            Ok(Err(err)) => tracing::debug!(%err, "cannot LISTEN for PostgreSQL revocations yet"),
            Err(_) => tracing::debug!("LISTEN for PostgreSQL revocations timed out"),
        }
        if feed.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(backoff.next_delay()).await;
    }
}
