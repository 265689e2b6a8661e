//! Image grids written as PNG (prior samples, reconstructions).
use std::path::Path;

use image::{ImageEncoder, codecs::png::PngEncoder};
use tch::{Device, Kind, Tensor};

use crate::store::{StoreError, write_atomic};

const PAD: usize = 2;

/// Why a grid cannot be laid out, as the store's error for `path`.
fn layout_error(path: &Path, detail: String) -> StoreError {
    StoreError::Io {
        path: path.to_path_buf(),
        action: "cannot lay out the image grid",
        source: std::io::Error::other(detail),
    }
}

/// Lays out `images` (N, 3, S, S) in [0, 1] in rows of `columns`, on a white background,
/// and writes the PNG atomically. Any other shape is an error, never a panic.
pub fn write_grid(images: &Tensor, columns: usize, path: &Path) -> Result<(), StoreError> {
    let shape = images.size();
    if shape.len() != 4 || shape[1] != 3 || shape[2] != shape[3] {
        return Err(layout_error(
            path,
            format!("expected square RGB images (N, 3, S, S), got shape {shape:?}"),
        ));
    }
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
    let pixels: Vec<u8> = bytes
        .view([-1])
        .try_into()
        .map_err(|e: tch::TchError| layout_error(path, e.to_string()))?;
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

    #[test]
    fn a_shape_that_is_not_square_rgb_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.png");
        for shape in [[2i64, 3, 4, 6], [2, 1, 4, 4]] {
            let images = Tensor::zeros(shape, (Kind::Float, Device::Cpu));
            let err = write_grid(&images, 2, &path).unwrap_err().to_string();
            assert!(
                err.contains("g.png") && err.contains(&format!("{shape:?}")),
                "{err}"
            );
        }
        assert!(!path.exists());
    }
}
