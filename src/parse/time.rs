//! Wall-clock rendering: epoch ns → `YYYY-MM-DD HH:MM:SS:ffffff+HH:MM` (the reference's format,
//! colon before the microseconds, so profiler.db views can slice it by position; the zone suffix
//! is ours: every datetime says its UTC offset).

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Format epoch `ns` shifted by `offset_s` seconds as `YYYY-MM-DD HH:MM:SS:ffffff±HH:MM`.
pub fn datetime(ns: i64, offset_s: i32) -> String {
    let mut v = Vec::with_capacity(32);
    datetime_into(&mut v, ns, offset_s);
    String::from_utf8(v).unwrap_or_default()
}

/// [`datetime`], appended to `out` (digits written directly: an i64 of epoch ns spans the years
/// 1677–2262, always four digits).
pub fn datetime_into(out: &mut Vec<u8>, ns: i64, offset_s: i32) {
    let local = ns + offset_s as i64 * 1_000_000_000;
    let secs = local.div_euclid(1_000_000_000);
    let us = local.rem_euclid(1_000_000_000) / 1000;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let sign = if offset_s < 0 { b'-' } else { b'+' };
    let off = offset_s.unsigned_abs() as i64;
    let mut b = [0u8; 32];
    let mut put = |at: usize, width: usize, mut v: i64| {
        for i in (0..width).rev() {
            b[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y);
    put(5, 2, mo as i64);
    put(8, 2, d as i64);
    put(11, 2, sod / 3600);
    put(14, 2, sod / 60 % 60);
    put(17, 2, sod % 60);
    put(20, 6, us);
    put(27, 2, off / 3600);
    put(30, 2, off / 60 % 60);
    for (i, c) in [(4, b'-'), (7, b'-'), (10, b' '), (13, b':'), (16, b':'), (19, b':'), (26, sign), (29, b':')] {
        b[i] = c;
    }
    out.extend_from_slice(&b);
}

/// [`datetime`] appended to a byte buffer, with the text of the last second cached (rows come in
/// time order, so most rows only render their microseconds).
#[derive(Default)]
pub struct DateFmt {
    key: Option<(i64, i32)>,
    head: String,
    tail: String,
}

impl DateFmt {
    /// Append the datetime of epoch `ns` at `offset_s` to `out`.
    pub fn write(&mut self, out: &mut Vec<u8>, ns: i64, offset_s: i32) {
        let local = ns + offset_s as i64 * 1_000_000_000;
        let secs = local.div_euclid(1_000_000_000);
        let us = (local.rem_euclid(1_000_000_000) / 1000) as u32;
        if self.key != Some((secs, offset_s)) {
            let full = datetime(ns, offset_s);
            // `YYYY-MM-DD HH:MM:SS:` (+ 6 µs digits) + `±HH:MM`; the year may be wider than 4.
            let n = full.len();
            self.head = full[..n - 12].to_string();
            self.tail = full[n - 6..].to_string();
            self.key = Some((secs, offset_s));
        }
        out.extend_from_slice(self.head.as_bytes());
        let mut d = [b'0'; 6];
        let mut v = us;
        for i in (0..6).rev() {
            d[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        out.extend_from_slice(&d);
        out.extend_from_slice(self.tail.as_bytes());
    }
}

/// Parse a `--timezone` value: `UTC`, `Z`, `+HH:MM`, `-HH:MM`, `+HHMM` or `+HH` → seconds east.
pub fn parse_offset(s: &str) -> Option<i32> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("utc") || s == "Z" {
        return Some(0);
    }
    let s = s.strip_prefix("UTC").unwrap_or(s);
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) || digits.is_empty() || digits.len() > 4 {
        return None;
    }
    let (h, m) =
        if digits.len() <= 2 { (digits.parse::<i32>().ok()?, 0) } else { (digits[..digits.len() - 2].parse().ok()?, digits[digits.len() - 2..].parse().ok()?) };
    (h <= 14 && m < 60).then_some(sign * (h * 3600 + m * 60))
}

/// Epoch ns → µs with three decimals (ns precision), as the trace's `ts`/`dur` text.
pub fn us_text(ns: i64) -> String {
    let mut v = Vec::with_capacity(24);
    us_text_into(&mut v, ns);
    String::from_utf8(v).expect("digits")
}

/// [`us_text`], appended to `out`.
pub fn us_text_into(out: &mut Vec<u8>, ns: i64) {
    if ns < 0 {
        out.push(b'-');
    }
    let a = ns.unsigned_abs();
    out.extend_from_slice(itoa::Buffer::new().format(a / 1000).as_bytes());
    let f = (a % 1000) as u16;
    out.extend_from_slice(&[b'.', b'0' + (f / 100) as u8, b'0' + (f / 10 % 10) as u8, b'0' + (f % 10) as u8]);
}

/// ns → ms as a float.
pub fn ms(ns: i64) -> f64 {
    ns as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(datetime(0, 0), "1970-01-01 00:00:00:000000+00:00");
        assert_eq!(datetime(1_700_000_000_123_456_789, 8 * 3600), "2023-11-15 06:13:20:123456+08:00");
        assert_eq!(datetime(1_700_000_000_000_000_000, -(5 * 3600 + 1800)), "2023-11-14 16:43:20:000000-05:30");
        assert_eq!(parse_offset("+08:00"), Some(28800));
        assert_eq!(parse_offset("UTC"), Some(0));
        assert_eq!(parse_offset("-0530"), Some(-19800));
        assert_eq!(parse_offset("x"), None);
        assert_eq!(us_text(1_234_567), "1234.567");
        assert_eq!(us_text(-1_234_005), "-1234.005");
        assert_eq!(us_text(7), "0.007");
        let mut f = DateFmt::default();
        for (ns, off) in [(1_700_000_000_123_456_789, 8 * 3600), (1_700_000_000_987_654_321, 8 * 3600), (-1_500, 0), (1_700_000_001_000_000_000, -19800)] {
            let mut v = Vec::new();
            f.write(&mut v, ns, off);
            assert_eq!(String::from_utf8(v).unwrap(), datetime(ns, off));
        }
    }
}
