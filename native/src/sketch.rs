//! The Bloom filter of evicted engagers (scoring/sketch.py): 1,024 bits, 4 positions cut
//! from one 8-byte blake2b digest, so both cores set the same bits.

use blake2::digest::{Update, VariableOutput};
use blake2::Blake2bVar;

const HASHES: u32 = 4;
const INDEX_BITS: u32 = 10;
const MASK: u64 = 1023;

/// Empty for almost every user, so its 128 bytes are allocated on the first eviction only.
#[derive(Clone, Debug, Default)]
pub struct Bloom(Option<Box<[u64; 16]>>);

fn positions(user: &str) -> [u64; HASHES as usize] {
    let mut hasher = Blake2bVar::new(8).expect("8 is a valid blake2b size");
    hasher.update(user.as_bytes());
    let mut out = [0u8; 8];
    hasher.finalize_variable(&mut out).expect("8-byte output");
    let digest = u64::from_le_bytes(out);
    let mut pos = [0; HASHES as usize];
    for (i, p) in pos.iter_mut().enumerate() {
        *p = (digest >> (i as u32 * INDEX_BITS)) & MASK;
    }
    pos
}

impl Bloom {
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub fn add(&mut self, user: &str) {
        let words = self.0.get_or_insert_with(|| Box::new([0; 16]));
        for p in positions(user) {
            words[(p / 64) as usize] |= 1 << (p % 64);
        }
    }

    pub fn might_contain(&self, user: &str) -> bool {
        let Some(words) = &self.0 else { return false };
        positions(user)
            .iter()
            .all(|p| words[(p / 64) as usize] & (1 << (p % 64)) != 0)
    }

    /// Python's `int(text, 16)` of a stored row (the inverse of `hex`); None if it is not
    /// hex digits or needs more than the filter's 1,024 bits.
    pub fn from_hex(text: &str) -> Option<Bloom> {
        let digits = text.trim_start_matches('0');
        if text.is_empty() || digits.len() > 256 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        if digits.is_empty() {
            return Some(Bloom(None));
        }
        let mut words = [0u64; 16];
        let bytes = digits.as_bytes();
        for (i, word) in words.iter_mut().enumerate() {
            let end = bytes.len().saturating_sub(16 * i);
            if end == 0 {
                break;
            }
            let start = end.saturating_sub(16);
            let chunk = std::str::from_utf8(&bytes[start..end]).ok()?;
            *word = u64::from_str_radix(chunk, 16).ok()?;
        }
        Some(Bloom(Some(Box::new(words))))
    }

    /// Python's `format(bits, "x")`.
    pub fn hex(&self) -> String {
        let mut s = String::new();
        let words = self.0.as_deref().copied().unwrap_or([0; 16]);
        for w in words.iter().rev() {
            if s.is_empty() {
                if *w != 0 {
                    s = format!("{w:x}");
                }
            } else {
                s.push_str(&format!("{w:016x}"));
            }
        }
        if s.is_empty() {
            s.push('0');
        }
        s
    }
}
