//! The metric math of the evaluation, on image tensors in [0, 1]: MSE, PSNR, SSIM, bits
//! per dimension and the importance-weighted bound (the decoder's likelihood of the 8-bit
//! pixels is the discretized Gaussian, [`discretized_gaussian_nll`]).
use tch::{Kind, Tensor};

use crate::model::{Posterior, Vae, log_prior};

/// Mean squared error per image over all pixels and channels.
pub fn mse_per_image(a: &Tensor, b: &Tensor) -> Tensor {
    (a - b)
        .square()
        .mean_dim(&[1i64, 2, 3][..], false, Kind::Float)
}

/// PSNR in dB for images in [0, 1], one value per image.
pub fn psnr_per_image(recon: &Tensor, target: &Tensor) -> Tensor {
    mse_per_image(recon, target).clamp_min(1e-10).log10() * -10.0
}

/// SSIM (Wang et al. 2004) per image for images in [0, 1]: an 11×11 Gaussian window with
/// σ = 1.5, valid positions only, averaged over channels. Images smaller than 11 pixels
/// use the largest odd window that fits, with σ scaled alike.
pub fn ssim_per_image(a: &Tensor, b: &Tensor) -> Tensor {
    let size = a.size();
    let (channels, side) = (size[1], size[2].min(size[3]));
    let window = if side >= 11 {
        11
    } else {
        side - (1 - side % 2)
    };
    let sigma = 1.5 * window as f64 / 11.0;
    let center = (window - 1) as f64 / 2.0;
    let weights: Vec<f32> = (0..window)
        .map(|i| (-((i as f64 - center).powi(2)) / (2.0 * sigma * sigma)).exp() as f32)
        .collect();
    let total: f32 = weights.iter().sum();
    let line = Tensor::from_slice(&weights).to_device(a.device()) / total as f64;
    let kernel = line
        .view([window, 1])
        .matmul(&line.view([1, window]))
        .view([1, 1, window, window])
        .expand([channels, 1, window, window], false)
        .contiguous();
    let filter = |t: &Tensor| t.conv2d(&kernel, None::<Tensor>, [1, 1], [0, 0], [1, 1], channels);
    let (c1, c2) = (0.01f64.powi(2), 0.03f64.powi(2));
    let (mu_a, mu_b) = (filter(a), filter(b));
    let var_a = filter(&(a * a)) - mu_a.square();
    let var_b = filter(&(b * b)) - mu_b.square();
    let cov = filter(&(a * b)) - &mu_a * &mu_b;
    let numerator = (&mu_a * &mu_b * 2.0 + c1) * (cov * 2.0 + c2);
    let denominator = (mu_a.square() + mu_b.square() + c1) * (var_a + var_b + c2);
    (numerator / denominator).mean_dim(&[1i64, 2, 3][..], false, Kind::Float)
}

/// Converts −log P(x) of the 8-bit pixel values, in nats per image, to bits per dimension.
pub fn bits_per_dim(nats: f64, dims: f64) -> f64 {
    nats / (dims * std::f64::consts::LN_2)
}

/// Half the width of one 8-bit value's bin on [0, 1].
const HALF_BIN: f64 = 0.5 / 255.0;

