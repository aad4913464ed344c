//! Background work that starts and stops with the server.
//!
//! [`BackgroundTasks`] holds the long-running tasks an instance runs beside
//! the HTTP server (the [`rehash`] worker, the [`outbox`] sender, event
//! [`retention`], the [`revocations`] listener, the [`prune`] task). Each task gets a [`Shutdown`]
//! signal; `Application` fires it after the server has drained on SIGTERM
//! and waits for the tasks to finish their current work.

pub mod mail;
pub mod outbox;
pub mod prune;
pub mod rehash;
pub mod retention;
pub mod revocations;
pub mod webhook;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::state::AppState;

/// Tells a background task that the instance is stopping.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Whether the stop has been requested.
    pub fn is_requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the stop is requested (at once if it already was).
    pub async fn requested(&mut self) {
        // An error means the sender is gone, which also means: stop.
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// A task to run for the lifetime of the server.
pub type Task = Box<dyn FnOnce(Arc<AppState>, Shutdown) -> Pin<Box<dyn Future<Output = ()>>>>;

/// The tasks an instance runs beside its HTTP server.
#[derive(Default)]
pub struct BackgroundTasks {
    tasks: Vec<(&'static str, Task)>,
}

/// How long a stopping instance waits for its background tasks.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

impl BackgroundTasks {
    /// Every task tessera runs, with the receivers they consume and the
    /// outbox senders this instance has (no outbox worker without one).
    pub fn standard(
        rehash_jobs: rehash::Receiver,
        senders: outbox::Senders,
        revocation_listener: revocations::Listener,
    ) -> Self {
        let mut tasks = Self::default();
        tasks.add("rehash", move |state, shutdown| {
            Box::pin(rehash::run(state, rehash_jobs, shutdown))
        });
        tasks.add("retention", |state, shutdown| {
            Box::pin(retention::run(state, shutdown))
        });
        if !senders.is_empty() {
            tasks.add("outbox", move |state, shutdown| {
                Box::pin(outbox::run(state, senders, shutdown))
            });
        }
        tasks.add("revocation listener", move |_state, shutdown| {
            Box::pin(revocations::run(revocation_listener, shutdown))
        });
        tasks.add("prune", |state, shutdown| {
            Box::pin(prune::run(state, shutdown))
        });
        tasks
    }

    /// Adds a named task.
    pub fn add<F>(&mut self, name: &'static str, task: F)
    where
        F: FnOnce(Arc<AppState>, Shutdown) -> Pin<Box<dyn Future<Output = ()>>> + 'static,
    {
        self.tasks.push((name, Box::new(task)));
    }

    /// Starts every task on the current (actix) runtime; the returned
    /// handle stops them.
    pub fn start(self, state: Arc<AppState>) -> RunningTasks {
        let (stop, signal) = watch::channel(false);
        let handles = self
            .tasks
            .into_iter()
            .map(|(name, task)| {
                let future = task(Arc::clone(&state), Shutdown(signal.clone()));
                (name, tokio::task::spawn_local(future))
            })
            .collect();
        RunningTasks { stop, handles }
    }
}

/// Background tasks that are running.
pub struct RunningTasks {
    stop: watch::Sender<bool>,
    handles: Vec<(&'static str, tokio::task::JoinHandle<()>)>,
}

impl RunningTasks {
    /// Signals every task to stop and waits up to [`DRAIN_TIMEOUT`] for
    /// each to finish; one that does not is abandoned with a warning.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for (name, handle) in self.handles {
            match tokio::time::timeout(DRAIN_TIMEOUT, handle).await {
                Ok(Ok(())) => log::debug!("background task {name} stopped"),
                Ok(Err(err)) => log::warn!("background task {name} failed: {err}"),
                Err(_) => log::warn!("background task {name} did not stop in time"),
            }
        }
    }
}
