//! Shared copies of the few distinct short strings that many rows carry (span, KV-record and
//! queue names): a row holds an `Arc<str>` to one copy instead of a heap string of its own.

use std::sync::Arc;

use rustc_hash::FxHashSet;

/// The distinct names seen by one reader.
#[derive(Default)]
pub struct Names(FxHashSet<Arc<str>>);

impl Names {
    /// The shared copy of `s`.
    pub fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.0.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.0.insert(a.clone());
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_copy_per_name() {
        let mut n = Names::default();
        let (a, b, c) = (n.get("WAITING"), n.get("WAITING"), n.get("RUNNING"));
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!((&*a, &*c), ("WAITING", "RUNNING"));
    }
}
