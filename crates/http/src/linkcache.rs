//! The URLs of the tracked-link codes this process registered or resolved, so that `/c/`
//! can still redirect while the store is down (the click then goes to the click spool,
//! [`crate::spool`]).
//!
//! It remembers the last [`LINK_CACHE_ENTRIES`] codes, the oldest forgotten first. Its
//! memory for codes is taken once, when it is made, and never grows:
//!
//! - a ring of that many slots, each a code of up to [`CODE_BYTES`] bytes kept in place
//!   and its URL: 32 bytes a slot, 3.05 MiB;
//! - an index of ring slots by the code's hash, at least twice as long (open addressing,
//!   linear probing): 262 144 positions of 4 bytes, 1 MiB.
//!
//! A URL is one allocation however many codes lead to it (a campaign's link has one URL
//! and a code per message), dropped with the last code that leads to it. A longer code
//! is not remembered (ours have [`crate::links::CODE_LEN`] characters).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};

/// The most codes whose URL a process remembers for redirecting while the store is down.
pub const LINK_CACHE_ENTRIES: usize = 100_000;
/// The longest code remembered, in bytes.
pub const CODE_BYTES: usize = 16;

/// An index position that holds no ring slot.
const NONE: u32 = u32::MAX;

/// A code padded with zero bytes (a code has none of its own: it is base62).
type Code = [u8; CODE_BYTES];

fn packed(code: &str) -> Option<Code> {
    let b = code.as_bytes();
    if b.is_empty() || b.len() > CODE_BYTES || b.contains(&0) {
        return None;
    }
    let mut k = [0; CODE_BYTES];
    k[..b.len()].copy_from_slice(b);
    Some(k)
}

/// See the module documentation.
#[derive(Debug)]
pub struct LinkCache {
    inner: Mutex<Table>,
}

impl Default for LinkCache {
    fn default() -> LinkCache {
        LinkCache::with_capacity(LINK_CACHE_ENTRIES)
    }
}

#[derive(Debug)]
struct Slot {
    code: Code,
    /// `None` while the slot has never been used.
    url: Option<Arc<str>>,
}

#[derive(Debug)]
struct Table {
    /// The codes in the order they came; `next` is the slot the next code takes, which
    /// holds the oldest code once the ring is full.
    ring: Box<[Slot]>,
    next: usize,
    /// Ring slot numbers, by the hash of their code; a power of two long, at least twice
    /// the ring, so a probe soon meets a [`NONE`].
    index: Box<[u32]>,
    /// Every URL some slot holds, once, with the number of slots that hold it.
    urls: HashMap<Arc<str>, usize>,
    hasher: RandomState,
}

impl LinkCache {
    /// A cache of `entries` codes (at least one), its memory taken now.
    pub fn with_capacity(entries: usize) -> LinkCache {
        let entries = entries.clamp(1, NONE as usize / 2);
        let ring = (0..entries)
            .map(|_| Slot {
                code: [0; CODE_BYTES],
                url: None,
            })
            .collect();
        LinkCache {
            inner: Mutex::new(Table {
                ring,
                next: 0,
                index: vec![NONE; (2 * entries).next_power_of_two()].into_boxed_slice(),
                urls: HashMap::new(),
                hasher: RandomState::new(),
            }),
        }
    }

    /// Remembers that `code` leads to `url`; a code already remembered keeps its place.
    pub fn put(&self, code: &str, url: &str) {
        let Some(code) = packed(code) else {
            return;
        };
        let mut t = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if t.find(&code).is_none() {
            t.insert(code, url);
        }
    }

    /// The URL `code` leads to, if it is remembered.
    pub fn get(&self, code: &str) -> Option<Arc<str>> {
        let code = packed(code)?;
        let t = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let at = t.find(&code)?;
        t.ring[t.index[at] as usize].url.clone()
    }
}

impl Table {
    fn home(&self, code: &Code) -> usize {
        // The index's length is a power of two: the mask keeps the hash's low bits.
        (self.hasher.hash_one(code) as usize) & (self.index.len() - 1)
    }

    /// The index position of `code`, if it is there.
    fn find(&self, code: &Code) -> Option<usize> {
        let mask = self.index.len() - 1;
        let mut at = self.home(code);
        loop {
            let slot = self.index[at];
            if slot == NONE {
                return None;
            }
            if self.ring[slot as usize].code == *code {
                return Some(at);
            }
            at = (at + 1) & mask;
        }
    }

    /// Puts `code`, not there yet, in the next slot, forgetting the code that held it.
    fn insert(&mut self, code: Code, url: &str) {
        let slot = self.next;
        self.next = (slot + 1) % self.ring.len();
        if self.ring[slot].url.is_some() {
            let old = self.ring[slot].code;
            if let Some(at) = self.find(&old) {
                self.remove_at(at);
            }
            let url = self.ring[slot].url.take();
            self.release(url);
        }
        let url = match self.urls.get_key_value(url) {
            Some((u, _)) => u.clone(),
            None => Arc::from(url),
        };
        *self.urls.entry(url.clone()).or_insert(0) += 1;
        self.ring[slot] = Slot {
            code,
            url: Some(url),
        };
        let mask = self.index.len() - 1;
        let mut at = self.home(&code);
        while self.index[at] != NONE {
            at = (at + 1) & mask;
        }
        self.index[at] = slot as u32;
    }

