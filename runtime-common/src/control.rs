//! The handle that steers a running runtime from any thread: reload, drain,
//! stop.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kafka_proxy_core::config::ProxyConfig;

/// Steers a runtime: create it before calling the runtime's `run`, keep a
/// clone, and call its methods from any thread (a signal handler, an admin
/// endpoint, a test). Commands given before the runtime starts wait for it.
#[derive(Clone, Default)]
pub struct Control {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    pending: Mutex<Commands>,
    waker: Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control").field("pending", &*self.lock()).finish_non_exhaustive()
    }
}

/// What a runtime has been asked to do since it last looked.
#[derive(Debug, Default)]
pub struct Commands {
    /// Apply this configuration (the newest one wins).
    pub reload: Option<ProxyConfig>,
    /// Drain: stop accepting, let every connection finish what it forwarded,
    /// and stop when all are done or after this long (the shortest asked wins).
    pub drain: Option<Duration>,
    /// Stop now: close every connection after flushing what is queued.
    pub stop: bool,
}

impl Commands {
    /// True when nothing was asked.
    pub fn is_empty(&self) -> bool {
        self.reload.is_none() && self.drain.is_none() && !self.stop
    }
}

impl Control {
    /// A handle for a runtime not started yet.
    pub fn new() -> Control {
        Control::default()
    }

    /// Apply a new configuration to connections accepted from now on (see
    /// `Proxy::reload`).
    pub fn reload(&self, config: ProxyConfig) {
        self.lock().reload = Some(config);
        self.wake();
    }

    /// Drain within `timeout`: see [`Commands::drain`].
    pub fn drain(&self, timeout: Duration) {
        {
            let mut pending = self.lock();
            pending.drain = Some(pending.drain.map_or(timeout, |t| t.min(timeout)));
        }
        self.wake();
    }

    /// Stop now: see [`Commands::stop`].
    pub fn stop(&self) {
        self.lock().stop = true;
        self.wake();
    }

    /// For runtimes: how to wake the runtime when a command arrives (called
    /// once, when it starts; commands already waiting wake it at once).
    pub fn set_waker(&self, wake: impl Fn() + Send + Sync + 'static) {
        *self.inner.waker.lock().unwrap_or_else(PoisonError::into_inner) = Some(Box::new(wake));
        self.wake();
    }

    /// For runtimes: takes what was asked since the last call.
    pub fn take(&self) -> Commands {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Commands> {
        self.inner.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wake(&self) {
        if let Some(wake) = &*self.inner.waker.lock().unwrap_or_else(PoisonError::into_inner) {
            wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn commands_wait_for_the_runtime_and_merge() {
        let control = Control::new();
        control.drain(Duration::from_secs(30));
        control.drain(Duration::from_secs(5));
        control.drain(Duration::from_secs(60));
        let woken = Arc::new(AtomicUsize::new(0));
        let counter = woken.clone();
        control.set_waker(move || {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        assert_eq!(woken.load(Ordering::SeqCst), 1, "waiting commands wake the runtime at once");
        let taken = control.take();
        assert_eq!(taken.drain, Some(Duration::from_secs(5)), "the shortest drain wins");
        assert!(!taken.stop);
        assert!(control.take().is_empty(), "taken once");
        control.clone().stop();
        assert_eq!(woken.load(Ordering::SeqCst), 2);
        assert!(control.take().stop);
    }
}
