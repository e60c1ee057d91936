//! Rows the server may remember between requests because the database does
//! not change them once written: sessions (token hash → account, device,
//! expiry) and accounts' identity keys. Anything that can change (roles,
//! heads, the log, bundles) is always read from the database, so a second
//! server instance on the same database never sees stale state. Each row is
//! remembered for at most [`MEMO_TTL`], so a future revocation (ending a
//! device's sessions) reaches every instance within that time.
//!
//! Must never: remember a row that can be updated in place, keep a row
//! longer than [`MEMO_TTL`], or grow without bound (it forgets everything
//! when full).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The longest a row is remembered.
pub const MEMO_TTL: Duration = Duration::from_secs(5);

/// How many rows of one kind are kept before the memo starts over.
pub const MEMO_ROWS: usize = 65_536;

/// A bounded map of immutable rows.
pub struct Memo<K, V> {
    rows: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash, V: Clone> Default for Memo<K, V> {
    fn default() -> Self {
        Memo {
            rows: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Memo<K, V> {
    pub fn get(&self, k: &K) -> Option<V> {
        let rows = self.rows.lock().ok()?;
        let (v, at) = rows.get(k)?;
        (at.elapsed() < MEMO_TTL).then(|| v.clone())
    }

    pub fn put(&self, k: K, v: V) {
        if let Ok(mut rows) = self.rows.lock() {
            if rows.len() >= MEMO_ROWS {
                rows.clear();
            }
            rows.insert(k, (v, Instant::now()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forgets_everything_when_full_and_never_grows_past_the_bound() {
        let m = Memo::<usize, usize>::default();
        for i in 0..MEMO_ROWS {
            m.put(i, i);
        }
        assert_eq!(m.get(&7), Some(7));
        m.put(MEMO_ROWS, 1);
        assert_eq!(m.get(&7), None);
        assert_eq!(m.get(&MEMO_ROWS), Some(1));
        assert_eq!(m.rows.lock().unwrap().len(), 1);
    }
}
