//! The threads behind `--threads`: a few workers that share out one operator's work with the
//! calling thread, and stay awake between operators.
//!
//! One inference is tens of operators of 20–300 µs each. A worker that went to sleep after
//! each one (as a general-purpose pool's do) takes tens of microseconds to wake for the next,
//! which ate the whole gain of a second core. Here an idle worker polls for the next job for
//! [`SPIN`] (longer than the gap between two operators, shorter than the gap between two
//! requests) before it sleeps on a condition variable.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long an idle worker keeps polling before it sleeps.
pub const SPIN: Duration = Duration::from_millis(5);

/// Smallest job (multiply-adds) worth sharing out: below ~1 M, handing work to the (polling)
/// workers costs more than it saves.
pub const PARALLEL_MIN_MACS: usize = 1 << 20;

/// Runs `work` over `0..items`: in contiguous ranges, one per thread (the calling thread takes
/// the first), when there is a `pool` and the job (`macs` multiply-adds) is worth it; else all
/// on the calling thread.
pub fn share_out(
    pool: Option<&Workers>,
    items: usize,
    macs: usize,
    work: &(dyn Fn(std::ops::Range<usize>) + Sync),
) {
    match pool {
        Some(pool) if macs >= PARALLEL_MIN_MACS && items > 1 => {
            let parts = pool.parts().min(items);
            pool.run(&|t| {
                if t < parts {
                    work(items * t / parts..items * (t + 1) / parts)
                }
            });
        }
        _ => work(0..items),
    }
}

static POOL: Mutex<Option<Arc<Workers>>> = Mutex::new(None);

/// Runs kinglet's own kernels on `threads` threads from now on (1: the calling thread only,
/// the edge default). tract's own kernels stay on the calling thread: its multithreaded build
/// doubles the binary's size for a gain the edge boards mostly cannot use.
pub fn set_threads(threads: usize) -> std::io::Result<()> {
    // the calling thread works too: `threads − 1` workers
    let pool = if threads > 1 {
        Some(Arc::new(Workers::start(threads - 1)?))
    } else {
        None
    };
    *POOL.lock().unwrap_or_else(|e| e.into_inner()) = pool;
    Ok(())
}

/// The workers [`set_threads`] started, if any.
pub fn pool() -> Option<Arc<Workers>> {
    POOL.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// An output buffer written by several threads at disjoint places.
#[derive(Clone, Copy)]
pub struct SharedOut(pub *mut f32);

impl SharedOut {
    /// The pointer (a method, so that closures capture the whole `Sync` wrapper).
    pub fn ptr(&self) -> *mut f32 {
        self.0
    }
}
// SAFETY: only used for disjoint writes while one job of [`Workers::run`] is running.
unsafe impl Send for SharedOut {}
unsafe impl Sync for SharedOut {}

/// A job: called with the part index, on one thread per part.
type Job = dyn Fn(usize) + Sync;

struct Shared {
    /// Bumped for every job (and at shutdown); workers wait for it to change.
    epoch: AtomicU64,
    /// The current job, valid while `pending` > 0. Written only by the thread holding `caller`.
    job: UnsafeCell<Option<*const Job>>,
    /// Parts of the current job still running on workers.
    pending: AtomicUsize,
    panicked: AtomicBool,
    shutdown: AtomicBool,
    /// Number of workers asleep on `wake`.
    sleepers: Mutex<usize>,
    wake: Condvar,
}

// SAFETY: `job` is written before `epoch` is bumped (release) and read by workers after they see
// the new epoch (acquire); it is not written again until every worker has finished the job.
unsafe impl Sync for Shared {}
unsafe impl Send for Shared {}

/// Workers that split one job at a time with the calling thread.
pub struct Workers {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// One job at a time.
    caller: Mutex<()>,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Workers({} threads)", self.parts())
    }
}

impl Workers {
    /// Starts `workers` threads (the calling thread makes one more part).
    pub fn start(workers: usize) -> std::io::Result<Workers> {
        let shared = Arc::new(Shared {
            epoch: AtomicU64::new(0),
            job: UnsafeCell::new(None),
            pending: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            sleepers: Mutex::new(0),
            wake: Condvar::new(),
        });
        let mut threads = Vec::with_capacity(workers);
        for index in 0..workers {
            let shared = shared.clone();
            let handle = std::thread::Builder::new()
                .name(format!("kinglet-worker-{index}"))
                .spawn(move || work(&shared, index + 1))?;
            threads.push(handle);
        }
        Ok(Workers {
            shared,
            threads,
            caller: Mutex::new(()),
        })
    }

