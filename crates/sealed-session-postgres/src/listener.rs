//! The `LISTEN` connection that keeps every server's cache fresh.

use std::sync::atomic::Ordering;
use std::sync::Weak;
use std::time::Duration;

use sealed_session::Invalidation;
use sqlx::postgres::PgListener;

use crate::store::Inner;

/// Keeps a `LISTEN` on the store's channel for as long as the store lives.
/// The cache is used only while it is up, and is emptied whenever it
/// (re)connects: notifications sent meanwhile are lost.
pub(crate) async fn listen_forever(store: Weak<Inner>) {
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(inner) = store.upgrade() else { return };
        let (pool, channel, timeout) = (inner.pool.clone(), inner.sql.channel.clone(), inner.options.timeout);
        drop(inner);
        let listening = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(&channel).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        match tokio::time::timeout(timeout * 4, listening).await {
            Ok(Ok(mut listener)) => {
                backoff = Duration::from_millis(50);
                let Some(inner) = store.upgrade() else { return };
                inner.cache.clear();
                inner.listening.store(true, Ordering::SeqCst);
                drop(inner);
                loop {
                    // Wake up now and then to notice that the store was dropped.
                    let next = tokio::time::timeout(Duration::from_secs(1), listener.try_recv()).await;
                    let Some(inner) = store.upgrade() else { return };
                    match next {
                        Ok(Ok(Some(notification))) => {
                            inner.cache.apply(&Invalidation::parse(notification.payload()))
                        }
                        // Reconnected: whatever was sent meanwhile is lost.
                        Ok(Ok(None)) => inner.cache.clear(),
                        Ok(Err(err)) => {
                            tracing::warn!(%err, "lost the PostgreSQL LISTEN connection; checks read the database until it is back");
                            break;
                        }
                        Err(_) => {}
                    }
                }
                let Some(inner) = store.upgrade() else { return };
                inner.listening.store(false, Ordering::SeqCst);
                inner.cache.clear();
            }
            Ok(Err(err)) => tracing::debug!(%err, "cannot LISTEN for PostgreSQL revocations yet"),
            Err(_) => tracing::debug!("LISTEN for PostgreSQL revocations timed out"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}
