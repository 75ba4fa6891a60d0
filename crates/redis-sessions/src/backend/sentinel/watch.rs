//! The `+switch-master` watcher: one task per sentinel, for as long as the backend lives.

use std::sync::Weak;
use std::time::Duration;

use futures_util::StreamExt;

use super::resolve::unavailable;
use super::{SentinelConfig, Shared};
use crate::backend::redis::map_error;
use crate::error::BackendError;

/// Listens for `+switch-master` on one sentinel for as long as the backend lives, reconnecting
/// after a second when the sentinel goes away.
pub(super) async fn watch(shared: Weak<Shared>, config: SentinelConfig, sentinel: String) {
    loop {
        let listened = async {
            let client = config.sentinel_client(&sentinel)?;
            let mut pubsub =
                tokio::time::timeout(config.connect_timeout, client.get_async_pubsub())
                    .await
                    .map_err(|_| unavailable(format!("sentinel {sentinel}: connect timed out")))?
                    .map_err(map_error)?;
            tokio::time::timeout(config.response_timeout, pubsub.subscribe("+switch-master"))
                .await
                .map_err(|_| unavailable(format!("sentinel {sentinel}: subscribe timed out")))?
                .map_err(map_error)?;
            let mut messages = pubsub.into_on_message();
            while let Some(msg) = messages.next().await {
                // "<name> <old-ip> <old-port> <new-ip> <new-port>"
                let Ok(payload) = msg.get_payload::<String>() else {
                    continue;
                };
                let parts: Vec<&str> = payload.split(' ').collect();
                let [name, _, _, host, port] = parts[..] else {
                    continue;
                };
                let (Ok(port), true) = (port.parse::<u16>(), name == config.master_name) else {
                    continue;
                };
                let Some(shared) = shared.upgrade() else {
                    return Ok(());
                };
                shared.switch_to(host, port).await;
            }
            Ok::<_, BackendError>(())
        }
        .await;
        match listened {
            // The sentinel's ACL user may not subscribe: asking again every second would only
            // be refused again. Failovers are still followed when a command fails.
            Err(e) if e.kind() == crate::BackendErrorKind::PermissionDenied => {
                tracing::warn!(
                    error = %e,
                    %sentinel,
                    "sentinel watcher stopped: the sentinel refused the +switch-master \
                     subscription (grant +subscribe &+switch-master to its ACL user)"
                );
                return;
            }
            Err(e) => tracing::debug!(error = %e, "sentinel watcher disconnected"),
            Ok(()) => {}
        }
        if shared.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
