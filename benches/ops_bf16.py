"""Forward + backward time of the seed model's layer types in fp32 and bf16 on the CPU.

Tells whether this CPU computes bf16 natively (faster than fp32) or emulates it (slower):
  $VAELAB_TORCH_PYTHON benches/ops_bf16.py
Shapes are those of the seed model at 64x64, batch 64; 2 threads, mean of 5 after 2 warm-ups.
"""
import time

import torch
import torch.nn.functional as F


def timed(step, repeats=5):
    step()
    step()
    started = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - started) / repeats * 1000


def layers(dtype):
    def param(*shape):
        return torch.rand(*shape).to(dtype).requires_grad_()

    x1, w1 = param(64, 32, 32, 32), param(64, 32, 4, 4)
    x2, w2 = param(64, 64, 16, 16), param(64, 64, 3, 3)
    x3, w3 = param(64, 64, 16, 16), param(64, 32, 4, 4)
    x4, w4 = param(64, 8192), param(128, 8192)
    return {
        "conv 4x4 stride 2, 32->64 ch, 32x32": lambda: F.conv2d(x1, w1, stride=2, padding=1),
        "conv 3x3, 64->64 ch, 16x16": lambda: F.conv2d(x2, w2, padding=1),
        "transposed conv 4x4 stride 2, 64->32 ch": lambda: F.conv_transpose2d(
            x3, w3, stride=2, padding=1
        ),
        "linear 8192->128": lambda: F.linear(x4, w4),
    }


def main():
    torch.set_num_threads(2)
    fp32, bf16 = layers(torch.float32), layers(torch.bfloat16)
    print("| layer | fp32 ms | bf16 ms | bf16 / fp32 |")
    print("|---|---|---|---|")
    for name in fp32:
        a = timed(lambda: fp32[name]().sum().backward())
        b = timed(lambda: bf16[name]().sum().backward())
        print(f"| {name} | {a:.1f} | {b:.1f} | {b / a:.1f} |")


if __name__ == "__main__":
    main()
