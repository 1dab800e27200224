//! Summary statistics: mean, max, min and linear-interpolated percentiles (numpy's default).

/// Average, Max, Min, P50, P90, P99 of `v` (all 0 when empty).
pub fn summary(v: &[f64]) -> [f64; 6] {
    if v.is_empty() {
        return [0.0; 6];
    }
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return [0.0; 6];
    }
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let mean = s.iter().sum::<f64>() / s.len() as f64;
    [mean, s[s.len() - 1], s[0], percentile(&s, 0.5), percentile(&s, 0.9), percentile(&s, 0.99)]
}

/// Percentile `q` (0–1) of sorted `s`, linear interpolation.
pub fn percentile(s: &[f64], q: f64) -> f64 {
    if s.is_empty() {
        return 0.0;
    }
    let pos = (s.len() - 1) as f64 * q;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    s[lo] + (s[hi] - s[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn pct() {
        let s = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(super::percentile(&s, 0.5), 2.5);
        assert_eq!(super::summary(&s), [2.5, 4.0, 1.0, 2.5, 3.7, 3.9699999999999998]);
    }
}
