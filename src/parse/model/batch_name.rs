//! A batch-row name stored in one byte: an index into [`ALL`] (the schedule names, then the
//! execute names) instead of a 16-byte `&'static str`.

use super::batch::{EXEC_NAMES, SCHEDULE_NAMES};

/// Every batch-row name, schedule names first.
const ALL: [&str; 7] = [SCHEDULE_NAMES[0], SCHEDULE_NAMES[1], SCHEDULE_NAMES[2], EXEC_NAMES[0], EXEC_NAMES[1], EXEC_NAMES[2], EXEC_NAMES[3]];

/// A batch-row name (one of [`SCHEDULE_NAMES`] and [`EXEC_NAMES`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchName(u8);

impl BatchName {
    /// The name equal to `name`, if it is a batch-row name.
    pub fn of(name: &str) -> Option<BatchName> {
        ALL.iter().position(|n| *n == name).map(|i| BatchName(i as u8))
    }

    /// The name as text.
    pub fn as_str(self) -> &'static str {
        ALL[self.0 as usize]
    }

    /// Whether it is one of [`EXEC_NAMES`].
    pub fn is_exec(self) -> bool {
        self.0 as usize >= SCHEDULE_NAMES.len()
    }
}

impl PartialEq<&str> for BatchName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for n in SCHEDULE_NAMES.iter().chain(&EXEC_NAMES) {
            let b = BatchName::of(n).unwrap();
            assert_eq!(b.as_str(), *n);
            assert_eq!(b.is_exec(), EXEC_NAMES.contains(n));
            assert!(b == *n);
        }
        assert_eq!(BatchName::of("forward"), None);
    }
}
