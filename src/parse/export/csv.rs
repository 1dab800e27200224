//! A small CSV writer (RFC 4180 quoting) and the number formats shared by every CSV output.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::parse::output;

/// A CSV file being written.
pub struct Csv {
    w: BufWriter<File>,
}

impl Csv {
    /// Create `path` (mode 0640) and write the header.
    pub fn create(path: &Path, header: &[&str]) -> std::io::Result<Csv> {
        let mut c = Csv { w: BufWriter::with_capacity(1 << 18, output::create_file(path)?) };
        c.row(header)?;
        Ok(c)
    }

    /// Write one row.
    pub fn row<S: AsRef<str>>(&mut self, cells: &[S]) -> std::io::Result<()> {
        for (i, c) in cells.iter().enumerate() {
            if i > 0 {
                self.w.write_all(b",")?;
            }
            let c = c.as_ref();
            if c.contains([',', '"', '\n', '\r']) {
                self.w.write_all(b"\"")?;
                for (i, part) in c.split('"').enumerate() {
                    if i > 0 {
                        self.w.write_all(b"\"\"")?;
                    }
                    self.w.write_all(part.as_bytes())?;
                }
                self.w.write_all(b"\"")?;
            } else {
                self.w.write_all(c.as_bytes())?;
            }
        }
        self.w.write_all(b"\n")
    }

    /// Flush and close.
    pub fn finish(mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}

/// A number: integers without a fraction, others in the shortest exact form.
pub fn num(x: f64) -> String {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// An optional number (empty cell when absent).
pub fn opt(x: Option<f64>) -> String {
    x.map(num).unwrap_or_default()
}

/// A float that keeps a fraction (`4.0`), as the reference prints float columns.
pub fn float(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

/// ns → ms with 3 decimals (µs precision).
pub fn ms3(ns: i64) -> String {
    format!("{:.3}", ns as f64 / 1e6)
}

/// ns → ms with 2 decimals.
pub fn ms2(ns: i64) -> String {
    format!("{:.2}", ns as f64 / 1e6)
}
