//! A client polling GET / while a test edits, counting what failed.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::Session;
use crate::support::{eventually, get};

/// What a poller saw.
pub struct Polled {
    pub ok: u32,
    pub failed: Vec<String>,
    /// The longest any single request took.
    pub slowest: Duration,
}

/// GET / every 3 ms until dropped or stopped, counting what failed.
pub struct Poller {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU32>,
    handle: Option<JoinHandle<Polled>>,
}

impl Poller {
    pub fn start(addr: &str) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU32::new(0));
        let handle = {
            let stop = stop.clone();
            let answered = answered.clone();
            let addr = addr.to_owned();
            std::thread::spawn(move || {
                let mut polled = Polled {
                    ok: 0,
                    failed: Vec::new(),
                    slowest: Duration::ZERO,
                };
                let deadline = Instant::now() + Duration::from_secs(900);
                // Bounded in count and time.
                for _ in 0..1_000_000 {
                    if stop.load(Ordering::Relaxed) || Instant::now() > deadline {
                        break;
                    }
                    let sent = Instant::now();
                    let result = get(&addr, "/");
                    polled.slowest = polled.slowest.max(sent.elapsed());
                    match result {
                        Ok(r) if r.status == 200 => {
                            polled.ok += 1;
                            answered.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => polled
                            .failed
                            .push(format!("status {}: {:?}", r.status, r.text())),
                        Err(e) => polled.failed.push(e.to_string()),
                    }
                    std::thread::sleep(Duration::from_millis(3));
                }
                polled
            })
        };
        Poller {
            stop,
            answered,
            handle: Some(handle),
        }
    }

    /// Good answers so far.
    pub fn answered(&self) -> u32 {
        self.answered.load(Ordering::Relaxed)
    }

    /// Waits until the poller has had `n` good answers: it runs, and the
    /// app served before whatever the test does next.
    pub fn wait_for_answers(&self, n: u32) {
        let seen = eventually(Duration::from_secs(30), || {
            (self.answered.load(Ordering::Relaxed) >= n).then_some(())
        });
        assert!(
            seen.is_some(),
            "the poller had fewer than {n} good answers in 30 s"
        );
    }

    /// Stops, asserts that no request failed, and returns what it saw.
    pub fn assert_no_failures(mut self, session: &Session) -> Polled {
        self.stop.store(true, Ordering::Relaxed);
        let polled = self.handle.take().unwrap().join().unwrap();
        assert!(
            polled.failed.is_empty(),
            "{} failed requests ({} ok): {:?}; events:\n{}\nmanage's stderr:\n{}",
            polled.failed.len(),
            polled.ok,
            &polled.failed[..polled.failed.len().min(10)],
            session.events_text(),
            session.log_text()
        );
        assert!(
            polled.ok > 10,
            "the poller made only {} requests",
            polled.ok
        );
        polled
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}
