//! A small CSV writer (RFC 4180 quoting) and the number formats shared by every CSV output.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use crate::parse::output;

/// A CSV file being written: whole rows ([`Csv::row`]) or cell by cell into a reused line
/// buffer ([`Csv::cell`], [`Csv::cell_raw`], then [`Csv::end`]) without a `String` per cell.
pub struct Csv {
    w: BufWriter<File>,
    line: Vec<u8>,
    cells: usize,
}

/// Append `c` to `out` as one CSV cell (RFC 4180: quoted, with `"` doubled, when it holds `,`,
/// `"`, CR or LF).
pub fn quote_into(out: &mut Vec<u8>, c: &[u8]) {
    if !c.iter().any(|&b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        out.extend_from_slice(c);
        return;
    }
    out.push(b'"');
    let mut rest = c;
    while let Some(i) = rest.iter().position(|&b| b == b'"') {
        out.extend_from_slice(&rest[..=i]);
        out.push(b'"');
        rest = &rest[i + 1..];
    }
    out.extend_from_slice(rest);
    out.push(b'"');
}

impl Csv {
    /// Create `path` (mode 0640) and write the header.
    pub fn create(path: &Path, header: &[&str]) -> std::io::Result<Csv> {
        let mut c = Csv { w: BufWriter::with_capacity(1 << 20, output::create_file(path)?), line: Vec::with_capacity(4096), cells: 0 };
        c.row(header)?;
        Ok(c)
    }

    /// Write one row.
    pub fn row<S: AsRef<str>>(&mut self, cells: &[S]) -> std::io::Result<()> {
        for c in cells {
            self.cell(c.as_ref());
        }
        self.end()
    }

    fn sep(&mut self) {
        if self.cells > 0 {
            self.line.push(b',');
        }
        self.cells += 1;
    }

    /// Add a cell to the current row (quoted when needed).
    pub fn cell(&mut self, c: &str) {
        self.sep();
        quote_into(&mut self.line, c.as_bytes());
    }

    /// Add a cell written straight into the line by `f`; the caller guarantees it needs no quoting
    /// (numbers, datetimes).
    pub fn cell_raw(&mut self, f: impl FnOnce(&mut Vec<u8>)) {
        self.sep();
        f(&mut self.line);
    }

    /// End the current row.
    pub fn end(&mut self) -> std::io::Result<()> {
        self.line.push(b'\n');
        self.cells = 0;
        let r = self.w.write_all(&self.line);
        self.line.clear();
        r
    }

    /// Flush and close.
    pub fn finish(mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}

/// A number: integers without a fraction, others in the shortest exact form.
pub fn num(x: f64) -> String {
    let mut v = Vec::new();
    num_into(&mut v, x);
    String::from_utf8(v).unwrap_or_default()
}

/// [`num`], appended to `out`.
pub fn num_into(out: &mut Vec<u8>, x: f64) {
    if x.is_finite() && x.fract() == 0.0 && x.abs() < 1e15 {
        let _ = write!(out, "{}", x as i64);
    } else {
        let _ = write!(out, "{x}");
    }
}

/// [`float`], appended to `out`.
pub fn float_into(out: &mut Vec<u8>, x: f64) {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        let _ = write!(out, "{x:.1}");
    } else {
        let _ = write!(out, "{x}");
    }
}

/// [`ms3`], appended to `out`.
pub fn ms3_into(out: &mut Vec<u8>, ns: i64) {
    let _ = write!(out, "{:.3}", ns as f64 / 1e6);
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
