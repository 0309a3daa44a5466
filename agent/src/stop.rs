//! Stopping cleanly: Ctrl-C (SIGINT) or SIGTERM asks the agent to stop. It finishes the step
//! it is in (an upload already sent is answered and recorded; a task being written is written)
//! and starts no other; a call waiting to retry stops waiting. Nothing is lost: an upload left
//! unconfirmed is finished by the next run under the same idempotency key.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;

/// A shared request to stop.
#[derive(Debug, Clone, Default)]
pub struct Stop(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    requested: AtomicBool,
    notify: Notify,
}

impl Stop {
    /// A request that Ctrl-C or SIGTERM makes, from now on (the handlers are in place when
    /// this returns).
    pub fn on_signals() -> Self {
        let stop = Self::default();
        let on_signal = stop.clone();
        let mut signals = Signals::new();
        tokio::spawn(async move {
            loop {
                signals.next().await;
                eprintln!("rollcall-agent: stopping after the current step");
                on_signal.request();
            }
        });
        stop
    }

    pub fn request(&self) {
        self.0.requested.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    pub fn requested(&self) -> bool {
        self.0.requested.load(Ordering::SeqCst)
    }

    /// Resolves once a stop is requested.
    pub async fn requested_now(&self) {
        loop {
            let notified = self.0.notify.notified();
            if self.requested() {
                return;
            }
            notified.await;
        }
    }
}

/// Ctrl-C and SIGTERM, listened for from creation.
#[cfg(unix)]
struct Signals {
    interrupt: Option<tokio::signal::unix::Signal>,
    terminate: Option<tokio::signal::unix::Signal>,
}

#[cfg(unix)]
impl Signals {
    fn new() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        Self {
            interrupt: signal(SignalKind::interrupt()).ok(),
            terminate: signal(SignalKind::terminate()).ok(),
        }
    }

    async fn next(&mut self) {
        async fn recv(signal: &mut Option<tokio::signal::unix::Signal>) {
            match signal {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending().await,
            }
        }
        tokio::select! {
            () = recv(&mut self.interrupt) => {}
            () = recv(&mut self.terminate) => {}
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn new() -> Self {
        Self
    }

    async fn next(&mut self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_wakes_a_waiter_and_stays_requested() {
        let stop = Stop::default();
        assert!(!stop.requested());
        let waiter = tokio::spawn({
            let stop = stop.clone();
            async move { stop.requested_now().await }
        });
        tokio::task::yield_now().await;
        stop.request();
        tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("the waiter wakes")
            .unwrap();
        assert!(stop.requested());
        stop.requested_now().await;
    }
}
