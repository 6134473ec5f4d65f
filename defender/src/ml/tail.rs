//! Upper-tail probabilities, returned as scores `−log10 p` so that tiny
//! probabilities keep their size (and never underflow into "infinitely
//! anomalous").

use statrs::function::{beta::checked_beta_reg, erf::erfc};

/// The largest score reported; `p` below 1e-300 is as anomalous as it gets.
pub const MAX_SCORE: f64 = 300.0;

fn score_of(p: f64) -> f64 {
    if p.is_nan() || p >= 1.0 {
        0.0
    } else if p <= 0.0 {
        MAX_SCORE
    } else {
        (-p.log10()).min(MAX_SCORE)
    }
}

/// `−log10 P(X ≥ x)` for X negative binomial with mean `mean` and
/// dispersion `inv_k` = 1/k (variance `mean + inv_k · mean²`).
/// `inv_k` → 0 is Poisson; it is floored to keep the beta function tame.
pub fn nb_upper_score(x: f64, mean: f64, inv_k: f64) -> f64 {
    let x = x.ceil();
    if x <= 0.0 || !x.is_finite() {
        return 0.0;
    }
    let mean = mean.max(1e-9);
    let k = 1.0 / inv_k.max(1e-6);
    // P(X ≥ x) = I_{m/(m+k)}(x, k).
    let p_fail = mean / (mean + k);
    match checked_beta_reg(x, k, p_fail) {
        Ok(p) => score_of(p),
        Err(_) => 0.0,
    }
}

/// `−log10 P(Z ≥ z)` for a standard normal Z.
pub fn normal_upper_score(z: f64) -> f64 {
    if z.is_nan() || z <= 0.0 {
        return 0.0;
    }
    score_of(0.5 * erfc(z / std::f64::consts::SQRT_2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_limit() {
        // P(X ≥ 1 | Poisson 1) = 1 − e^-1 = 0.632.
        let s = nb_upper_score(1.0, 1.0, 1e-9);
        assert!((s - (-(1.0 - (-1.0f64).exp()).log10())).abs() < 1e-3, "{s}");
        // P(X ≥ 10 | Poisson 0.01) ≈ 0.01^10 / 10! = 2.76e-27.
        let s = nb_upper_score(10.0, 0.01, 1e-9);
        assert!((26.5..26.6).contains(&s), "{s}");
    }

    #[test]
    fn overdispersion_thickens_the_tail() {
        let poisson = nb_upper_score(200.0, 100.0, 1e-9);
        let nb = nb_upper_score(200.0, 100.0, 0.1);
        assert!(poisson > 15.0 && nb < 3.0, "{poisson} {nb}");
        assert_eq!(nb_upper_score(0.0, 5.0, 0.1), 0.0);
    }

    #[test]
    fn normal() {
        assert!((normal_upper_score(1.6449) - 1.30103).abs() < 1e-3);
        assert_eq!(normal_upper_score(-1.0), 0.0);
        assert!(normal_upper_score(50.0) > 100.0);
    }
}
