//! A one-value hand-off where only the newest value matters (the quote the
//! hot thread wants working): a single-writer sequence lock over words.
//!
//! Why not the ring: [`super::Producer::push_latest`] is a compare-and-swap
//! on the queue's tail, a cache line the consumer reads at every poll, so
//! each push waits for that line to come back from the consumer's core
//! (a locked instruction also drains the store buffer), and it copies the
//! whole value into a slot. Here the writer only stores: the sequence word
//! goes odd, the value's words are written, the sequence goes even again.
//! On x86-64 those are plain `mov`s (the fences order the compiler only), so
//! the writer does not wait for the consumer's core at all; the lines move
//! later, when the reader asks for them.
//!
//! The protocol is Boehm's seqlock with atomic data words ("Can Seqlocks Get
//! Along With Programming Language Memory Models?", MSPC 2012, section 5):
//! every word is an `AtomicU64` read and written `Relaxed`, so a torn read is
//! a stale value, never undefined behaviour, and there is no `unsafe`. The
//! reader takes a value only when the sequence was even and unchanged
//! around its loads, and tries again (a bounded number of times) otherwise.
//!
//! Values cross as words ([`Packed`]): a type says how it packs into at most
//! [`Packed::WORDS`] words and unpacks from them, refusing words no packing
//! makes (a torn read is caught by the sequence before it is used, but the
//! unpacking must not panic on one). The sequence sits on its own cache
//! line and the words on lines of their own, allocated once.
//!
//! Values published but replaced before the reader saw them are counted by
//! the reader (superseded), as the ring counts displaced values.

use std::sync::atomic::{fence, AtomicU64, Ordering};
use std::sync::Arc;

/// A value that crosses the slot as words.
pub trait Packed: Sized {
    /// The most words a value packs into.
    const WORDS: usize;
    /// Writes the value's words (`words.set(i, w)` for `i < WORDS`).
    fn pack(&self, words: &Words<'_>);
    /// The value the words hold, or `None` for words no value packs into.
    /// Must not panic on any words.
    fn unpack(words: &Words<'_>) -> Option<Self>;
}

/// One cache line of words.
#[repr(align(64))]
#[derive(Default)]
struct Line([AtomicU64; 8]);

/// The slot's words, as [`Packed`] reads and writes them.
pub struct Words<'a> {
    lines: &'a [Line],
}

impl Words<'_> {
    /// Stores word `i`; words beyond the slot are ignored (a packing bug
    /// loses a word rather than panicking the hot thread).
    #[inline(always)]
    pub fn set(&self, i: usize, w: u64) {
        if let Some(line) = self.lines.get(i / 8) {
            line.0[i % 8].store(w, Ordering::Relaxed);
        }
    }

    /// Word `i` (0 beyond the slot).
    #[inline(always)]
    pub fn get(&self, i: usize) -> u64 {
        self.lines.get(i / 8).map_or(0, |line| line.0[i % 8].load(Ordering::Relaxed))
    }
}

