//! kinglet's global allocator: the system allocator, counted, plus one fixed arena that
//! inferences allocate from.
//!
//! A binary opts in with
//!
//! ```
//! #[global_allocator]
//! static ALLOCATOR: kinglet_runtime::memory::KingletAllocator =
//!     kinglet_runtime::memory::KingletAllocator;
//!
//! fn main() {
//!     assert!(kinglet_runtime::memory::installed());
//! }
//! ```
//!
//! (the `kinglet` and `kinglet-export` binaries do). Without it the runtime still works, but it
//! cannot measure memory or keep inferences inside a fixed arena, and says so.
//!
//! * Every allocation is counted: bytes live, the peak since the last [`reset_peak`], and per
//!   thread the calls that reached the system allocator ([`system_calls`]).
//! * [`reserve_arena`] takes one block from the system at load, touches every page (so the
//!   memory is resident before the first request, not found missing during one), and hands it to
//!   [talc](https://docs.rs/talc). Arenas reserved later are added to the same heap.
//! * While an [`ArenaScope`] is alive on a thread, that thread's allocations come from the
//!   arena: no system call. Memory is given back to whichever side it came from, decided by its
//!   address, so a result that outlives its scope is still freed correctly.
//! * When the arena cannot serve a request, the allocation falls back to the system allocator
//!   instead of aborting, and the scope records the overflow: the caller turns it into an error
//!   for that one request ([`ArenaScope::finish`]).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};
use std::sync::Mutex;
use talc::{ErrOnOom, Span, Talc};

/// The allocator to install with `#[global_allocator]`.
#[derive(Debug, Default, Clone, Copy)]
pub struct KingletAllocator;

const MAX_ARENAS: usize = 16;
const PAGE_BYTES: usize = 4096;

static INSTALLED: AtomicBool = AtomicBool::new(false);
static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);
static PEAK_BYTES: AtomicIsize = AtomicIsize::new(0);
static ARENA: Mutex<Talc<ErrOnOom>> = Mutex::new(Talc::new(ErrOnOom));
static ARENA_COUNT: AtomicUsize = AtomicUsize::new(0);
static ARENA_BASE: [AtomicUsize; MAX_ARENAS] = [const { AtomicUsize::new(0) }; MAX_ARENAS];
static ARENA_END: [AtomicUsize; MAX_ARENAS] = [const { AtomicUsize::new(0) }; MAX_ARENAS];
static ARENA_TOTAL_BYTES: AtomicUsize = AtomicUsize::new(0);
static ARENA_USED_BYTES: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static IN_ARENA: Cell<bool> = const { Cell::new(false) };
    static SYSTEM_ALLOC_CALLS: Cell<u64> = const { Cell::new(0) };
    static SYSTEM_FREE_CALLS: Cell<u64> = const { Cell::new(0) };
    static OVERFLOW_BYTES: Cell<usize> = const { Cell::new(0) };
}

fn in_arena_scope() -> bool {
    IN_ARENA.with(Cell::get)
}

fn arena_owns(ptr: *mut u8) -> bool {
    let p = ptr as usize;
    let n = ARENA_COUNT.load(Ordering::Acquire);
    (0..n).any(|i| {
        p >= ARENA_BASE[i].load(Ordering::Relaxed) && p < ARENA_END[i].load(Ordering::Relaxed)
    })
}

fn track(delta: isize) {
    let live = LIVE_BYTES.fetch_add(delta, Ordering::Relaxed) + delta;
    if delta > 0 {
        PEAK_BYTES.fetch_max(live, Ordering::Relaxed);
    }
}

fn lock_arena() -> std::sync::MutexGuard<'static, Talc<ErrOnOom>> {
    ARENA
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

unsafe fn system_alloc(layout: Layout, zeroed: bool) -> *mut u8 {
    SYSTEM_ALLOC_CALLS.with(|c| c.set(c.get() + 1));
    if zeroed {
        System.alloc_zeroed(layout)
    } else {
        System.alloc(layout)
    }
}

unsafe fn arena_alloc(layout: Layout) -> Option<*mut u8> {
    let ptr = lock_arena().malloc(layout).ok()?;
    ARENA_USED_BYTES.fetch_add(layout.size(), Ordering::Relaxed);
    Some(ptr.as_ptr())
}

unsafe impl GlobalAlloc for KingletAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.allocate(layout, false)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        self.allocate(layout, true)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        track(-(layout.size() as isize));
        if arena_owns(ptr) {
            ARENA_USED_BYTES.fetch_sub(layout.size(), Ordering::Relaxed);
            lock_arena().free(NonNull::new_unchecked(ptr), layout);
        } else {
            SYSTEM_FREE_CALLS.with(|c| c.set(c.get() + 1));
            System.dealloc(ptr, layout);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !in_arena_scope() && !arena_owns(ptr) {
            // The common case outside inference: let the system allocator grow in place.
            SYSTEM_ALLOC_CALLS.with(|c| c.set(c.get() + 1));
            let new = System.realloc(ptr, layout, new_size);
            if !new.is_null() {
                track(new_size as isize - layout.size() as isize);
            }
            return new;
        }
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        let new = self.allocate(new_layout, false);
        if !new.is_null() {
            std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            self.dealloc(ptr, layout);
        }
        new
    }
}

