//! The berth binary's global allocator: a bump arena in `.bss` for small allocations, the
//! system allocator (glibc's malloc) for the rest.
//!
//! A berth command is short-lived and makes about 1,400 small allocations (`run`: the
//! command line, config.json as a `serde_json::Value` and then as a `Spec`, paths, the
//! state document). glibc's malloc spent about 110 instructions on each allocation and 100
//! on each free, on a heap that starts empty every time: 30% of what the parent of `run`
//! executes (bench/callgrind.txt). Here an allocation is an aligned bump of one offset and a
//! free is nothing, except that freeing the most recent allocation takes it back, and a
//! `realloc` of the most recent allocation grows it in place (a `Vec` or `String` being
//! built).
//!
//! Bounded: allocations over [`SMALL`] bytes, and every allocation once the arena is used
//! up, go to the system allocator, so the long-running commands (`run` waiting for its
//! container, `events`, `unpack`) reuse memory as before and waste at most the arena. The
//! arena's pages are zero pages until written, so they count in the resident set only as
//! they are used. Thread-safe: the offset moves by compare-and-swap. A forked child (the
//! container init) has its own copy, as it has of the heap.
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// The largest allocation the arena serves.
pub const SMALL: usize = 4096;
/// The largest alignment it serves (the alignment of its buffer).
const ALIGN: usize = 4096;
/// The least alignment of every block: malloc's on x86-64. Code that casts a byte buffer to
/// a struct relies on it, as nix's `sendmsg` does with its control-message buffer (a
/// misaligned pointer panic in the container init otherwise).
const MIN_ALIGN: usize = 16;

#[repr(C, align(4096))]
struct Buf<const N: usize>([u8; N]);

/// A bump arena of `N` bytes in front of [`System`].
pub struct Arena<const N: usize> {
    buf: UnsafeCell<Buf<N>>,
    /// Offset of the first free byte.
    next: AtomicUsize,
}

// SAFETY: the buffer is only reached through pointers handed out for disjoint ranges,
// which `next` reserves atomically; the arena itself never reads or writes it.
unsafe impl<const N: usize> Sync for Arena<N> {}

impl<const N: usize> Default for Arena<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Arena<N> {
    pub const fn new() -> Self {
        Arena {
            buf: UnsafeCell::new(Buf([0; N])),
            next: AtomicUsize::new(0),
        }
    }

    fn base(&self) -> usize {
        self.buf.get() as usize
    }

    /// The offset of `ptr` in the arena, if it is one of ours.
    fn offset(&self, ptr: *mut u8) -> Option<usize> {
        (ptr as usize)
            .checked_sub(self.base())
            .filter(|&off| off < N)
    }

    /// Reserve `layout` in the arena, or None when it is too large or does not fit.
    fn bump(&self, layout: Layout) -> Option<*mut u8> {
        if layout.size() > SMALL || layout.align() > ALIGN {
            return None;
        }
        let mut cur = self.next.load(Relaxed);
        loop {
            // The buffer is ALIGN-aligned, so aligning the offset aligns the address.
            let start = cur.next_multiple_of(layout.align().max(MIN_ALIGN));
            let end = start.checked_add(layout.size()).filter(|&e| e <= N)?;
            match self.next.compare_exchange_weak(cur, end, Relaxed, Relaxed) {
                Ok(_) => return Some((self.base() + start) as *mut u8),
                Err(now) => cur = now,
            }
        }
    }

    /// How many bytes of the arena are in use.
    pub fn used(&self) -> usize {
        self.next.load(Relaxed)
    }
}

