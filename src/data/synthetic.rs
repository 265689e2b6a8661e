//! Synthetic faces: a deterministic generator of face-like RGB images with CelebA-style
//! binary attributes, so the quickstart runs anywhere with no download.
//!
//! Each image is a pure function of (dataset seed, split, index): face shape, position and
//! tilt, skin tone, lighting, hair colour/length/waves/bangs, eyes, brows, nose, mouth
//! (smiling, open), beard, glasses, hat, clothing and background.
use crate::experiment::attributes::SYNTHETIC_ATTRIBUTES;
use crate::rng::{SplitMix, Stream, derive_seed};

type Rgb = [f32; 3];

#[derive(Debug, Clone)]
struct Face {
    male: bool,
    young: bool,
    smiling: bool,
    mouth_open: bool,
    glasses: bool,
    hat: bool,
    hair: HairColour,
    bangs: bool,
    wavy: bool,
    pale: bool,
    beard: bool,
    long_hair: bool,
    centre: (f32, f32),
    radii: (f32, f32),
    tilt: f32,
    skin: Rgb,
    hair_rgb: Rgb,
    iris: Rgb,
    lips: Rgb,
    shirt: Rgb,
    hat_rgb: Rgb,
    background: (Rgb, Rgb),
    light: (f32, f32),
    eye_spacing: f32,
    mouth_width: f32,
    texture_seed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum HairColour {
    Black,
    Blond,
    Brown,
    Gray,
    Red,
}

fn mix(a: Rgb, b: Rgb, t: f32) -> Rgb {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

fn scale(a: Rgb, s: f32) -> Rgb {
    [a[0] * s, a[1] * s, a[2] * s]
}

fn random_colour(rng: &mut SplitMix) -> Rgb {
    [rng.uniform(), rng.uniform(), rng.uniform()]
}

impl Face {
    fn sample(rng: &mut SplitMix) -> Self {
        let male = rng.chance(0.42);
        let young = rng.chance(0.75);
        let hair = if !young && rng.chance(0.6) {
            HairColour::Gray
        } else {
            match rng.below(10) {
                0..=3 => HairColour::Brown,
                4..=6 => HairColour::Black,
                7 | 8 => HairColour::Blond,
                _ => HairColour::Red,
            }
        };
        let pale = rng.chance(0.15);
        let base_skin = match rng.below(4) {
            0 => [0.96, 0.80, 0.69],
            1 => [0.87, 0.67, 0.53],
            2 => [0.70, 0.50, 0.36],
            _ => [0.45, 0.31, 0.22],
        };
        let skin = if pale {
            mix(base_skin, [1.0, 0.93, 0.88], 0.6)
        } else {
            base_skin
        };
        let skin = mix(skin, random_colour(rng), 0.05);
        let hair_rgb = match hair {
            HairColour::Black => [0.09, 0.07, 0.06],
            HairColour::Brown => [0.36, 0.22, 0.12],
            HairColour::Blond => [0.87, 0.74, 0.45],
            HairColour::Gray => [0.68, 0.68, 0.66],
            HairColour::Red => [0.62, 0.27, 0.14],
        };
        let hair_rgb = mix(hair_rgb, random_colour(rng), 0.08);
        let heavy_makeup = !male && rng.chance(0.4);
        let lips = if heavy_makeup {
            [0.72, 0.12, 0.2]
        } else {
            mix(scale(skin, 0.75), [0.7, 0.3, 0.3], 0.4)
        };
        let iris = match rng.below(4) {
            0 => [0.25, 0.15, 0.08],
            1 => [0.2, 0.35, 0.6],
            2 => [0.25, 0.45, 0.3],
            _ => [0.1, 0.08, 0.06],
        };
        Self {
            male,
            young,
            smiling: rng.chance(0.48),
            mouth_open: rng.chance(0.45),
            glasses: rng.chance(0.12),
            hat: rng.chance(0.07),
            hair,
            bangs: rng.chance(0.25),
            wavy: rng.chance(0.3),
            pale,
            beard: male && rng.chance(0.35),
            long_hair: if male {
                rng.chance(0.15)
            } else {
                rng.chance(0.8)
            },
            centre: (rng.range(0.44, 0.56), rng.range(0.48, 0.56)),
            radii: (rng.range(0.18, 0.24), rng.range(0.25, 0.31)),
            tilt: rng.range(-0.15, 0.15),
            skin,
            hair_rgb,
            iris,
            lips,
            shirt: random_colour(rng),
            hat_rgb: random_colour(rng),
            background: (random_colour(rng), random_colour(rng)),
            light: {
                let angle = rng.range(0.0, std::f32::consts::TAU);
                (angle.cos(), angle.sin())
            },
            eye_spacing: rng.range(0.36, 0.44),
            mouth_width: rng.range(0.3, 0.42),
            texture_seed: rng.next_u64(),
        }
    }

    fn attributes(&self) -> [i8; SYNTHETIC_ATTRIBUTES.len()] {
        let b = |x: bool| if x { 1 } else { -1 };
        [
            b(self.male),
            b(self.young),
            b(self.smiling),
            b(self.mouth_open),
            b(self.glasses),
            b(self.hat),
            b(self.hair == HairColour::Black),
            b(self.hair == HairColour::Blond),
            b(self.hair == HairColour::Brown),
            b(self.hair == HairColour::Gray),
            b(self.bangs && !self.hat),
            b(self.wavy),
            b(self.pale),
            b(!self.beard),
        ]
    }

    /// Colour at image point (u, v) in [0, 1]².
    fn colour_at(&self, u: f32, v: f32) -> Rgb {
        let (cx, cy) = self.centre;
        let (rx, ry) = self.radii;
        // Face-local coordinates, rotated by the head's tilt, in units of the face radii.
        let (dx, dy) = (u - cx, v - cy);
        let (s, c) = self.tilt.sin_cos();
        let lx = (c * dx + s * dy) / rx;
        let ly = (-s * dx + c * dy) / ry;
        let r2 = lx * lx + ly * ly;

        let (bg_a, bg_b) = self.background;
        let mut colour = mix(bg_a, bg_b, v);

        let wave = if self.wavy {
            0.08 * (ly * 14.0).sin()
        } else {
            0.0
        };
        let hair_back =
            (lx / (1.3 + wave)).powi(2) + ((ly - 0.35) / 1.45).powi(2) < 1.0 && ly < 1.6;
        if self.long_hair && hair_back {
            colour = scale(self.hair_rgb, 0.8);
        }
        // Shoulders and neck.
        if ((u - cx) / 0.42).powi(2) + ((v - 1.12) / 0.3).powi(2) < 1.0 {
            colour = self.shirt;
        }
        if lx.abs() < 0.42 && ly > 0.5 && v < 0.95 {
            colour = scale(self.skin, 0.82);
        }
        if r2 < 1.0 {
            let shade = 1.0 + 0.22 * (lx * self.light.0 + ly * self.light.1) - 0.12 * r2 * r2;
            colour = scale(self.skin, shade);
            colour = self.features(colour, lx, ly);
        }
        // Hair cap over the top of the head, then the hat over everything above the brow.
        let hairline = if self.bangs { -0.42 } else { -0.62 } + wave * 0.5;
        let cap = (lx / (1.12 + wave)).powi(2) + ((ly + 0.12) / 1.08).powi(2) < 1.0;
        if cap && (ly < hairline || (r2 >= 1.0 && ly < 0.2)) {
            let streak = 0.9 + 0.1 * ((lx * 30.0 + ly * 6.0).sin());
            colour = scale(self.hair_rgb, streak);
        }
        if self.hat && ly < -0.55 && (lx / 1.2).powi(2) + ((ly + 0.6) / 0.9).powi(2) < 1.0 {
            colour = self.hat_rgb;
        }
        if self.hat && (-0.62..-0.5).contains(&ly) && lx.abs() < 1.45 {
            colour = scale(self.hat_rgb, 0.75);
        }
        colour
    }

    fn features(&self, skin: Rgb, lx: f32, ly: f32) -> Rgb {
        let mut colour = skin;
        if self.beard && ly > 0.25 {
            let stubble = 0.75 + 0.1 * ((lx * 53.0).sin() * (ly * 47.0).sin());
            colour = mix(colour, scale(self.hair_rgb, stubble), 0.8);
        }
        for side in [-1.0f32, 1.0] {
            let (ex, ey) = (side * self.eye_spacing, -0.1);
            let (ox, oy) = (lx - ex, ly - ey);
            // Brow.
            if (ox / 0.24).powi(2) + ((oy + 0.17 + 0.04 * (ox * 6.0).cos()) / 0.035).powi(2) < 1.0 {
                colour = scale(self.hair_rgb, 0.7);
            }
            // Eye white, iris, pupil.
            let eye = (ox / 0.19).powi(2) + (oy / 0.075).powi(2);
            if eye < 1.0 {
                colour = [0.95, 0.95, 0.93];
                let iris = (ox * ox + oy * oy).sqrt() / 0.065;
                if iris < 1.0 {
                    colour = if iris < 0.45 {
                        [0.03, 0.03, 0.03]
                    } else {
                        self.iris
                    };
                }
            }
            // Glasses: a ring around each eye.
            if self.glasses {
                let ring = ((ox / 0.27).powi(2) + (oy / 0.17).powi(2)).sqrt();
                if (0.9..1.05).contains(&ring) {
                    colour = [0.08, 0.08, 0.1];
                } else if ring < 0.9 {
                    colour = mix(colour, [0.6, 0.7, 0.8], 0.15);
                }
            }
        }
        if self.glasses && lx.abs() < self.eye_spacing - 0.25 && (ly + 0.12).abs() < 0.025 {
            colour = [0.08, 0.08, 0.1];
        }
        // Nose: a shaded ridge and nostrils.
        if (lx / 0.09).powi(2) + ((ly - 0.18) / 0.16).powi(2) < 1.0 {
            colour = scale(colour, 0.9 + 0.06 * self.light.0.signum() * lx.signum());
        }
        if ((lx.abs() - 0.06) / 0.035).powi(2) + ((ly - 0.31) / 0.02).powi(2) < 1.0 {
            colour = scale(skin, 0.55);
        }
        // Mouth: corners raised when smiling; a dark gap with teeth when open.
        let w = self.mouth_width;
        if lx.abs() < w {
            let t = 1.0 - (lx / w).powi(2);
            let curve = if self.smiling { 0.11 * t } else { 0.015 * t };
            let centre = 0.55 + curve - 0.03;
            let upper = centre
                - if self.mouth_open {
                    0.05 * t + 0.012
                } else {
                    0.012
                };
            let lower = centre
                + if self.mouth_open {
                    0.07 * t + 0.012
                } else {
                    0.012
                };
            if ly > upper - 0.035 && ly < lower + 0.04 {
                colour = self.lips;
            }
            if self.mouth_open && ly > upper && ly < lower {
                colour = if ly < upper + 0.03 && self.smiling {
                    [0.92, 0.9, 0.85]
                } else {
                    [0.2, 0.05, 0.06]
                };
            }
        }
        if !self.young {
            let crease = ((lx.abs() - 0.45) / 0.012).powi(2) + ((ly - 0.42) / 0.12).powi(2);
            if crease < 1.0 {
                colour = scale(colour, 0.85);
            }
        }
        colour
    }
}

/// Renders one image as CHW uint8 with 2×2 supersampling and a faint deterministic grain.
fn render(face: &Face, size: usize) -> Vec<u8> {
    let mut out = vec![0u8; 3 * size * size];
    let plane = size * size;
    let mut grain = SplitMix::new(face.texture_seed);
    let inv = 1.0 / size as f32;
    for y in 0..size {
        for x in 0..size {
            let mut acc = [0f32; 3];
            for (sx, sy) in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)] {
                let c = face.colour_at((x as f32 + sx) * inv, (y as f32 + sy) * inv);
                for k in 0..3 {
                    acc[k] += c[k];
                }
            }
            let noise = (grain.uniform() - 0.5) * 0.03;
            for (k, value) in acc.iter().enumerate() {
                let v = (value * 0.25 + noise).clamp(0.0, 1.0);
                out[k * plane + y * size + x] = (v * 255.0).round() as u8;
            }
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train = 0,
    Validation = 1,
    /// Held out from validation too: what `data.split: test` evaluates.
    Test = 2,
}

/// One synthetic image (CHW uint8) and its attributes, a pure function of its coordinates.
pub fn generate(
    dataset_seed: u64,
    split: Split,
    index: usize,
    size: usize,
) -> (Vec<u8>, [i8; SYNTHETIC_ATTRIBUTES.len()]) {
    let mut rng = SplitMix::new(derive_seed(
        dataset_seed,
        Stream::Dataset,
        &[split as u64, index as u64],
    ));
    let face = Face::sample(&mut rng);
    (render(&face, size), face.attributes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_deterministic_and_distinct() {
        let (a, attrs_a) = generate(0, Split::Train, 3, 32);
        let (b, attrs_b) = generate(0, Split::Train, 3, 32);
        assert_eq!(a, b);
        assert_eq!(attrs_a, attrs_b);
        let (c, _) = generate(0, Split::Train, 4, 32);
        let (d, _) = generate(0, Split::Validation, 3, 32);
        let (e, _) = generate(1, Split::Train, 3, 32);
        assert_ne!(a, c);
        assert_ne!(a, d);
        assert_ne!(a, e);
        assert_eq!(a.len(), 3 * 32 * 32);
    }

    #[test]
    fn attributes_vary_across_images_and_are_binary() {
        let attrs: Vec<_> = (0..400)
            .map(|i| generate(0, Split::Train, i, 8).1)
            .collect();
        for (k, name) in SYNTHETIC_ATTRIBUTES.iter().enumerate() {
            let positives = attrs.iter().filter(|a| a[k] == 1).count();
            assert!(attrs.iter().all(|a| a[k] == 1 || a[k] == -1));
            assert!(
                positives > 4 && positives < 396,
                "{name}: {positives} of 400"
            );
        }
    }

    #[test]
    fn smiling_changes_the_mouth_region() {
        let mut rng = SplitMix::new(5);
        let mut face = Face::sample(&mut rng);
        face.smiling = false;
        face.mouth_open = false;
        let neutral = render(&face, 64);
        face.smiling = true;
        let smiling = render(&face, 64);
        let differing = neutral.iter().zip(&smiling).filter(|(a, b)| a != b).count();
        assert!(differing > 30, "only {differing} values changed");
    }
}
