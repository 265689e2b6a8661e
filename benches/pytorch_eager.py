"""PyTorch eager baseline for `vaelab bench`: the same seed model, loss, optimizer and timing
(forward, backward and Adam on random inputs in [0, 1], median of the timed steps).

Usage (with the torch vaelab installs: `source scripts/libtorch-env.sh` sets the python):
  $VAELAB_TORCH_PYTHON benches/pytorch_eager.py --model residual --image-size 64 \
      --batch-size 64 [--precision fp32|bf16] [--device cpu|cuda] [--dataloader]

--dataloader feeds the steps from a uint8 TensorDataset through a DataLoader (shuffled,
converted to float per batch), as a PyTorch training script would.

--channels-last runs the model and its inputs in NHWC memory layout; --tf32 off makes fp32
convolutions and matmuls true fp32 on a GPU (PyTorch's default allows TF32 for cuDNN).

--phases also times each step's forward pass (with the loss), backward pass and optimizer
step apart, over another --steps steps, as `vaelab bench --phases` does.
"""
import argparse
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures"))
from seed_model import VAE  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=["residual", "plain"], default="residual")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--latent-dim", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dataloader", action="store_true")
    parser.add_argument("--images", type=int, default=4096)
    parser.add_argument("--phases", action="store_true")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--tf32", choices=["on", "off"], default="on")
    args = parser.parse_args()

    device = torch.device(args.device)
    # What a PyTorch user on a GPU turns on for fixed shapes, as vaelab's training does.
    torch.backends.cudnn.benchmark = device.type == "cuda"
    # PyTorch's default lets cuDNN convolutions run as TF32; `--tf32 off` is true fp32.
    torch.backends.cudnn.allow_tf32 = args.tf32 == "on"
    torch.backends.cuda.matmul.allow_tf32 = args.tf32 == "on"
    layout = torch.channels_last if args.channels_last else torch.contiguous_format
    torch.manual_seed(0)
    model = VAE(args.model == "residual", args.image_size, args.latent_dim).to(device)
    model = model.to(memory_format=layout)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    size = args.image_size
    fixed = torch.rand(args.batch_size, 3, size, size, device=device).to(memory_format=layout)

    def batches():
        if not args.dataloader:
            while True:
                yield fixed
        data = torch.randint(0, 256, (args.images, 3, size, size), dtype=torch.uint8)
        loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(data),
            batch_size=args.batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=min(4, os.cpu_count() or 1) if device.type == "cuda" else 0,
            pin_memory=device.type == "cuda",
            persistent_workers=device.type == "cuda",
        )
        while True:
            for (x,) in loader:
                x = x.to(device, non_blocking=True).float() / 255.0
                yield x.contiguous(memory_format=layout)

    source = batches()

    def wait():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def step(phase_seconds=None):
        started = time.perf_counter()

        def finished(phase):
            nonlocal started
            if phase_seconds is not None:
                wait()
                phase_seconds[phase].append(time.perf_counter() - started)
                started = time.perf_counter()

        x = next(source)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.precision == "bf16"):
            mu, logvar = model.encoder(x)
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
            recon = model.decoder(z)
        recon, mu, logvar = recon.float(), mu.float(), logvar.float()
        sse = (recon - x).pow(2).sum(dim=(1, 2, 3))
        kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(dim=1)
        loss = (sse + kl).mean()
        finished("forward")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        finished("backward")
        optimizer.step()
        finished("update")
        return loss.item()

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    median = statistics.median(times)
    phases = None
    if args.phases:
        phase_seconds = {"forward": [], "backward": [], "update": []}
        for _ in range(args.steps):
            step(phase_seconds)
        phases = {name: statistics.median(values) for name, values in phase_seconds.items()}
    result = {
        "framework": f"pytorch {torch.__version__} eager",
        "model": args.model,
        "image_size": size,
        "batch_size": args.batch_size,
        "precision": args.precision,
        "device": str(device),
        "dataloader": args.dataloader,
        "channels_last": args.channels_last,
        "tf32": torch.backends.cudnn.allow_tf32,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "threads": torch.get_num_threads(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "median_step_seconds": median,
        "median_images_per_second": args.batch_size / median,
        "phases": phases,
    }
    print(json.dumps(result), flush=True)
    sys.stderr.flush()
    # DataLoader workers can hold the interpreter's exit; the row is printed, so leave now.
    os._exit(0)


if __name__ == "__main__":
    main()
