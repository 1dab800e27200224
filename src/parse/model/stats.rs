//! Summary statistics: mean, max, min and linear-interpolated percentiles (numpy's default).

/// Average, Max, Min, P50, P90, P99 of the finite values of `v` (all 0 when there are none).
/// Sorts `v` in place: unstably (no buffer) unless it holds a −0, since equal finite values
/// are otherwise the same bits and the result is the stable sort's.
pub fn summary(mut s: Vec<f64>) -> [f64; 6] {
    s.retain(|x| x.is_finite());
    if s.is_empty() {
        return [0.0; 6];
    }
    if s.iter().any(|x| x.to_bits() == (-0.0f64).to_bits()) {
        s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    } else {
        s.sort_unstable_by(|a, b| a.partial_cmp(b).unwrap());
    }
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
        assert_eq!(super::summary(s.to_vec()), [2.5, 4.0, 1.0, 2.5, 3.7, 3.9699999999999998]);
        // ±0 keep their order (the Min column shows the sign).
        assert_eq!(super::summary(vec![0.0, -0.0, 1.0])[2].to_bits(), 0.0f64.to_bits());
        assert_eq!(super::summary(vec![-0.0, 0.0, 1.0])[2].to_bits(), (-0.0f64).to_bits());
    }
}