    /// Drops a slot's URL, and the URL itself when no other slot holds it (a caller may
    /// still hold it for a redirect: that copy goes with the caller).
    fn release(&mut self, url: Option<Arc<str>>) {
        let Some(u) = url else {
            return;
        };
        if let Some(n) = self.urls.get_mut(&*u) {
            *n -= 1;
            if *n == 0 {
                self.urls.remove(&*u);
            }
        }
    }

    /// Empties index position `hole`, moving back each later entry of its run that may
    /// move (one whose home is not between the hole and where it sits, cyclically), so
    /// every entry stays reachable from its home without a gap.
    fn remove_at(&mut self, mut hole: usize) {
        let mask = self.index.len() - 1;
        let mut at = hole;
        loop {
            at = (at + 1) & mask;
            let slot = self.index[at];
            if slot == NONE {
                break;
            }
            let home = self.home(&self.ring[slot as usize].code);
            let stays = if hole <= at {
                hole < home && home <= at
            } else {
                hole < home || home <= at
            };
            if !stays {
                self.index[hole] = slot;
                hole = at;
            }
        }
        self.index[hole] = NONE;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    #[test]
    fn the_cache_is_bounded_and_forgets_the_oldest() {
        let c = LinkCache::default();
        for i in 0..LINK_CACHE_ENTRIES + 2 {
            c.put(&format!("code{i}"), "https://x.example/");
        }
        assert!(c.get("code0").is_none());
        assert!(c.get("code1").is_none());
        assert!(c.get("code2").is_some());
        let last = format!("code{}", LINK_CACHE_ENTRIES + 1);
        assert_eq!(c.get(&last).as_deref(), Some("https://x.example/"));
        let t = c.inner.lock().unwrap();
        assert_eq!(
            t.index.iter().filter(|s| **s != NONE).count(),
            LINK_CACHE_ENTRIES
        );
        assert_eq!(t.urls.len(), 1);
    }

    /// A small xorshift: the same sequence every run.
    fn rng(seed: &mut u64) -> u64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        *seed
    }

    #[test]
    fn it_answers_as_a_first_in_first_out_list_would() {
        // A ring of 7 slots and an index of 16 positions: runs wrap past the index's end,
        // and every removal moves entries back.
        for seed in 1..40u64 {
            let mut seed = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let c = LinkCache::with_capacity(7);
            let mut model: VecDeque<(String, String)> = VecDeque::new();
            for _ in 0..2_000 {
                let code = format!("c{}", rng(&mut seed) % 24);
                if rng(&mut seed).is_multiple_of(3) {
                    let url = format!("https://x.example/{}", rng(&mut seed) % 4);
                    c.put(&code, &url);
                    if !model.iter().any(|(k, _)| *k == code) {
                        if model.len() == 7 {
                            model.pop_front();
                        }
                        model.push_back((code, url));
                    }
                } else {
                    let want = model
                        .iter()
                        .find(|(k, _)| *k == code)
                        .map(|(_, u)| u.as_str());
                    assert_eq!(c.get(&code).as_deref(), want, "{code}");
                }
            }
            let t = c.inner.lock().unwrap();
            let held: std::collections::HashSet<&str> =
                model.iter().map(|(_, u)| u.as_str()).collect();
            assert_eq!(
                t.urls.len(),
                held.len(),
                "URLs no code leads to are dropped"
            );
        }
    }

    #[test]
    fn a_slot_takes_the_32_bytes_the_module_documentation_counts() {
        assert_eq!(std::mem::size_of::<Slot>(), 32);
        let c = LinkCache::default();
        assert_eq!(c.inner.lock().unwrap().index.len(), 262_144);
    }

    #[test]
    fn codes_that_lead_to_one_url_share_it() {
        let c = LinkCache::with_capacity(4);
        c.put("aaaaaaaa", "https://x.example/a");
        c.put("bbbbbbbb", "https://x.example/a");
        let (a, b) = (c.get("aaaaaaaa").unwrap(), c.get("bbbbbbbb").unwrap());
        assert!(Arc::ptr_eq(&a, &b));
        // A code already there keeps its URL and its place.
        c.put("aaaaaaaa", "https://x.example/other");
        assert_eq!(c.get("aaaaaaaa").as_deref(), Some("https://x.example/a"));
        // Once no code leads to it, the URL is dropped, even while a caller still holds
        // it for a redirect.
        for code in ["cccccccc", "dddddddd", "eeeeeeee", "ffffffff"] {
            c.put(code, "https://x.example/b");
        }
        assert!(c.get("aaaaaaaa").is_none() && c.get("bbbbbbbb").is_none());
        let t = c.inner.lock().unwrap();
        assert_eq!(t.urls.len(), 1);
        assert!(!t.urls.contains_key("https://x.example/a"));
        drop((a, b));
    }

    #[test]
    fn codes_too_long_or_empty_are_not_remembered() {
        let c = LinkCache::with_capacity(4);
        let long = "a".repeat(CODE_BYTES + 1);
        c.put(&long, "https://x.example/");
        c.put("", "https://x.example/");
        assert!(c.get(&long).is_none());
        assert!(c.get("").is_none());
        let longest = "b".repeat(CODE_BYTES);
        c.put(&longest, "https://x.example/");
        assert!(c.get(&longest).is_some());
        // Padding does not make a code equal to a longer one it is a prefix of.
        assert!(c.get(&"b".repeat(CODE_BYTES - 1)).is_none());
    }
}