    /// Parts a job is split into: the workers and the calling thread.
    pub fn parts(&self) -> usize {
        self.threads.len() + 1
    }

    /// Runs `job(part)` for every `part` in `0..parts()`: part 0 on the calling thread, the
    /// others on the workers; returns when all are done.
    pub fn run(&self, job: &(dyn Fn(usize) + Sync)) {
        let _one_at_a_time = self.caller.lock().unwrap_or_else(|e| e.into_inner());
        let shared = &*self.shared;
        // SAFETY: the pointer is only dereferenced by workers before they decrement `pending`,
        // and this function does not return before `pending` is back to zero, so the borrow
        // outlives every use; the lifetime is erased to store it.
        unsafe {
            let erased: *const Job = std::mem::transmute::<&(dyn Fn(usize) + Sync), &Job>(job);
            *shared.job.get() = Some(erased);
        }
        shared.pending.store(self.threads.len(), Ordering::Relaxed);
        shared.epoch.fetch_add(1, Ordering::Release);
        if *shared.sleepers.lock().unwrap_or_else(|e| e.into_inner()) > 0 {
            shared.wake.notify_all();
        }
        let mine = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(0)));
        while shared.pending.load(Ordering::Acquire) != 0 {
            std::hint::spin_loop();
        }
        if let Err(panic) = mine {
            std::panic::resume_unwind(panic);
        }
        if shared.panicked.swap(false, Ordering::Relaxed) {
            panic!("a kinglet worker thread panicked");
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Relaxed);
        self.shared.epoch.fetch_add(1, Ordering::Release);
        let _sleepers = self.shared.sleepers.lock();
        self.shared.wake.notify_all();
        drop(_sleepers);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn work(shared: &Shared, part: usize) {
    let mut seen = 0u64;
    loop {
        let mut idle_since = Instant::now();
        let mut polls = 0u32;
        loop {
            let epoch = shared.epoch.load(Ordering::Acquire);
            if epoch != seen {
                seen = epoch;
                break;
            }
            polls = polls.wrapping_add(1);
            if polls.is_multiple_of(256) && idle_since.elapsed() > SPIN {
                let mut sleepers = shared.sleepers.lock().unwrap_or_else(|e| e.into_inner());
                // checked under the lock the caller takes before notifying: no lost wake-up
                if shared.epoch.load(Ordering::Acquire) == seen {
                    *sleepers += 1;
                    sleepers = shared
                        .wake
                        .wait(sleepers)
                        .unwrap_or_else(|e| e.into_inner());
                    *sleepers -= 1;
                }
                idle_since = Instant::now();
            } else {
                std::hint::spin_loop();
            }
        }
        if shared.shutdown.load(Ordering::Relaxed) {
            return;
        }
        // SAFETY: a new epoch with `shutdown` unset means `run` stored a job that stays valid
        // until `pending` reaches zero, which needs this worker's decrement below.
        let job = unsafe { (*shared.job.get()).expect("job stored before the epoch") };
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| unsafe { (*job)(part) }));
        if result.is_err() {
            shared.panicked.store(true, Ordering::Relaxed);
        }
        shared.pending.fetch_sub(1, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_runs_once_per_job_and_workers_wake_after_sleeping() {
        let workers = Workers::start(3).unwrap();
        assert_eq!(workers.parts(), 4);
        let counts: Vec<AtomicUsize> = (0..4).map(|_| AtomicUsize::new(0)).collect();
        for round in 0..1000 {
            if round == 500 {
                // let the workers fall asleep, then give them more work
                std::thread::sleep(SPIN * 3);
            }
            workers.run(&|part| {
                counts[part].fetch_add(1, Ordering::Relaxed);
            });
        }
        for c in &counts {
            assert_eq!(c.load(Ordering::Relaxed), 1000);
        }
    }

    #[test]
    fn a_panicking_part_is_reported_to_the_caller_and_the_pool_still_works() {
        let workers = Workers::start(1).unwrap();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            workers.run(&|part| assert_ne!(part, 1, "part 1 fails"));
        }));
        assert!(caught.is_err());
        let done = AtomicUsize::new(0);
        workers.run(&|_| {
            done.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(done.load(Ordering::Relaxed), 2);
    }
}