impl KingletAllocator {
    unsafe fn allocate(&self, layout: Layout, zeroed: bool) -> *mut u8 {
        if !INSTALLED.load(Ordering::Relaxed) {
            INSTALLED.store(true, Ordering::Relaxed);
        }
        let ptr = if in_arena_scope() && layout.size() > 0 {
            match arena_alloc(layout) {
                Some(p) => {
                    if zeroed {
                        std::ptr::write_bytes(p, 0, layout.size());
                    }
                    p
                }
                None => {
                    OVERFLOW_BYTES.with(|o| o.set(o.get() + layout.size()));
                    system_alloc(layout, zeroed)
                }
            }
        } else {
            system_alloc(layout, zeroed)
        };
        if !ptr.is_null() {
            track(layout.size() as isize);
        }
        ptr
    }
}

/// True when [`KingletAllocator`] is this process's global allocator.
pub fn installed() -> bool {
    drop(std::hint::black_box(Box::new(0u8)));
    INSTALLED.load(Ordering::Relaxed)
}

/// Bytes currently allocated by the whole process (arena and system).
pub fn live_bytes() -> usize {
    LIVE_BYTES.load(Ordering::Relaxed).max(0) as usize
}

/// Highest [`live_bytes`] since the last [`reset_peak`].
pub fn peak_bytes() -> usize {
    PEAK_BYTES.load(Ordering::Relaxed).max(0) as usize
}

/// Starts a new peak measurement from the current live bytes.
pub fn reset_peak() {
    PEAK_BYTES.store(LIVE_BYTES.load(Ordering::Relaxed), Ordering::Relaxed);
}

/// Calls this thread has made to the system allocator (allocations and reallocations; frees
/// separately), since it started.
pub fn system_calls() -> SystemCalls {
    SystemCalls {
        allocations: SYSTEM_ALLOC_CALLS.with(Cell::get),
        frees: SYSTEM_FREE_CALLS.with(Cell::get),
    }
}

/// Counts of system-allocator calls made by one thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemCalls {
    /// `alloc`, `alloc_zeroed` and `realloc` calls.
    pub allocations: u64,
    /// `dealloc` calls.
    pub frees: u64,
}

impl std::ops::Sub for SystemCalls {
    type Output = SystemCalls;
    fn sub(self, earlier: SystemCalls) -> SystemCalls {
        SystemCalls {
            allocations: self.allocations - earlier.allocations,
            frees: self.frees - earlier.frees,
        }
    }
}

/// Total bytes reserved for arenas in this process, and the bytes in use in them.
pub fn arena_bytes() -> (usize, usize) {
    (
        ARENA_TOTAL_BYTES.load(Ordering::Relaxed),
        ARENA_USED_BYTES.load(Ordering::Relaxed),
    )
}

/// Why an arena could not be reserved.
#[derive(Debug, thiserror::Error)]
pub enum ArenaError {
    /// The global allocator is not [`KingletAllocator`].
    #[error("kinglet's allocator is not installed in this program (#[global_allocator])")]
    NotInstalled,
    /// The system refused the memory.
    #[error("the system refused {0} bytes for the inference arena")]
    OutOfMemory(usize),
    /// Too many arenas in one process.
    #[error("at most {MAX_ARENAS} arenas per process")]
    TooMany,
}

/// Reserves `bytes` more for the arena, taken from the system now and touched page by page so
/// they are resident. The memory stays reserved until the process ends.
pub fn reserve_arena(bytes: usize) -> Result<(), ArenaError> {
    if !installed() {
        return Err(ArenaError::NotInstalled);
    }
    let slot = ARENA_COUNT.load(Ordering::Acquire);
    if slot >= MAX_ARENAS {
        return Err(ArenaError::TooMany);
    }
    let bytes = bytes.div_ceil(PAGE_BYTES).max(4) * PAGE_BYTES;
    let layout =
        Layout::from_size_align(bytes, PAGE_BYTES).map_err(|_| ArenaError::OutOfMemory(bytes))?;
    // SAFETY: non-zero size; the block is handed to talc, which alone uses it from now on.
    unsafe {
        let base = system_alloc(layout, true);
        if base.is_null() {
            return Err(ArenaError::OutOfMemory(bytes));
        }
        for page in (0..bytes).step_by(PAGE_BYTES) {
            std::ptr::write_volatile(base.add(page), 0);
        }
        let mut arena = lock_arena();
        arena
            .claim(Span::from_base_size(base, bytes))
            .map_err(|()| ArenaError::OutOfMemory(bytes))?;
        ARENA_BASE[slot].store(base as usize, Ordering::Relaxed);
        ARENA_END[slot].store(base as usize + bytes, Ordering::Relaxed);
        ARENA_COUNT.store(slot + 1, Ordering::Release);
    }
    ARENA_TOTAL_BYTES.fetch_add(bytes, Ordering::Relaxed);
    Ok(())
}

/// While alive, this thread allocates from the arena. Not re-entrant: nested scopes share the
/// outer one.
#[derive(Debug)]
pub struct ArenaScope {
    was_active: bool,
    overflow_before: usize,
}

impl ArenaScope {
    /// Routes this thread's allocations to the arena until the scope ends.
    pub fn enter() -> ArenaScope {
        let was_active = IN_ARENA.with(|a| a.replace(true));
        ArenaScope {
            was_active,
            overflow_before: OVERFLOW_BYTES.with(Cell::get),
        }
    }

    /// Ends the scope; returns the bytes that did not fit in the arena and came from the system
    /// instead (0 when the request stayed inside it).
    pub fn finish(self) -> usize {
        let overflow = OVERFLOW_BYTES.with(Cell::get) - self.overflow_before;
        drop(self);
        overflow
    }
}

impl Drop for ArenaScope {
    fn drop(&mut self) {
        IN_ARENA.with(|a| a.set(self.was_active));
    }
}