/// −log P(x) in nats per image of the 8-bit pixel values `target` (multiples of 1/255)
/// under the discretized Gaussian with means `recon` and log σ per channel `log_sigma`:
/// each value's probability is the Gaussian's mass over its bin [x − 1/510, x + 1/510],
/// the bins of 0 and 1 open to −∞ and +∞ (Salimans et al. 2017), so every pixel's
/// probability is at most 1 and the bits per dimension it gives are a true bound. A
/// density times the bin width is not: near σ's floor it exceeds 1.
pub fn discretized_gaussian_nll(recon: &Tensor, target: &Tensor, log_sigma: &Tensor) -> Tensor {
    let inv_sigma = (log_sigma.view([1, 3, 1, 1]) * -1.0).exp();
    let centred = target - recon;
    let upper = (&centred + HALF_BIN) * &inv_sigma;
    let lower = (&centred - HALF_BIN) * &inv_sigma;
    let infinity = |t: &Tensor, v: f64| t.full_like(v);
    let upper = upper.where_self(&target.lt(1.0 - HALF_BIN), &infinity(target, f64::INFINITY));
    let lower = lower.where_self(&target.gt(HALF_BIN), &infinity(target, f64::NEG_INFINITY));
    // P = Φ(upper) − Φ(lower). On the bin's upper side of the mean that is
    // Φ(−lower) − Φ(−upper): either way the mass between two points on the side where Φ
    // is small, where log Φ (`log_ndtr`) keeps every digit far into the tail.
    let above = (&upper + &lower).gt(0.0);
    let near = upper.where_self(&above.logical_not(), &(-&lower));
    let far = lower.where_self(&above.logical_not(), &(-&upper));
    let (log_near, log_far) = (near.special_log_ndtr(), far.special_log_ndtr());
    let log_p = &log_near + (-(log_far - &log_near).expm1()).log();
    -log_p.sum_dim_intlist(&[1i64, 2, 3][..], false, Kind::Float)
}

/// Importance-weighted bound on log p(x) per image, in nats, from `samples` standard
/// normal draws per image in `eps` (shape (N, K, latent)), under the decoder likelihood
/// with log σ per channel `log_sigma`.
pub fn iwae_log_likelihood(model: &Vae, x: &Tensor, eps: &Tensor, log_sigma: &Tensor) -> Tensor {
    let bounds =
        iwae_log_likelihood_chunked(model, x, eps, std::slice::from_ref(log_sigma), i64::MAX);
    bounds
        .into_iter()
        .next()
        .expect("one likelihood in, one bound out")
}

/// [`iwae_log_likelihood`] under each decoder log σ of `log_sigmas` from the same decodes,
/// decoding at most `max_decodes` images at a time: the samples are split into chunks
/// whose log-weights are joined before the log-sum-exp, so thousands of samples per image
/// fit in a GPU's memory. Without a split it is the same computation.
pub fn iwae_log_likelihood_chunked(
    model: &Vae,
    x: &Tensor,
    eps: &Tensor,
    log_sigmas: &[Tensor],
    max_decodes: i64,
) -> Vec<Tensor> {
    let (n, k) = (eps.size()[0], eps.size()[1]);
    let posterior = model.encode(x);
    let chunk = (max_decodes / n.max(1)).clamp(1, k);
    let mut per_likelihood: Vec<Vec<Tensor>> = log_sigmas.iter().map(|_| Vec::new()).collect();
    for start in (0..k).step_by(chunk as usize) {
        let eps = eps.narrow(1, start, chunk.min(k - start));
        let weights = iwae_log_weights(model, x, &posterior, &eps, log_sigmas);
        for (all, chunk) in per_likelihood.iter_mut().zip(weights) {
            all.push(chunk);
        }
    }
    per_likelihood
        .iter()
        .map(|w| Tensor::cat(w, 1).logsumexp(&[1i64][..], false) - (k as f64).ln())
        .collect()
}