/// Runs `f` on words holding `words` (tests of a [`Packed`] type's
/// unpacking on words no packing made).
#[cfg(test)]
pub(crate) fn with_words<R>(words: &[u64], f: impl FnOnce(&Words<'_>) -> R) -> R {
    let lines = lines_for(words.len());
    let w = Words { lines: &lines };
    for (i, &word) in words.iter().enumerate() {
        w.set(i, word);
    }
    f(&w)
}

/// Zeroed lines for `words` words, allocated now.
fn lines_for(words: usize) -> Box<[Line]> {
    (0..words.div_ceil(8)).map(|_| Line::default()).collect()
}

/// The sequence on a line of its own: the line the reader polls.
#[repr(align(64))]
struct Seq(AtomicU64);

struct Shared {
    /// Twice the values published, plus one while a value is being written.
    seq: Seq,
    lines: Box<[Line]>,
}

/// The writing end (one writer: not `Clone`).
pub struct Publisher<T> {
    shared: Arc<Shared>,
    _value: std::marker::PhantomData<fn(T)>,
}

/// The reading end.
pub struct Reader<T> {
    shared: Arc<Shared>,
    /// The even sequence of the last value read (0: none yet).
    seen: u64,
    superseded: u64,
    _value: std::marker::PhantomData<fn() -> T>,
}

/// A slot for `T`, allocated now.
pub fn latest<T: Packed>() -> (Publisher<T>, Reader<T>) {
    let shared = Arc::new(Shared { seq: Seq(AtomicU64::new(0)), lines: lines_for(T::WORDS) });
    (
        Publisher { shared: shared.clone(), _value: std::marker::PhantomData },
        Reader { shared, seen: 0, superseded: 0, _value: std::marker::PhantomData },
    )
}

/// How many times a read starts over while the writer keeps writing before
/// it gives up for this poll (the next poll tries again).
const TRIES: usize = 64;

impl<T: Packed> Publisher<T> {
    /// Makes `v` the slot's value. Stores only: no read-modify-write, no
    /// waiting for the reader.
    #[inline]
    pub fn publish(&self, v: &T) {
        let s = &self.shared;
        // Only this writer stores the sequence, so its own last store is
        // what it loads.
        let seq = s.seq.0.load(Ordering::Relaxed);
        s.seq.0.store(seq.wrapping_add(1), Ordering::Relaxed);
        // The odd sequence is visible before any word changes.
        fence(Ordering::Release);
        v.pack(&Words { lines: &s.lines });
        // The words are visible before the even sequence that vouches for them.
        s.seq.0.store(seq.wrapping_add(2), Ordering::Release);
    }
}

impl<T: Packed> Reader<T> {
    /// The newest value, if one was published since the last call; `None`
    /// also when the writer kept writing through every try.
    #[inline]
    pub fn latest(&mut self) -> Option<T> {
        let s = &self.shared;
        for _ in 0..TRIES {
            let before = s.seq.0.load(Ordering::Acquire);
            if before == self.seen {
                return None;
            }
            if before & 1 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let value = T::unpack(&Words { lines: &s.lines });
            // The words' loads happen before the second look at the sequence.
            fence(Ordering::Acquire);
            if s.seq.0.load(Ordering::Relaxed) != before {
                continue;
            }
            let Some(value) = value else {
                // Words no packing makes under an unchanged sequence: a
                // packing bug. Skip the value rather than retry forever.
                self.seen = before;
                return None;
            };
            self.superseded += (before.wrapping_sub(self.seen) / 2).saturating_sub(1);
            self.seen = before;
            return Some(value);
        }
        None
    }

    /// Values replaced before this reader saw them.
    pub fn superseded(&self) -> u64 {
        self.superseded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A test value: a length and that many words, each `seed + i`, so a
    /// torn read (words from two values) shows.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Run {
        len: usize,
        seed: u64,
    }

    impl Packed for Run {
        const WORDS: usize = 20;
        fn pack(&self, w: &Words<'_>) {
            w.set(0, self.len as u64);
            for i in 0..self.len {
                w.set(1 + i, self.seed + i as u64);
            }
        }
        fn unpack(w: &Words<'_>) -> Option<Self> {
            let len = w.get(0) as usize;
            if len > Self::WORDS - 1 {
                return None;
            }
            let seed = w.get(1);
            if (0..len).any(|i| w.get(1 + i) != seed + i as u64) {
                // Torn: the caller must never see this. Report it as a
                // value no packing makes, with a marker length.
                return Some(Run { len: usize::MAX, seed });
            }
            Some(Run { len, seed: if len == 0 { 0 } else { seed } })
        }
    }

    #[test]
    fn reads_each_value_once_and_counts_the_replaced() {
        let (tx, mut rx) = latest::<Run>();
        assert_eq!(rx.latest(), None);
        tx.publish(&Run { len: 3, seed: 10 });
        assert_eq!(rx.latest(), Some(Run { len: 3, seed: 10 }));
        assert_eq!(rx.latest(), None);
        for seed in 20..25 {
            tx.publish(&Run { len: 2, seed });
        }
        assert_eq!(rx.latest(), Some(Run { len: 2, seed: 24 }));
        assert_eq!(rx.superseded(), 4);
    }

    #[test]
    fn a_shorter_value_after_a_longer_one_reads_whole() {
        let (tx, mut rx) = latest::<Run>();
        tx.publish(&Run { len: 19, seed: 100 });
        tx.publish(&Run { len: 1, seed: 7 });
        assert_eq!(rx.latest(), Some(Run { len: 1, seed: 7 }));
        tx.publish(&Run { len: 0, seed: 0 });
        assert_eq!(rx.latest(), Some(Run { len: 0, seed: 0 }));
    }

    #[test]
    fn no_torn_value_crosses_threads() {
        const VALUES: u64 = 200_000;
        let (tx, mut rx) = latest::<Run>();
        let writer = std::thread::spawn(move || {
            for v in 1..=VALUES {
                tx.publish(&Run { len: 1 + (v % 19) as usize, seed: v * 1000 });
            }
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let (mut last, mut reads) = (0, 0u64);
        while last < VALUES * 1000 && std::time::Instant::now() < deadline {
            if let Some(r) = rx.latest() {
                assert_ne!(r.len, usize::MAX, "torn read: {r:?}");
                assert_eq!(r.len, 1 + (r.seed / 1000 % 19) as usize, "{r:?}");
                assert!(r.seed > last, "went back: {} after {last}", r.seed);
                last = r.seed;
                reads += 1;
            }
        }
        writer.join().unwrap();
        assert_eq!(last, VALUES * 1000, "the last value was read");
        assert_eq!(reads + rx.superseded(), VALUES, "every value read or counted");
    }
}