// SAFETY: every pointer returned is either from System or a range of our buffer that no
// other live allocation overlaps (`bump` reserves it atomically; a range is only handed out
// again after its owner freed it, and only when it was the last one reserved), aligned
// as the layout asks.
unsafe impl<const N: usize> GlobalAlloc for Arena<N> {
    // Out of line: inlined at every allocation site, they made the binary 700 KB larger
    // and spread what a command runs over more pages.
    #[inline(never)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout) {
            Some(p) => p,
            // SAFETY: the caller's contract (a non-zero size) is passed on as is.
            None => unsafe { System.alloc(layout) },
        }
    }

    #[inline(never)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match self.offset(ptr) {
            // The most recent allocation is taken back; any other stays used.
            Some(off) => {
                let _ = self
                    .next
                    .compare_exchange(off + layout.size(), off, Relaxed, Relaxed);
            }
            // SAFETY: not ours, so System's, with the layout it was allocated with.
            None => unsafe { System.dealloc(ptr, layout) },
        }
    }

    #[inline(never)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(off) = self.offset(ptr) else {
            // SAFETY: not ours, so System's; the caller's contract is passed on.
            return unsafe { System.realloc(ptr, layout, new_size) };
        };
        let old_end = off + layout.size();
        if let Some(new_end) = off.checked_add(new_size).filter(|&e| e <= N) {
            // The most recent allocation grows or shrinks in place.
            if self
                .next
                .compare_exchange(old_end, new_end, Relaxed, Relaxed)
                .is_ok()
            {
                return ptr;
            }
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: the caller guarantees new_size, rounded up to the alignment, does not
        // overflow isize, which is what from_size_align_unchecked requires.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: new_size > layout.size() > 0.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both ranges are live allocations of at least layout.size() bytes
            // and do not overlap (the new one was reserved while the old one is held).
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size());
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).unwrap()
    }

    #[test]
    fn small_allocations_come_from_the_arena_aligned_and_disjoint() {
        let a = Box::new(Arena::<8192>::new());
        let mut got = Vec::new();
        for (size, align) in [(1, 1), (3, 2), (24, 8), (100, 16), (7, 64), (1, 1)] {
            let l = layout(size, align);
            // SAFETY: a non-zero size.
            let p = unsafe { a.alloc(l) };
            assert!(a.offset(p).is_some(), "{size}/{align} not from the arena");
            assert_eq!(p as usize % align.max(16), 0, "{size}/{align} misaligned");
            got.push((p as usize, size));
        }
        got.sort();
        for w in got.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "overlap: {:?}", w);
        }
    }

    #[test]
    fn large_allocations_and_a_full_arena_fall_back_to_the_system() {
        let a = Box::new(Arena::<4096>::new());
        let big = layout(SMALL + 1, 8);
        // SAFETY: non-zero sizes; each pointer is freed with its layout.
        unsafe {
            let p = a.alloc(big);
            assert!(a.offset(p).is_none());
            a.dealloc(p, big);
            let fill = layout(4000, 8);
            let p1 = a.alloc(fill);
            assert!(a.offset(p1).is_some());
            let p2 = a.alloc(layout(200, 8));
            assert!(
                a.offset(p2).is_none(),
                "past the end must come from the system"
            );
            p2.write_bytes(7, 200);
            a.dealloc(p2, layout(200, 8));
        }
    }

    #[test]
    fn freeing_the_latest_allocation_takes_it_back_and_others_stay_used() {
        let a = Box::new(Arena::<4096>::new());
        let l = layout(64, 8);
        // SAFETY: non-zero sizes; each pointer is freed once with its layout.
        unsafe {
            let p1 = a.alloc(l);
            let p2 = a.alloc(l);
            assert_eq!(a.used(), 64 + 64);
            a.dealloc(p1, l);
            assert_eq!(a.used(), 128, "an older block is not reused");
            a.dealloc(p2, l);
            assert_eq!(a.used(), 64, "the latest block is taken back");
            let p3 = a.alloc(l);
            assert_eq!(p3, p2);
        }
    }

    #[test]
    fn realloc_grows_the_latest_in_place_and_moves_others_with_their_bytes() {
        let a = Box::new(Arena::<8192>::new());
        // SAFETY: non-zero sizes; pointers are only used within their current sizes.
        unsafe {
            let l = layout(16, 8);
            let p = a.alloc(l);
            for i in 0..16 {
                *p.add(i) = i as u8;
            }
            let q = a.realloc(p, l, 48);
            assert_eq!(q, p, "the latest allocation grows in place");
            assert_eq!(a.used(), 48);
            let other = a.alloc(l);
            let r = a.realloc(q, layout(48, 8), 1000);
            assert_ne!(r, q, "an allocation that is not the latest moves");
            assert!(
                (0..16).all(|i| *r.add(i) == i as u8),
                "its bytes move with it"
            );
            let s = a.realloc(r, layout(1000, 8), 10);
            assert_eq!(s, r, "shrinking stays in place");
            // Growing past SMALL moves it to the system, with its bytes.
            let t = a.realloc(other, l, SMALL * 2);
            assert!(a.offset(t).is_none());
            a.dealloc(t, layout(SMALL * 2, 8));
            a.dealloc(s, layout(10, 8));
        }
    }

    #[test]
    fn threads_get_disjoint_blocks() {
        let a = std::sync::Arc::new(Arena::<{ 1 << 16 }>::new());
        let hands: Vec<_> = (0..4)
            .map(|t| {
                let a = a.clone();
                std::thread::spawn(move || {
                    let l = layout(24, 8);
                    (0..200)
                        .map(|_| {
                            // SAFETY: a non-zero size; the block is ours alone.
                            let p = unsafe { a.alloc(l) };
                            // SAFETY: 24 bytes of our block.
                            unsafe { p.write_bytes(t as u8, 24) };
                            p as usize
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<usize> = hands.into_iter().flat_map(|h| h.join().unwrap()).collect();
        all.sort();
        assert!(all.windows(2).all(|w| w[0] + 24 <= w[1]));
    }
}
