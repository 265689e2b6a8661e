//! A dataset on disk as files, before any pixel is decoded: where its images and
//! annotation files are (`files`) and the content fingerprint a run's identity holds
//! (`fingerprint`). Decoding them into tensors is the `vaelab` crate's `data` layer.
pub mod files;
pub mod fingerprint;

pub use files::{DataError, celeba_root, folder_root, root_of};
