"""Training throughput: every model family fp32 vs bf16 vs channels-last vs compiled, and DCGAN against a reference loop.

    python benchmarks/throughput.py                                   # everything, ~5 timed seconds a case
    python benchmarks/throughput.py --seconds 3 --out benchmarks/results/throughput_cpu.json --note "..."
    python benchmarks/throughput.py --scale smoke                     # CI: tiny models, one timed step a case

**The reference loop** is pytorch/examples' DCGAN training step (``dcgan/main.py``), written here from its
published settings, not copied: ngf = ndf = 64, 64x64 RGB, batch 64, Adam(lr 2e-4, betas (0.5, 0.999)),
``BCELoss`` on a D that ends in a sigmoid, DCGAN's N(0, 0.02) init, and its iteration: D backward on the reals,
one G forward whose fakes serve D (detached) and then G, ``.item()`` of the losses every iteration. It runs
side by side with ganlib's Trainer on the same networks, the same in-memory batches and the same batch size,
one step of each in turn (so a busy machine slows both alike), and the table gives ganlib's samples/s over the
reference's as a ratio.

Times whole steps (n_critic D steps + one G step) after a warm-up (which includes compilation), and reports
the median step. Numbers are comparable within one run only: machines here are shared and noisy.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn

import ganlib
from ganlib import data, losses, precision
from ganlib.train import Trainer

SIZES = {  # per scale: image side, batch, widths
    "full": dict(side=32, batch=64, ref_side=64, ref_width=64, ref_batch=64, width=64, mlp=512, sg=(1024, 64)),
    "smoke": dict(side=32, batch=8, ref_side=32, ref_width=4, ref_batch=8, width=4, mlp=16, sg=(64, 4)),
}


# -- the families ----------------------------------------------------------------------------------

def images(channels: int, side: int, batch: int, device: torch.device) -> data.TensorSource:
    x = data.mnist(32, "train")[0] if channels == 1 else data.shapes(max(512, 4 * batch), size=side).images
    return data.TensorSource(x[:max(512, 4 * batch)], batch_size=batch, device=device)


def bce() -> Dict[str, Any]:
    return dict(d_loss=losses.discriminator_bce, g_loss=losses.generator_nonsaturating)


def family_cases(s: Dict[str, Any], device: torch.device) -> Dict[str, Callable[[], Tuple]]:
    """name -> () -> (G, D, source, Trainer settings); every family of the course at its chapter's loss."""
    from ganlib.models import MLPDiscriminator, MLPGenerator, cgan, dcgan, lapgan, pggan, stylegan
    side, batch, width = s["side"], s["batch"], s["width"]
    sg_base, sg_max = s["sg"]
    wgan_gp = dict(d_loss=lambda r, f: losses.critic_wasserstein(r, f) + 1e-3 * losses.drift_penalty(r),
                   g_loss=losses.generator_wasserstein, lr=1e-3, betas=(0.0, 0.99),
                   d_penalty=lambda D, real, fake, y: 10 * losses.gradient_penalty(D, real, fake))

    def toy():
        return (MLPGenerator(hidden=s["mlp"], depth=3), MLPDiscriminator(hidden=s["mlp"], depth=3),
                data.SamplerSource(data.toy("grid").sample, 256, device=device), bce())

    def dcgan_case():
        return dcgan.Generator(100, side, 1, width), dcgan.Discriminator(side, 1, width), images(1, side, batch, device), bce()

    def cgan_case():
        x, y = data.mnist(32, "train")
        return (cgan.ConditionalGenerator(10, 100, side, 1, width), cgan.ConditionalDiscriminator(10, side, 1, width),
                data.TensorSource(x, y, batch_size=batch, device=device), bce())

    def lapgan_case():  # the finest level (32x32) of chapter 08's pyramid, trained on real residuals
        model = lapgan.LapGAN(1, 32, 3, z_dim=64, base_hidden=width // 2, hidden=(width // 2, width // 4), kernel=3,
                              base="conv")
        x, cond = lapgan.level_data(data.mnist(32, "train")[0], 3, 2)
        latent = lambda n: model.noise(2, n, device)  # noqa: E731
        return (model.generators[2], model.discriminators[2], data.TensorSource(x, cond, batch_size=batch, device=device),
                dict(bce(), latent=latent))

    def pggan_case():  # the top level (32x32), where it spends most of its steps
        ch = (width, width, width // 2, width // 4)
        return (pggan.PGGANGenerator(img_channels=1, channels=ch), pggan.PGGANDiscriminator(img_channels=1, channels=ch),
                images(1, side, batch, device), wgan_gp)

    def style_case(modulation: str):
        def make():
            return (stylegan.StyleGenerator(img_channels=3, fmap_base=sg_base, fmap_max=sg_max, modulation=modulation),
                    stylegan.StyleDiscriminator(img_channels=3, fmap_base=sg_base, fmap_max=sg_max),
                    images(3, side, batch, device), dict(bce(), d_penalty=losses.r1_regularizer(1.0),
                                                         d_penalty_every=16, lr=2e-3, betas=(0.0, 0.99)))
        return make

    return {
        f"toy MLP 3x{s['mlp']}, batch 256": toy,
        f"DCGAN {side}px MNIST, width {width}, batch {batch}": dcgan_case,
        f"CGAN (one-hot) {side}px MNIST, width {width}, batch {batch}": cgan_case,
        f"LapGAN 32x32 level, batch {batch}": lapgan_case,
        f"PGGAN 32px top level, WGAN-GP, batch {batch}": pggan_case,
        f"StyleGAN 32px shapes, lazy R1, batch {batch}": style_case("adain"),
        f"StyleGAN2 demodulation, batch {batch}": style_case("demod"),
    }


VARIANTS = {  # name -> Trainer options
    "fp32": dict(),
    "bf16": dict(precision="bf16"),
    "fp32 channels_last": dict(channels_last=True),
    "fp32 compiled": dict(compile=True),
}


def trainer_for(make: Callable[[], Tuple], options: Dict[str, Any], device: torch.device) -> Trainer:
    torch.manual_seed(0)
    G, D, source, settings = make()
    return Trainer(G, D, source, progress=False, log_every=10**9, device=device, **settings, **options)


def _timed(step: Callable[[], None], device: torch.device) -> float:
    _sync(device)
    start = time.perf_counter()
    step()
    _sync(device)
    return time.perf_counter() - start


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def chunk(step_seconds: float, target: float) -> int:
    """Steps per timed call: enough that a call lasts ~``target`` s, so per-call overheads stay negligible."""
    return max(1, min(100, round(target / max(step_seconds, 1e-6))))


def race(runners: Dict[str, Callable[[int], None]], seconds: float, min_rounds: int,
         device: torch.device) -> Dict[str, Tuple[float, int]]:
    """Median seconds per step of each ``runner(k)`` (k more steps), timed in turns: one chunk of each per round,
    so load from other processes falls on every runner alike. Each is warmed up first (compilation included)."""
    chunks = {}
    for name, run in runners.items():
        run(1)  # warm-up: oneDNN/cuDNN plans, the allocator, compilation
        chunks[name] = chunk(_timed(lambda: run(1), device), target=min(0.5, seconds))
    times: Dict[str, List[float]] = {name: [] for name in runners}
    start = time.perf_counter()
    while len(times[next(iter(times))]) < min_rounds or time.perf_counter() - start < seconds * len(runners):
        for name, run in runners.items():
            k = chunks[name]
            times[name].append(_timed(lambda: run(k), device) / k)
    return {name: (statistics.median(t), len(t) * chunks[name]) for name, t in times.items()}


def fit_more(trainer: Trainer) -> Callable[[int], None]:
    """k more steps in one ``fit`` call, as a user trains (fit's own start-up is paid once per call)."""
    return lambda k: trainer.fit(trainer.step + k)


def bench_family(name: str, make: Callable[[], Tuple], variants: Sequence[str], seconds: float, min_rounds: int,
                 device: torch.device) -> List[Dict[str, Any]]:
    """One row per variant of a family, the variants timed in turns."""
    rows, runners, batch = [], {}, 0
    for variant in variants:
        try:
            trainer = trainer_for(make, VARIANTS[variant], device)
            fit_more(trainer)(1)  # fails here, not inside the race, if the variant does not run
        except Exception as err:  # a family or variant that fails here is a row, not a crash
            rows.append({"model": name, "variant": variant, "error": f"{type(err).__name__}: "
                                                                      f"{str(err).splitlines()[0][:200]}"})
            continue
        runners[variant], batch = fit_more(trainer), getattr(trainer.data, "batch_size", 0)
    for variant, (per_step, steps) in race(runners, seconds, min_rounds, device).items():
        rows.append({"model": name, "variant": variant, "steps_per_s": round(1 / per_step, 3),
                     "samples_per_s": round(batch / per_step, 1), "timed_steps": steps})
    return sorted(rows, key=lambda row: list(variants).index(row["variant"]))


# -- the reference loop: pytorch/examples' DCGAN, rewritten from its settings ----------------------

class ReferenceLoop:
    """pytorch/examples ``dcgan/main.py``'s networks and training iteration (nz 100, ngf = ndf, nc 3)."""

    def __init__(self, width: int, side: int, device: torch.device, nz: int = 100) -> None:
        self.nz, self.device = nz, device
        self.netG, self.netD = _reference_g(nz, width, side).to(device), _reference_d(width, side).to(device)
        for net in (self.netG, self.netD):
            net.apply(_reference_init)
        self.criterion = nn.BCELoss()
        self.optD = torch.optim.Adam(self.netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.optG = torch.optim.Adam(self.netG.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step(self, real: torch.Tensor) -> Tuple[float, float]:
        b = real.size(0)
        self.netD.zero_grad()
        label = torch.full((b,), 1.0, device=self.device)
        output = self.netD(real).view(-1)
        err_real = self.criterion(output, label)
        err_real.backward()
        fake = self.netG(torch.randn(b, self.nz, 1, 1, device=self.device))
        label.fill_(0.0)
        err_fake = self.criterion(self.netD(fake.detach()).view(-1), label)
        err_fake.backward()
        self.optD.step()
        self.netG.zero_grad()
        label.fill_(1.0)
        err_g = self.criterion(self.netD(fake).view(-1), label)
        err_g.backward()
        self.optG.step()
        return (err_real + err_fake).item(), err_g.item()  # the examples print these every iteration


def _ladder(side: int) -> int:
    return (side // 4).bit_length() - 1  # 2x up-samplings from 4x4: 4 at 64 px


def _reference_g(nz: int, ngf: int, side: int) -> nn.Sequential:
    n = _ladder(side)
    widths = [ngf * 2 ** (n - 1 - i) for i in range(n)]  # 64 px: 512, 256, 128, 64
    layers: List[nn.Module] = [nn.ConvTranspose2d(nz, widths[0], 4, 1, 0, bias=False), nn.BatchNorm2d(widths[0]),
                               nn.ReLU(True)]
    for a, b in zip(widths, widths[1:]):
        layers += [nn.ConvTranspose2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU(True)]
    return nn.Sequential(*layers, nn.ConvTranspose2d(widths[-1], 3, 4, 2, 1, bias=False), nn.Tanh())


def _reference_d(ndf: int, side: int) -> nn.Sequential:
    n = _ladder(side)
    widths = [ndf * 2 ** i for i in range(n)]  # 64 px: 64, 128, 256, 512
    layers: List[nn.Module] = [nn.Conv2d(3, widths[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)]
    for a, b in zip(widths, widths[1:]):
        layers += [nn.Conv2d(a, b, 4, 2, 1, bias=False), nn.BatchNorm2d(b), nn.LeakyReLU(0.2, inplace=True)]
    return nn.Sequential(*layers, nn.Conv2d(widths[-1], 1, 4, 1, 0, bias=False), nn.Sigmoid())


def _reference_init(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def comparison_variants(device: torch.device, with_compile: bool) -> Dict[str, Dict[str, Any]]:
    """ganlib's settings to set beside the reference: the same work first, then each fast path added."""
    fast = dict(channels_last=True, reuse_fakes=True)
    rows = {"ganlib Trainer, fp32 (same settings)": {},
            "+ channels_last": dict(channels_last=True),
            "+ channels_last + reuse_fakes": fast}
    best = precision.resolve("auto", device)
    if best != "fp32":
        rows[f"+ channels_last + reuse_fakes + {best} (auto)"] = dict(fast, precision=best)
    if with_compile:
        rows["+ channels_last + reuse_fakes + compile"] = dict(fast, compile=True)
    return rows


def compare_with_reference(s: Dict[str, Any], seconds: float, min_steps: int, device: torch.device,
                           with_compile: bool) -> Dict[str, Any]:
    """Reference loop vs ganlib variants on the same batches, one step each in turn; ratio = ganlib / reference."""
    from ganlib.models import dcgan
    side, width, batch = s["ref_side"], s["ref_width"], s["ref_batch"]
    source = images(3, side, batch, device)
    torch.manual_seed(0)
    ref = ReferenceLoop(width, side, device)
    index = {"i": 0}

    def ref_steps(k: int) -> None:
        for _ in range(k):
            ref.step(source.batch(index["i"]))
            index["i"] += 1

    runners: Dict[str, Callable[[int], None]] = {"reference loop (pytorch/examples DCGAN, fp32)": ref_steps}
    for name, options in comparison_variants(device, with_compile).items():
        make = lambda: (dcgan.Generator(100, side, 3, width), dcgan.Discriminator(side, 3, width), source,  # noqa: E731
                        dict(bce(), lr=2e-4, betas=(0.5, 0.999)))
        runners[name] = fit_more(trainer_for(make, options, device))
    timed = race(runners, seconds, min_steps, device)
    reference = timed[next(iter(runners))][0]
    rows = [{"loop": name, "samples_per_s": round(batch / per_step, 2),
             "ratio_to_reference": round(reference / per_step, 3), "timed_steps": steps}
            for name, (per_step, steps) in timed.items()]
    return {"settings": f"DCGAN {side}x{side} RGB, ngf = ndf = {width}, batch {batch}, Adam(2e-4, (0.5, 0.999)), "
                        "in-memory batches (procedural shapes)", "rows": rows}


# -- the run ---------------------------------------------------------------------------------------

def machine(device: torch.device) -> Dict[str, Any]:
    info = {"device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "python": platform.python_version()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    else:
        info["cpu"] = precision._cpu_name()
        info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
        info["bf16_faster_here (precision auto)"] = precision.bf16_faster_on_cpu()
    return info


def markdown(result: Dict[str, Any]) -> str:
    lines = ["| model | variant | G steps/s | samples/s |", "|---|---|---|---|"]
    for row in result["families"]:
        if "error" in row:
            lines.append(f"| {row['model']} | {row['variant']} | not available: {row['error']} | |")
        else:
            lines.append(f"| {row['model']} | {row['variant']} | {row['steps_per_s']:.2f} | {row['samples_per_s']:.0f} |")
    comparison = result["reference_comparison"]
    lines += ["", comparison["settings"], "", "| loop | samples/s | ratio to reference |", "|---|---|---|"]
    lines += [f"| {r['loop']} | {r['samples_per_s']:.1f} | {r['ratio_to_reference']:.2f}x |" for r in comparison["rows"]]
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> Dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per case (at least 2 steps)")
    parser.add_argument("--compare-seconds", type=float, help="timed seconds per loop in the reference comparison "
                                                              "(default: --seconds)")
    parser.add_argument("--scale", choices=sorted(SIZES), default="full", help="smoke: tiny models for CI")
    parser.add_argument("--threads", type=int, default=1, help="torch threads on a CPU (default 1)")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile (its warm-up is minutes)")
    parser.add_argument("--only", default="", help="comma-separated substrings of the family names to run")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--note", default="", help="a remark stored in the JSON (e.g. what else ran)")
    args = parser.parse_args(argv)
    device = ganlib.device()
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    smoke = args.scale == "smoke"
    seconds, min_steps = (0.0, 1) if smoke else (args.seconds, 2)
    with_compile = not (args.no_compile or smoke)
    s = SIZES[args.scale]
    result: Dict[str, Any] = {"machine": machine(device), "scale": args.scale, "seconds_per_case": seconds,
                              "note": args.note, "families": []}
    print(f"device: {device} | torch {torch.__version__} | {torch.get_num_threads()} threads", flush=True)
    wanted = [w for w in args.only.split(",") if w]
    for name, make in family_cases(s, device).items():
        if wanted and not any(w.lower() in name.lower() for w in wanted):
            continue
        variants = [v for v in VARIANTS if with_compile or not v.endswith("compiled")]
        for row in bench_family(name, make, variants, seconds, min_steps, device):
            result["families"].append(row)
            print(f"  {name} | {row['variant']} | {row.get('steps_per_s', row.get('error'))}", flush=True)
    compare_seconds = seconds if smoke or args.compare_seconds is None else args.compare_seconds
    result["reference_comparison"] = compare_with_reference(s, compare_seconds, min_steps, device, with_compile)
    result["compare_seconds_per_loop"] = compare_seconds
    print(markdown(result))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    return result


if __name__ == "__main__":
    main()
