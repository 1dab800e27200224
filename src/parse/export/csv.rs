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
        out.extend_from_slice(itoa::Buffer::new().format(x as i64).as_bytes());
    } else {
        let _ = write!(out, "{x}");
    }
}

/// [`float`], appended to `out`.
pub fn float_into(out: &mut Vec<u8>, x: f64) {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        if x == 0.0 && x.is_sign_negative() {
            out.extend_from_slice(b"-0.0");
            return;
        }
        out.extend_from_slice(itoa::Buffer::new().format(x as i64).as_bytes());
        out.extend_from_slice(b".0");
    } else {
        let _ = write!(out, "{x}");
    }
}

/// [`ms3`], appended to `out`: the exact decimal value of `ns as f64 / 1e6` rounded half to even
/// at 3 decimals (what `format!("{:.3}")` prints), with integer arithmetic only.
pub fn ms3_into(out: &mut Vec<u8>, ns: i64) {
    let d = ns as f64 / 1e6;
    let bits = d.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1u64 << 52) - 1);
    let (mant, e) = if exp == 0 { (frac, -1074) } else { (frac | 1 << 52, exp - 1075) };
    // d·1000 = mant·1000·2^e; rounded half to even.
    let n: u128 = mant as u128 * 1000;
    let k: u128 = if e >= 0 {
        n << e
    } else if e <= -127 {
        0
    } else {
        let s = (-e) as u32;
        let q = n >> s;
        let r = n & ((1u128 << s) - 1);
        let half = 1u128 << (s - 1);
        if r > half || (r == half && q & 1 == 1) {
            q + 1
        } else {
            q
        }
    };
    if d.is_sign_negative() {
        out.push(b'-');
    }
    let k = k as u64;
    out.extend_from_slice(itoa::Buffer::new().format(k / 1000).as_bytes());
    let f = (k % 1000) as u16;
    out.extend_from_slice(&[b'.', b'0' + (f / 100) as u8, b'0' + (f / 10 % 10) as u8, b'0' + (f % 10) as u8]);
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
    let mut v = Vec::with_capacity(24);
    ms3_into(&mut v, ns);
    String::from_utf8(v).expect("digits")
}

/// ns → ms with 2 decimals.
pub fn ms2(ns: i64) -> String {
    format!("{:.2}", ns as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_formats_match_std() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut ns_cases: Vec<i64> =
            vec![0, 1, -1, 499, 500, 501, 1500, 2500, -2500, 62_500, 187_500, 1_795_861_599_739_758_123, i64::MAX, i64::MIN, -1_000_000];
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let shift = x % 64;
            ns_cases.push((x >> shift) as i64);
            ns_cases.push(-((x >> (shift + 1).min(63)) as i64));
        }
        // Exact binary ties at 3 decimals (k + 0.5)/1000 = (2k+1)/2000: multiples of 1/16 µs.
        for k in 0..5000i64 {
            ns_cases.push(k * 62_500);
        }
        let mut o = Vec::new();
        for ns in ns_cases {
            o.clear();
            ms3_into(&mut o, ns);
            assert_eq!(std::str::from_utf8(&o).unwrap(), format!("{:.3}", ns as f64 / 1e6), "ns {ns}");
        }
        for v in [0.0, -0.0, 1.0, -3.0, 4.5, 1e14, 1e15, 1e16, f64::NAN, f64::INFINITY, -7.25, 123456789.0] {
            o.clear();
            num_into(&mut o, v);
            let want = if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 { format!("{}", v as i64) } else { format!("{v}") };
            assert_eq!(std::str::from_utf8(&o).unwrap(), want);
            o.clear();
            float_into(&mut o, v);
            let want = if v.fract() == 0.0 && v.abs() < 1e15 { format!("{v:.1}") } else { format!("{v}") };
            assert_eq!(std::str::from_utf8(&o).unwrap(), want, "{v}");
        }
    }
}
