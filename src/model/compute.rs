//! Precision and memory layout of a forward pass ([`Compute`]).
use tch::{Kind, Tensor, nn};

use super::{UP_PADDING, UP_STRIDE};
use crate::experiment::config::Precision;

/// How a forward pass computes: the kind convolutions and linear layers run in, and the
/// memory layout of 4-d tensors. Weights stay fp32 (the master copy the optimizer updates)
/// and are cast at each use, so their gradients arrive in fp32 through the cast: autocast's
/// policy, written out because tch exposes autocast for CUDA fp16 only.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Compute {
    pub precision: Precision,
    /// NHWC strides for activations and convolution weights (cuDNN's native layout).
    pub channels_last: bool,
}

impl Compute {
    fn kind(self) -> Kind {
        match self.precision {
            Precision::Fp32 => Kind::Float,
            Precision::Bf16 => Kind::BFloat16,
        }
    }

    /// True when layers may run as tch builds them (fp32, NCHW).
    pub(super) fn is_plain(self) -> bool {
        self == Self::default()
    }

    /// An activation or weight in the compute kind and layout.
    pub(super) fn cast(self, t: &Tensor) -> Tensor {
        let t = if t.kind() == self.kind() {
            t.shallow_clone()
        } else {
            t.to_kind(self.kind())
        };
        if self.channels_last && t.dim() == 4 {
            t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
        } else {
            t
        }
    }

    pub(super) fn bias(self, bias: &Option<Tensor>) -> Option<Tensor> {
        bias.as_ref().map(|b| b.to_kind(self.kind()))
    }

    pub(super) fn conv(self, x: &Tensor, layer: &nn::Conv2D, stride: i64, padding: i64) -> Tensor {
        if self.is_plain() {
            return x.apply(layer);
        }
        x.conv2d(
            &self.cast(&layer.ws),
            self.bias(&layer.bs),
            [stride; 2],
            [padding; 2],
            [1; 2],
            1,
        )
    }

    pub(super) fn conv_transpose(self, x: &Tensor, layer: &nn::ConvTranspose2D) -> Tensor {
        if self.is_plain() {
            return x.apply(layer);
        }
        x.conv_transpose2d(
            &self.cast(&layer.ws),
            self.bias(&layer.bs),
            [UP_STRIDE; 2],
            [UP_PADDING; 2],
            [0; 2],
            1,
            [1; 2],
        )
    }

    pub(super) fn linear(self, x: &Tensor, layer: &nn::Linear) -> Tensor {
        if self.is_plain() {
            return x.apply(layer);
        }
        x.linear(&self.cast(&layer.ws), self.bias(&layer.bs))
    }
}
