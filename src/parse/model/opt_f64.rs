//! [`OptF64`]: an optional `f64` in 8 bytes (`Option<f64>` takes 16). KV and forward rows hold
//! several optional numbers each, and there is one such row per scheduler step.

/// The bit pattern that stands for "absent": a NaN with a payload no arithmetic produces
/// ([`OptF64::new`] stores every NaN as the canonical quiet NaN instead).
const NONE: u64 = 0x7ff4_dead_beef_0001;

/// An optional `f64`; [`OptF64::get`] gives the `Option<f64>` back (NaN values come back as
/// the canonical NaN).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct OptF64(u64);

impl OptF64 {
    /// Absent.
    pub const NONE: OptF64 = OptF64(NONE);

    /// Store `v`.
    pub fn new(v: Option<f64>) -> OptF64 {
        match v {
            None => OptF64(NONE),
            Some(x) if x.is_nan() => OptF64(f64::NAN.to_bits()),
            Some(x) => OptF64(x.to_bits()),
        }
    }

    /// The value.
    pub fn get(self) -> Option<f64> {
        (self.0 != NONE).then(|| f64::from_bits(self.0))
    }

    /// Whether the value is absent.
    pub fn is_none(self) -> bool {
        self.0 == NONE
    }
}

impl Default for OptF64 {
    fn default() -> OptF64 {
        OptF64::NONE
    }
}

impl From<Option<f64>> for OptF64 {
    fn from(v: Option<f64>) -> OptF64 {
        OptF64::new(v)
    }
}

impl std::fmt::Debug for OptF64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_size() {
        assert_eq!(std::mem::size_of::<OptF64>(), 8);
        for v in [0.0, -0.0, 1.5, -3.25e300, f64::INFINITY, f64::NEG_INFINITY, f64::MIN_POSITIVE, 5e-324] {
            assert_eq!(OptF64::new(Some(v)).get().map(f64::to_bits), Some(v.to_bits()));
        }
        assert_eq!(OptF64::new(None).get(), None);
        assert_eq!(OptF64::default().get(), None);
        // Every NaN, including one with the absent pattern's bits, is a present NaN.
        for nan in [f64::NAN, f64::from_bits(NONE), f64::from_bits(0xfff8_0000_0000_0000)] {
            assert!(OptF64::new(Some(nan)).get().is_some_and(f64::is_nan));
        }
    }
}
