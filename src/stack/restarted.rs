//! The moment a pause's watcher has started the stack again after a signal: set once by the watcher, waited for by the main thread before it unwinds.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long the main thread waits for the watcher: a start that hangs on the engine or in a
/// start command must not hold rbk forever.
const AT_MOST: Duration = Duration::from_secs(600);

#[derive(Default)]
pub(crate) struct Restarted {
    done: Mutex<bool>,
    cv: Condvar,
}

impl Restarted {
    /// The watcher has started everything it owed.
    pub(crate) fn set(&self) {
        *self.done.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.cv.notify_all();
    }

    /// Waits until [`set`](Restarted::set), or [`AT_MOST`].
    pub(crate) fn wait(&self) {
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        let deadline = Instant::now() + AT_MOST;
        while !*done && Instant::now() < deadline {
            done = self
                .cv
                .wait_timeout(done, Duration::from_millis(200))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_wait_ends_when_the_watcher_is_done() {
        let r = Arc::new(Restarted::default());
        let setter = r.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            setter.set();
        });
        let started = Instant::now();
        r.wait();
        assert!(started.elapsed() < Duration::from_secs(5));
        t.join().expect("setter");
        // Once set, it stays set.
        r.wait();
    }
}
