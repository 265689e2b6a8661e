//! The optimizer: Adam over flat, aligned buffers whose state vaelab owns (`adam`), so a
//! checkpoint holds it and a resume continues the same trajectory.
pub mod adam;