/// log p(x|z) + log p(z) − log q(z|x) for each image and sample of `eps` (N, K, latent),
/// once per decoder log σ of `log_sigmas`.
fn iwae_log_weights(
    model: &Vae,
    x: &Tensor,
    posterior: &Posterior,
    eps: &Tensor,
    log_sigmas: &[Tensor],
) -> Vec<Tensor> {
    let (n, k, latent) = (eps.size()[0], eps.size()[1], eps.size()[2]);
    let z = posterior.sample_many(eps);
    let recon = model.decode(&z.view([n * k, latent]));
    let repeated = x
        .unsqueeze(1)
        .expand([n, k, x.size()[1], x.size()[2], x.size()[3]], false)
        .reshape([n * k, x.size()[1], x.size()[2], x.size()[3]]);
    let log_pz = log_prior(&z);
    let log_qz = posterior.log_q(eps);
    let prior_terms = log_pz - log_qz;
    log_sigmas
        .iter()
        .map(|log_sigma| {
            -discretized_gaussian_nll(&recon, &repeated, log_sigma).view([n, k]) + &prior_terms
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model;
    use tch::Device;

    fn constant(value: f64) -> Tensor {
        Tensor::full([1, 3, 16, 16], value, (Kind::Float, Device::Cpu))
    }

    #[test]
    fn psnr_matches_its_definition() {
        // MSE 0.01 everywhere: PSNR = 10·log10(1/0.01) = 20 dB.
        let psnr = psnr_per_image(&constant(0.6), &constant(0.5)).double_value(&[0]);
        assert!((psnr - 20.0).abs() < 1e-4, "{psnr}");
    }

    #[test]
    fn ssim_is_one_for_identical_images_and_matches_the_closed_form_for_constants() {
        tch::manual_seed(3);
        let x = Tensor::rand([2, 3, 32, 32], (Kind::Float, Device::Cpu));
        let same = ssim_per_image(&x, &x);
        assert!((same.double_value(&[0]) - 1.0).abs() < 1e-5);
        let noisy = (&x + Tensor::randn_like(&x) * 0.2).clamp(0.0, 1.0);
        let lower = ssim_per_image(&noisy, &x).double_value(&[0]);
        assert!(lower < 0.9, "{lower}");
        // Constant images: variances vanish and SSIM = (2ab + C1) / (a² + b² + C1).
        let (a, b) = (0.3, 0.7);
        let c1 = 1e-4;
        let expected = (2.0 * a * b + c1) / (a * a + b * b + c1);
        let got = ssim_per_image(&constant(a), &constant(b)).double_value(&[0]);
        assert!((got - expected).abs() < 1e-4, "{got} vs {expected}");
        // Small images use a smaller window rather than failing.
        let small = Tensor::rand([1, 3, 8, 8], (Kind::Float, Device::Cpu));
        assert!((ssim_per_image(&small, &small).double_value(&[0]) - 1.0).abs() < 1e-5);
    }

    /// A pair of fixed 3×size×size images (the formula the reference values were made with).
    fn ssim_pair(size: usize) -> (Tensor, Tensor) {
        let mut a = Vec::with_capacity(3 * size * size);
        let mut b = Vec::with_capacity(3 * size * size);
        for c in 0..3 {
            for y in 0..size {
                for x in 0..size {
                    let (x, y, c) = (x as f64, y as f64, c as f64);
                    let va = 0.5 + 0.4 * ((x * 0.7 + y * 0.3 + c) / 2.0).sin();
                    let vb = 0.8 * va + 0.1 + 0.08 * ((x * 1.3 - y * 0.5 + 2.0 * c) / 1.5).cos();
                    a.push(va.clamp(0.0, 1.0) as f32);
                    b.push(vb.clamp(0.0, 1.0) as f32);
                }
            }
        }
        let shape = [1, 3, size as i64, size as i64];
        (
            Tensor::from_slice(&a).view(shape),
            Tensor::from_slice(&b).view(shape),
        )
    }

    /// Against scikit-image 0.26 (`structural_similarity(a, b, data_range=1,
    /// channel_axis=0, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`)
    /// on the images of [`ssim_pair`].
    #[test]
    fn ssim_matches_scikit_image_on_fixed_images() {
        for (size, reference) in [(16, 0.817_777_872_085_571_3), (32, 0.868_409_454_822_540_3)] {
            let (a, b) = ssim_pair(size);
            let ours = ssim_per_image(&a, &b).double_value(&[0]);
            assert!(
                (ours - reference).abs() < 1e-4,
                "{size}: {ours} vs {reference}"
            );
        }
    }

    fn fixed() -> Tensor {
        Tensor::full([3], model::FIXED_LOG_SIGMA, (Kind::Float, Device::Cpu))
    }

    /// 8-bit values of a smooth pattern, none of them 0 or 1.
    fn interior_pixels() -> Tensor {
        let x = Tensor::arange(3 * 16 * 16, (Kind::Float, Device::Cpu)).view([1, 3, 16, 16]);
        ((x * 0.37).sin() * 100.0 + 128.0).round() / 255.0
    }

    /// Where σ is broad next to a bin, the discretized Gaussian is the density times the
    /// bin width: the old and new bits per dimension agree.
    #[test]
    fn the_discretized_gaussian_agrees_with_density_times_bin_width_where_sigma_is_broad() {
        let x = interior_pixels();
        let recon = (&x + 0.03).clamp(0.0, 1.0);
        let log_sigma = Tensor::full([3], (0.2f64).ln(), (Kind::Float, Device::Cpu));
        let dims = x.numel() as f64;
        let new = discretized_gaussian_nll(&recon, &x, &log_sigma).double_value(&[0]);
        let density = crate::model::gaussian_nll(&recon, &x, &log_sigma).double_value(&[0]);
        let old = density / (dims * std::f64::consts::LN_2) + 255f64.log2();
        let bpd = bits_per_dim(new, dims);
        assert!((bpd - old).abs() < 1e-4, "{bpd} vs {old}");
    }

    /// At σ's floor a density times the bin width is above 1 for a pixel on its mean; the
    /// discretized probability never is, and the open outer bins give 0 and 1 their tails.
    #[test]
    fn no_pixel_has_a_probability_above_one() {
        let x = interior_pixels();
        let floor = Tensor::full([3], (0.1f64 / 255.0).ln(), (Kind::Float, Device::Cpu));
        let density = crate::model::gaussian_nll(&x, &x, &floor).double_value(&[0]);
        let old_log_p = -density - x.numel() as f64 * 255f64.ln();
        assert!(
            old_log_p > 0.0,
            "the old bound's probability is above 1: {old_log_p}"
        );
        let exact = discretized_gaussian_nll(&x, &x, &floor).double_value(&[0]);
        assert!(
            (0.0..1e-3).contains(&exact),
            "P ≈ 1 for every pixel: −log P = {exact}"
        );
        // A pixel at 0 whose mean sits at 0.5/255 (the bin's edge) has P = Φ(0) = 1/2 only
        // because its bin is open below; one at 1 likewise.
        let edges = Tensor::from_slice(&[0.0f32, 1.0, 0.0]).view([1, 3, 1, 1]);
        let means = Tensor::from_slice(&[0.5f32 / 255.0, 1.0 - 0.5 / 255.0, 0.5 / 255.0])
            .view([1, 3, 1, 1]);
        let nll = discretized_gaussian_nll(&means, &edges, &floor).double_value(&[0]);
        // The edge sits where f32 puts 0.5/255: within 1e-4 of Φ(0) per pixel.
        assert!((nll - 3.0 * 2f64.ln()).abs() < 3e-4, "{nll}");
    }

    /// Against Φ(upper) − Φ(lower) computed directly in f64, from the bin's centre to far
    /// into both tails (where a direct difference of two CDFs in f32 would be 0).
    #[test]
    fn the_discretized_gaussian_matches_a_direct_f64_computation_into_the_tails() {
        use statrs::distribution::{ContinuousCDF, Normal};
        let sigma = 0.02f64;
        let standard = Normal::standard();
        for offset in [0.0, 0.01, -0.05, 0.12, -0.2] {
            let x = 100.0 / 255.0;
            let mean = x + offset;
            let (upper, lower) = ((x + HALF_BIN - mean) / sigma, (x - HALF_BIN - mean) / sigma);
            // Far into a tail, the difference of the two upper-tail masses.
            let direct = if lower > 0.0 {
                standard.sf(lower) - standard.sf(upper)
            } else {
                standard.cdf(upper) - standard.cdf(lower)
            };
            let pixel = |v: f64| Tensor::full([1, 3, 1, 1], v, (Kind::Float, Device::Cpu));
            let log_sigma = Tensor::full([3], sigma.ln(), (Kind::Float, Device::Cpu));
            let ours = discretized_gaussian_nll(&pixel(mean), &pixel(x), &log_sigma)
                .double_value(&[0])
                / 3.0;
            assert!(
                (ours + direct.ln()).abs() < 1e-3 * direct.ln().abs().max(1.0),
                "offset {offset}: {ours} vs {}",
                -direct.ln()
            );
        }
    }

    #[test]
    fn iwae_bound_agrees_with_a_direct_computation_and_tightens_the_elbo() {
        let config = crate::experiment::config::tiny_config();
        let (_vs, model) = model::build(&config.model, 32, Device::Cpu, 5);
        tch::manual_seed(11);
        let x = (Tensor::rand([3, 3, 32, 32], (Kind::Float, Device::Cpu)) * 255.0).round() / 255.0;
        let eps = Tensor::randn([3, 4, 8], (Kind::Float, Device::Cpu));
        // A calibrated-looking σ per channel, so a dropped log σ term shows.
        let log_sigma = Tensor::from_slice(&[-1.5f32, -2.0, -1.0]);
        let bound = tch::no_grad(|| iwae_log_likelihood(&model, &x, &eps, &log_sigma));
        // Split into chunks of 3 decodes (one sample per image at a time), the same bound,
        // and the fixed likelihood's bound from the same decodes.
        let chunked = tch::no_grad(|| {
            iwae_log_likelihood_chunked(&model, &x, &eps, &[fixed(), log_sigma.copy()], 3)
        });
        assert!(
            bound.allclose(&chunked[1], 1e-5, 1e-4, false),
            "{bound} vs {}",
            chunked[1]
        );
        let fixed_bound = tch::no_grad(|| iwae_log_likelihood(&model, &x, &eps, &fixed()));
        assert!(fixed_bound.allclose(&chunked[0], 1e-5, 1e-4, false));
        // Directly, one sample at a time.
        let posterior = tch::no_grad(|| model.encode(&x));
        let (mu, logvar) = (&posterior.mu, &posterior.logvar);
        for i in 0..3 {
            let mut log_weights = Vec::new();
            for k in 0..4 {
                let e = eps.get(i).get(k);
                let z = mu.get(i) + &e * (logvar.get(i) * 0.5).exp();
                let recon = tch::no_grad(|| model.decode(&z.unsqueeze(0)));
                let log_px = -discretized_gaussian_nll(&recon, &x.narrow(0, i, 1), &log_sigma)
                    .double_value(&[0]);
                let log_pz: f64 = (0..8)
                    .map(|d| {
                        let v = z.double_value(&[d]);
                        -0.5 * v * v - 0.5 * (2.0 * std::f64::consts::PI).ln()
                    })
                    .sum();
                let log_qz: f64 = (0..8)
                    .map(|d| {
                        let v = e.double_value(&[d]);
                        -0.5 * v * v
                            - 0.5 * (2.0 * std::f64::consts::PI).ln()
                            - 0.5 * logvar.double_value(&[i, d])
                    })
                    .sum();
                log_weights.push(log_px + log_pz - log_qz);
            }
            let max = log_weights.iter().cloned().fold(f64::MIN, f64::max);
            let direct =
                max + (log_weights.iter().map(|w| (w - max).exp()).sum::<f64>() / 4.0).ln();
            let got = bound.double_value(&[i]);
            // 0.05 nats absolute: a missing −ln K (1.39) or log σ term fails.
            assert!((got - direct).abs() < 0.05, "{got} vs {direct}");
            // Jensen: the mean of the log weights (an ELBO estimate) is below the bound.
            let elbo = log_weights.iter().sum::<f64>() / 4.0;
            assert!(elbo <= got + 1e-6, "{elbo} > {got}");
        }
    }
}
