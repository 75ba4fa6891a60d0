//! The waits of the install rule: a write's [`Turn`] and a load's [`Written`].

#[allow(
    clippy::wildcard_imports,
    reason = "the cache's own state, one module up"
)]
use super::*;

/// A write of one key waiting until no other write of the key by this cache is in flight
/// ([`Cache::turn`]); it resolves to the write's [`Ticket`].
pub(crate) struct Turn {
    pub(super) cache: Arc<Cache>,
    pub(super) key: String,
    /// Its place in the key's queue, once it had to wait.
    pub(super) waiter: Option<u64>,
}

impl Future for Turn {
    type Output = Ticket;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Ticket> {
        let this = &mut *self;
        let mut guard = this.cache.lock();
        let state = &mut *guard;
        let pending = match state.pending.get_mut(&this.key) {
            Some(pending) => pending,
            None => state.pending.entry(this.key.clone()).or_default(),
        };
        let first = pending.waiting.front().map(|(id, _)| *id);
        if !pending.turn_taken && (first.is_none() || first == this.waiter) {
            if this.waiter.take().is_some() {
                pending.waiting.pop_front();
            }
            // Done: the key goes to the ticket (a finished turn's drop needs it no more).
            let key = std::mem::take(&mut this.key);
            return Poll::Ready(this.cache.begin_locked(state, key, true, true));
        }
        match this.waiter {
            Some(id) => {
                if let Some((_, waker)) = pending.waiting.iter_mut().find(|(i, _)| *i == id) {
                    waker.clone_from(cx.waker());
                }
            }
            None => {
                let id = state.next_waiter;
                state.next_waiter += 1;
                pending.waiting.push_back((id, cx.waker().clone()));
                this.waiter = Some(id);
            }
        }
        Poll::Pending
    }
}

impl Drop for Turn {
    /// Cancelled while waiting: leaves the queue, and if it was first in line (its turn may
    /// have come), wakes the next write.
    fn drop(&mut self) {
        let Some(id) = self.waiter else {
            return;
        };
        let next = {
            let mut state = self.cache.lock();
            let Some(pending) = state.pending.get_mut(&self.key) else {
                return;
            };
            let first = pending.waiting.front().is_some_and(|(i, _)| *i == id);
            pending.waiting.retain(|(i, _)| *i != id);
            // Only the first in line can have been woken for a turn it now leaves.
            let next = first.then(|| pending.next_turn()).flatten();
            if pending.idle() {
                state.pending.remove(&self.key);
            }
            next
        };
        if let Some(next) = next {
            next.wake();
        }
    }
}

/// A load waiting for the write of its key in flight to finish ([`Cache::written`]).
pub(crate) struct Written {
    pub(super) cache: Arc<Cache>,
    pub(super) key: String,
    /// The key's generation when the load began to wait: that write's (a later write, or
    /// an invalidation, moves it).
    pub(super) generation: Option<u64>,
}

impl Future for Written {
    type Output = ();

    /// Ready once that write has finished (the key's marker is gone, no write is in flight,
    /// or the generation moved on), whichever poll sees it: a task may be polled without
    /// having been woken.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let mut state = this.cache.lock();
        let Some(pending) = state.pending.get_mut(&this.key) else {
            return Poll::Ready(());
        };
        let generation = *this.generation.get_or_insert(pending.generation);
        if !pending.turn_taken || pending.generation != generation {
            return Poll::Ready(());
        }
        if !pending.loads.iter().any(|w| w.will_wake(cx.waker())) {
            pending.loads.push(cx.waker().clone());
        }
        Poll::Pending
    }
}
