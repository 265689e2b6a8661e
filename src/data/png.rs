//! Image grids written as PNG (prior samples, reconstructions).
use std::path::Path;

use image::{ImageEncoder, codecs::png::PngEncoder};
use tch::{Device, Kind, Tensor};

use crate::store::{StoreError, write_atomic};

const PAD: usize = 2;

/// Lays out `images` (N, 3, S, S) in [0, 1] in rows of `columns`, on a white background,
/// and writes the PNG atomically.
pub fn write_grid(images: &Tensor, columns: usize, path: &Path) -> Result<(), StoreError> {
    let bytes = (images
        .to_device(Device::Cpu)
        .to_kind(Kind::Float)
        .clamp(0.0, 1.0)
        * 255.0)
        .round()
        .to_kind(Kind::Uint8)
        .permute([0, 2, 3, 1])
        .contiguous();
    let size = bytes.size();
    let (n, s) = (size[0] as usize, size[1] as usize);
    let pixels: Vec<u8> = bytes.view([-1]).try_into().unwrap_or_default();
    let rows = n.div_ceil(columns.max(1));
    let width = columns * (s + PAD) + PAD;
    let height = rows * (s + PAD) + PAD;
    let mut canvas = vec![255u8; width * height * 3];
    for i in 0..n {
        let (gx, gy) = (
            PAD + (i % columns) * (s + PAD),
            PAD + (i / columns) * (s + PAD),
        );
        for y in 0..s {
            let src = &pixels[(i * s + y) * s * 3..(i * s + y + 1) * s * 3];
            let dst = ((gy + y) * width + gx) * 3;
            canvas[dst..dst + s * 3].copy_from_slice(src);
        }
    }
    let mut png = Vec::new();
    PngEncoder::new(&mut png)
        .write_image(
            &canvas,
            width as u32,
            height as u32,
            image::ExtendedColorType::Rgb8,
        )
        .map_err(|e| StoreError::Io {
            path: path.to_path_buf(),
            action: "cannot encode PNG",
            source: std::io::Error::other(e),
        })?;
    write_atomic(path, &png)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_has_expected_size_and_pixels() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.png");
        let images = Tensor::ones([3, 3, 4, 4], (Kind::Float, Device::Cpu)) * 0.0;
        write_grid(&images, 2, &path).unwrap();
        let img = image::open(&path).unwrap().to_rgb8();
        assert_eq!((img.width(), img.height()), (2 * 6 + 2, 2 * 6 + 2));
        assert_eq!(img.get_pixel(2, 2).0, [0, 0, 0]);
        assert_eq!(img.get_pixel(0, 0).0, [255, 255, 255]);
        // The fourth cell is empty.
        assert_eq!(img.get_pixel(9, 9).0, [255, 255, 255]);
    }
}
