//! [`Ns`]: an `i64` (a time in epoch ns, most often) stored so that `Option<Ns>` takes 8 bytes
//! instead of the 16 of `Option<i64>`; a request accumulator holds a dozen such optional times.

use std::num::NonZeroI64;

/// An `i64` other than `i64::MIN` (that one value, which no timestamp takes, is the niche that
/// makes `Option<Ns>` 8 bytes; [`Ns::new`] stores it as `i64::MIN + 1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ns(NonZeroI64);

impl Ns {
    /// Store `v`.
    pub fn new(v: i64) -> Ns {
        let x = v.max(i64::MIN + 1) ^ i64::MIN;
        Ns(NonZeroI64::new(x).unwrap_or(NonZeroI64::MIN))
    }

    /// The value.
    pub fn get(self) -> i64 {
        self.0.get() ^ i64::MIN
    }
}

/// `o`'s value.
pub fn get(o: Option<Ns>) -> Option<i64> {
    o.map(Ns::get)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_size() {
        assert_eq!(std::mem::size_of::<Option<Ns>>(), 8);
        for v in [0, 1, -1, 42, i64::MAX, i64::MIN + 1, 1_764_000_000_123_456_789] {
            assert_eq!(Ns::new(v).get(), v);
        }
        assert_eq!(Ns::new(i64::MIN).get(), i64::MIN + 1);
    }
}
