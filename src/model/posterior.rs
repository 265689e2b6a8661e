//! The encoder's Gaussian posterior q(z|x) = N(μ, diag(exp(log σ²))): drawing from it, its
//! KL to the standard normal prior and its log density, written once for training, the
//! evaluation passes and the IWAE bound.
use tch::{Kind, Tensor};

/// ½·ln 2π, the normal density's constant (computed, not a literal, so every use rounds
/// the same way it always has).
pub fn half_ln_2pi() -> f64 {
    0.5 * (2.0 * std::f64::consts::PI).ln()
}

/// μ and log σ² of q(z|x), each (N, latent).
#[derive(Debug)]
pub struct Posterior {
    pub mu: Tensor,
    pub logvar: Tensor,
}

impl Posterior {
    /// σ = exp(½ log σ²).
    pub fn std(&self) -> Tensor {
        (&self.logvar * 0.5).exp()
    }

    /// z = μ + σ·ε for standard normal `eps` (N, latent): the reparameterised draw.
    pub fn sample(&self, eps: &Tensor) -> Tensor {
        &self.mu + eps * self.std()
    }

    /// KL(q(z|x) ‖ N(0, I)) per image and latent dimension, (N, latent).
    pub fn kl_per_dim(&self) -> Tensor {
        (self.mu.square() + self.logvar.exp() - &self.logvar - 1.0) * 0.5
    }

    /// KL(q(z|x) ‖ N(0, I)) summed over latent dimensions, one value per image.
    pub fn kl_per_image(&self) -> Tensor {
        self.kl_per_dim()
            .sum_dim_intlist(&[1i64][..], false, Kind::Float)
    }

    /// log q(z|x) at z = μ + σ·ε for `eps` of shape (N, K, latent): K draws per image,
    /// one value per image and draw, (N, K).
    pub fn log_q(&self, eps: &Tensor) -> Tensor {
        (eps.square() * -0.5 - half_ln_2pi() - self.logvar.unsqueeze(1) * 0.5).sum_dim_intlist(
            &[2i64][..],
            false,
            Kind::Float,
        )
    }

    /// K draws per image from `eps` (N, K, latent): z of shape (N, K, latent).
    pub fn sample_many(&self, eps: &Tensor) -> Tensor {
        self.mu.unsqueeze(1) + self.std().unsqueeze(1) * eps
    }
}

/// log N(z; 0, I) summed over the last dimension of `z` (…, latent).
pub fn log_prior(z: &Tensor) -> Tensor {
    let last = z.dim() as i64 - 1;
    (z.square() * -0.5 - half_ln_2pi()).sum_dim_intlist(&[last][..], false, Kind::Float)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn posterior() -> Posterior {
        Posterior {
            mu: Tensor::from_slice(&[0.5f32, -1.0, 0.0, 2.0]).view([2, 2]),
            logvar: Tensor::from_slice(&[0.0f32, -2.0, 1.0, 0.3]).view([2, 2]),
        }
    }

    /// The KL, the draw and log q against the closed forms, one number at a time.
    #[test]
    fn kl_sample_and_log_density_follow_the_gaussian_formulas() {
        let q = posterior();
        let (mu, logvar) = ([0.5, -1.0, 0.0, 2.0], [0.0, -2.0, 1.0, 0.3]);
        let kl: Vec<f64> = (0..4)
            .map(|i| 0.5 * (mu[i] * mu[i] + f64::exp(logvar[i]) - logvar[i] - 1.0))
            .collect();
        let per_image = q.kl_per_image();
        for image in 0..2 {
            let expected = kl[2 * image] + kl[2 * image + 1];
            let got = per_image.double_value(&[image as i64]);
            assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
        }
        let eps = Tensor::from_slice(&[1.0f32, -0.5, 0.25, 2.0]).view([2, 2]);
        let z = q.sample(&eps);
        let log_q = q.log_q(&eps.unsqueeze(1));
        for i in 0..4usize {
            let (row, col) = ((i / 2) as i64, (i % 2) as i64);
            let e = eps.double_value(&[row, col]);
            let expected_z = mu[i] + (0.5 * logvar[i]).exp() * e;
            assert!((z.double_value(&[row, col]) - expected_z).abs() < 1e-5);
        }
        for row in 0..2usize {
            // log N(z; μ, σ²) = Σ −½ε² − ½ ln 2π − ½ log σ².
            let expected: f64 = (0..2)
                .map(|d| {
                    let e = eps.double_value(&[row as i64, d as i64]);
                    -0.5 * e * e - half_ln_2pi() - 0.5 * logvar[2 * row + d]
                })
                .sum();
            let got = log_q.double_value(&[row as i64, 0]);
            assert!((got - expected).abs() < 1e-5, "{got} vs {expected}");
        }
        let prior = log_prior(&z);
        let expected: f64 = (0..2)
            .map(|d| {
                let v = z.double_value(&[0, d]);
                -0.5 * v * v - half_ln_2pi()
            })
            .sum();
        assert!((prior.double_value(&[0]) - expected).abs() < 1e-5);
    }
}
