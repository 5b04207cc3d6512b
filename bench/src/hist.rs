//! Log-linear latency histogram in nanoseconds (16 sub-buckets per power
//! of two, so a reported percentile is within 1/16 of the true value).

#[derive(Clone)]
pub struct Histogram {
    counts: Vec<u64>,
}

impl Histogram {
    pub fn new() -> Histogram {
        Histogram {
            counts: vec![0; 64 * 16],
        }
    }

    fn bucket(ns: u64) -> usize {
        if ns < 16 {
            return ns as usize;
        }
        let exp = 63 - ns.leading_zeros() as usize;
        let mantissa = ((ns >> (exp - 4)) & 15) as usize;
        exp * 16 + mantissa
    }

    fn lower_bound(b: usize) -> u64 {
        if b < 16 {
            return b as u64;
        }
        let (exp, m) = (b / 16, b % 16);
        (1u64 << exp) | ((m as u64) << (exp - 4))
    }

    pub fn record(&mut self, ns: u64) {
        self.counts[Self::bucket(ns)] += 1;
    }

    pub fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&o.counts) {
            *a += b;
        }
    }

    /// The `q` quantile (0..=1) in microseconds.
    pub fn quantile_us(&self, q: f64) -> f64 {
        let total: u64 = self.counts.iter().sum();
        let target = ((total as f64 * q).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= target {
                return Self::lower_bound(b) as f64 / 1000.0;
            }
        }
        0.0
    }
}
