"""Pre-training configuration: one flat dataclass and named presets written as Python functions (big_vision style).

`get_preset("paper-simclr", data="/data/audioset", out="runs/x")` returns a validated `PretrainConfig`;
`apply_overrides(cfg, ["lr=3e-4"])` applies `--set KEY=VALUE` strings with the strict parser of `hares.schema`
(types from each field's default or its declared `metadata={"spec": ...}`; unknown keys and the run flags
marked `fixed` are refused). Small presets shrink batch, steps and widths, never the
code path (docs/PROTOCOL.md section 6). The resolved config is saved as JSON next to every run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from hares.schema import Str, check_overrides, fixed_fields, parse_assignments, settable_fields

_FIXED = {"fixed": True}  # set by the command's own flags (or recorded only), never by --set

OBJECTIVES = ("simclr", "supervised", "byola", "cpc", "wav2vec2")
DATA_FORMATS = ("auto", "folder", "manifest", "audioset", "shards", "librispeech")
PRECISIONS = ("auto", "bf16", "fp32")
LR_SCHEDULES = ("constant", "linear")


@dataclass
class PretrainConfig:
    """Everything a pre-training run depends on. `batch_size` is the global batch (clips per step, all ranks)."""

    preset: str = field(default="custom", metadata=_FIXED)
    objective: str = "simclr"
    model: str = "sf_nfnet_f0"
    model_kwargs: dict = field(default_factory=dict)
    # data
    data: str = ""  # audio folder, CSV/JSONL manifest, AudioSet root, or a folder / list of WebDataset shards
    data_format: str = "auto"
    crop_seconds: float = 3.0
    num_workers: int = 0
    class_balanced: bool = False  # supervised: PSLA-style weighted sampling (docs/PRETRAINING.md section 4)
    audioset_subsets: tuple = ("balanced_train", "unbalanced_train")
    librispeech_subsets: tuple = ("train-clean-100", "train-clean-360", "train-other-500")  # the 960 h
    max_bad_in_a_row: int = 50  # this many undecodable files in a row ends the run with a clear error
    # objective heads and augmentation
    proj_hidden: int = 4096
    proj_layers: int = 3
    proj_dim: int = 128
    temperature: float = 0.1
    mix_max_ratio: float = 0.4  # example mixing: lam ~ U(0, mix_max_ratio); 0 disables it
    mix_p: float = 1.0
    num_classes: int = 0  # supervised: 0 = the number of labels found in the data
    byol_ema: float = 0.99
    byol_memory: int = 2048
    byol_mixup_ratio: float = 0.4
    byol_proj_dim: int = 256
    cpc_steps: int = 12  # CPC: future frames predicted in each direction (CPC_audio nPredicts)
    cpc_negatives: int = 128  # CPC: negatives per anchor from the global batch (CPC_audio negativeSamplingExt)
    w2v_mask_prob: float = 0.65  # wav2vec 2.0 (fairseq BASE): span-start probability
    w2v_mask_length: int = 10
    w2v_negatives: int = 100
    w2v_logit_temp: float = 0.1
    w2v_diversity_weight: float = 0.1
    w2v_feature_pen_weight: float = 10.0
    w2v_feature_grad_mult: float = 0.1
    w2v_gumbel_temp: tuple = (2.0, 0.5, 0.999995)  # (start, end, decay per update)
    # optimisation
    batch_size: int = 4096
    steps: int = 200_000
    lr: float = 2e-4
    warmup_steps: int = 5000  # linear warm-up, then `lr_schedule`
    lr_schedule: str = "constant"  # after warm-up: constant, or linear decay to 0 at `steps` (fairseq polynomial_decay)
    betas: tuple = (0.9, 0.999)
    adam_eps: float = 1e-8
    weight_decay: float = 0.0
    decoupled_weight_decay: bool = False  # AdamW-style decay (fairseq's Adam), else L2 added to the gradient
    agc_clip: float = 0.0  # adaptive gradient clipping factor (NFNets use 0.01); 0 = off
    agc_eps: float = 1e-3
    precision: str = "auto"  # bf16 autocast on GPU, fp32 on CPU
    device: str = field(default="auto", metadata={"spec": Str(choices=("auto", "cpu", "cuda"))})  # torchrun: per rank
    seed: int = 0
    # run
    out: str = "runs/pretrain"
    log_every: int = 10
    ckpt_every: int = 1000
    keep_checkpoints: int = 2
    resume: bool = field(default=False, metadata=_FIXED)
    overwrite: bool = field(default=False, metadata=_FIXED)  # replace a run already in `out`
    progress: bool = field(default=True, metadata=_FIXED)

    def validate(self) -> PretrainConfig:
        checks = [
            (self.objective in OBJECTIVES, f"objective must be one of {OBJECTIVES}, got {self.objective!r}"),
            (self.data_format in DATA_FORMATS, f"data_format must be one of {DATA_FORMATS}"),
            (self.precision in PRECISIONS, f"precision must be one of {PRECISIONS}"),
            (self.batch_size >= 2, "batch_size (the global batch) must be >= 2"),
            (self.steps >= 1, "steps must be >= 1"),
            (self.crop_seconds > 0, "crop_seconds must be > 0"),
            (0.0 <= self.mix_max_ratio <= 0.5, "mix_max_ratio must lie in [0, 0.5] so the clip stays dominant"),
            (0.0 <= self.mix_p <= 1.0, "mix_p must lie in [0, 1]"),
            (self.temperature > 0, "temperature must be > 0"),
            (self.proj_layers >= 1 and self.proj_hidden >= 1 and self.proj_dim >= 1, "projector sizes must be >= 1"),
            (self.lr > 0 and self.warmup_steps >= 0, "lr must be > 0 and warmup_steps >= 0"),
            (self.log_every >= 1 and self.ckpt_every >= 1, "log_every and ckpt_every must be >= 1"),
            (self.keep_checkpoints >= 1, "keep_checkpoints must be >= 1"),
            (0.0 <= self.byol_ema < 1.0, "byol_ema must lie in [0, 1)"),
            (self.num_workers >= 0, "num_workers must be >= 0"),
            (self.lr_schedule in LR_SCHEDULES, f"lr_schedule must be one of {LR_SCHEDULES}"),
            (self.adam_eps > 0, "adam_eps must be > 0"),
            (self.cpc_steps >= 1 and self.cpc_negatives >= 1, "cpc_steps and cpc_negatives must be >= 1"),
            (0.0 < self.w2v_mask_prob < 1.0 and self.w2v_mask_length >= 1, "w2v_mask_prob in (0, 1), mask_length >= 1"),
            (self.w2v_negatives >= 1 and self.w2v_logit_temp > 0, "w2v_negatives >= 1 and w2v_logit_temp > 0"),
            (len(self.w2v_gumbel_temp) == 3, "w2v_gumbel_temp is (start, end, decay)"),
            (self.device in ("auto", "cpu", "cuda"), f"device must be auto, cpu or cuda, got {self.device!r}"),
            (len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas), "betas must be two numbers in [0, 1)"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"invalid pre-training config: {msg}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PretrainConfig:
        unknown = set(d) - {f.name for f in fields(cls)}
        if unknown:
            raise KeyError(f"unknown config keys {sorted(unknown)}")
        d = {k: tuple(v) if isinstance(cls.__dataclass_fields__[k].default, tuple) else v for k, v in d.items()}
        return cls(**d).validate()


def override(cfg: PretrainConfig, **overrides: Any) -> PretrainConfig:
    """A copy of `cfg` with keyword overrides (type-checked, any field; unknown keys raise KeyError)."""
    checked = check_overrides(overrides, settable_fields(PretrainConfig, include_fixed=True), what="config key")
    return replace(cfg, **checked).validate()


def apply_overrides(cfg: PretrainConfig, assignments: Iterable[str]) -> PretrainConfig:
    """Apply `--set KEY=VALUE` strings; VALUE is a Python literal (`lr=3e-4`, `betas=(0.9,0.99)`) or a bare word.

    The run flags (`resume`, `overwrite`, `progress`) and the `preset` label are not offered: the command's own
    flags set them."""
    parsed = parse_assignments(assignments)
    checked = check_overrides(parsed, settable_fields(PretrainConfig), fixed_fields(PretrainConfig), "config key")
    return replace(cfg, **checked).validate()


# ---------------------------------------------------------------- presets


def debug() -> PretrainConfig:
    """Seconds on CPU: the smallest Slowfast NFNet, 1 s crops, tiny projector, a few steps."""
    return PretrainConfig(
        preset="debug",
        model="sf_nfnet_micro",
        crop_seconds=1.0,
        proj_hidden=64,
        proj_dim=32,
        byol_proj_dim=32,
        byol_memory=64,
        batch_size=8,
        steps=20,
        lr=1e-3,
        warmup_steps=2,
        log_every=1,
        ckpt_every=10,
    )


def demo() -> PretrainConfig:
    """`hares demo`'s pre-training (a few minutes on a laptop CPU): SimCLR on the smallest Slowfast NFNet.

    Short 0.5 s crops and a 256-wide projector keep a step under a second or two on 2 cores; the demo fixes the
    step count from a timed calibration chunk.
    """
    return PretrainConfig(
        preset="demo",
        model="sf_nfnet_micro",
        crop_seconds=0.5,
        proj_hidden=256,
        proj_dim=64,
        batch_size=64,
        steps=400,
        lr=2e-3,
        warmup_steps=20,
        log_every=10,
        ckpt_every=100,
    )


def paper_simclr() -> PretrainConfig:
    """The paper's SimCLR run (section 3 of the paper, docs/PROTOCOL.md section 6): batch 4096 x 200k steps."""
    return PretrainConfig(
        preset="paper-simclr",
        objective="simclr",
        model="sf_nfnet_f0",
        batch_size=4096,
        steps=200_000,
        warmup_steps=5000,
        num_workers=8,
        log_every=50,
        ckpt_every=2000,
    )


def paper_supervised() -> PretrainConfig:
    """The paper's supervised AudioSet run: linear 527-way head, BCE, batch 1024 x 100k steps."""
    return PretrainConfig(
        preset="paper-supervised",
        objective="supervised",
        model="sf_nfnet_f0",
        batch_size=1024,
        steps=100_000,
        warmup_steps=5000,
        num_classes=527,
        num_workers=8,
        log_every=50,
        ckpt_every=2000,
    )


def paper_byola() -> PretrainConfig:
    """BYOL-A v1's recipe (nttcslab/byol-a `config.yaml`) on its own encoder: 0.95 s crops, batch 256, Adam 3e-4,
    EMA 0.99, projector/predictor 4096 -> 256, Mixup memory 2048 (ratio 0.4). `--model sf_nfnet_f0` trains the
    paper's encoder with this framework instead.

    The step budget is a placeholder: the BYOL-A author quotes 500 epochs of (a tenth of) AudioSet (byol-a#11).
    """
    return PretrainConfig(
        preset="paper-byola",
        objective="byola",
        model="byola_cnn",
        crop_seconds=0.95,
        batch_size=256,
        steps=100_000,
        lr=3e-4,
        warmup_steps=0,
        byol_ema=0.99,
        byol_memory=2048,
        byol_mixup_ratio=0.4,
        byol_proj_dim=256,
        num_workers=8,
        log_every=50,
        ckpt_every=2000,
    )


def debug_cpc() -> PretrainConfig:
    """Seconds on CPU: tiny bidirectional CPC, 1 s crops (100 frames of 10 ms), the paper-cpc code path."""
    return PretrainConfig(
        preset="debug-cpc",
        objective="cpc",
        model="cpc_bidir_tiny",
        crop_seconds=1.0,
        cpc_negatives=32,
        batch_size=8,
        steps=20,
        lr=1e-3,
        warmup_steps=2,
        log_every=1,
        ckpt_every=10,
    )


def debug_wav2vec2() -> PretrainConfig:
    """Seconds on CPU: tiny wav2vec 2.0, 1 s crops (49 frames of 20 ms), fairseq BASE's masking, negatives and loss."""
    return PretrainConfig(
        preset="debug-wav2vec2",
        objective="wav2vec2",
        model="wav2vec2_tiny",
        crop_seconds=1.0,
        batch_size=8,
        steps=20,
        lr=1e-3,
        warmup_steps=2,
        betas=(0.9, 0.98),
        adam_eps=1e-6,
        weight_decay=0.01,
        decoupled_weight_decay=True,
        log_every=1,
        ckpt_every=10,
    )


def paper_cpc() -> PretrainConfig:
    """Bidirectional CPC with facebookresearch/CPC_audio's training settings (`cpc_default_config.py`):
    windows of 20480 samples (1.28 s, 128 frames of 10 ms), 12 predicted steps, 128 negatives, Adam 2e-4
    (0.9, 0.999, 1e-8), constant rate, batch 64 (`batchSizeGPU` 8 x 8 GPUs). Steps: CPC_audio's 200 epochs of
    LibriSpeech train-clean-100 (100.6 h cut into 1.28 s windows = 282,937 windows, 4,421 batches of 64 per
    epoch) = 884,200 steps. How the paper set CPC up (horizon, budget) is not published; `--data` takes
    LibriSpeech (the "(LS)" rows) or AudioSet.
    """
    return PretrainConfig(
        preset="paper-cpc",
        objective="cpc",
        model="cpc_bidir",
        crop_seconds=1.28,
        cpc_steps=12,
        cpc_negatives=128,
        batch_size=64,
        steps=884_200,
        lr=2e-4,
        warmup_steps=0,
        num_workers=8,
        log_every=50,
        ckpt_every=2000,
    )


def paper_wav2vec2() -> PretrainConfig:
    """wav2vec 2.0 BASE with fairseq's `wav2vec2_base_librispeech.yaml`: 400k updates, Adam (0.9, 0.98), eps 1e-6,
    decoupled weight decay 0.01, peak lr 5e-4 after 32k warm-up updates, linear decay to 0, crops of at most
    250,000 samples (15.625 s). fairseq batches by length (1.4M samples per GPU x 64 GPUs = 89.6M samples, ~1.56 h
    of audio per update); hares uses fixed crops: 384 crops of 15.625 s = 96M samples (+7%), 6 per GPU on 64 GPUs.
    Clips shorter than the crop are zero-padded (fairseq crops a batch to its shortest clip instead).
    """
    return PretrainConfig(
        preset="paper-wav2vec2",
        objective="wav2vec2",
        model="wav2vec2_base",
        crop_seconds=15.625,
        batch_size=384,
        steps=400_000,
        lr=5e-4,
        warmup_steps=32_000,
        lr_schedule="linear",
        betas=(0.9, 0.98),
        adam_eps=1e-6,
        weight_decay=0.01,
        decoupled_weight_decay=True,
        num_workers=8,
        log_every=50,
        ckpt_every=2000,
    )


PRESETS: dict[str, Callable[[], PretrainConfig]] = {
    "debug": debug,
    "demo": demo,
    "paper-simclr": paper_simclr,
    "paper-supervised": paper_supervised,
    "paper-byola": paper_byola,
    "debug-cpc": debug_cpc,
    "debug-wav2vec2": debug_wav2vec2,
    "paper-cpc": paper_cpc,
    "paper-wav2vec2": paper_wav2vec2,
}


def get_preset(name: str, **overrides: Any) -> PretrainConfig:
    """A named preset with keyword overrides applied and validated."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose from: {', '.join(PRESETS)}")
    return override(PRESETS[name](), **overrides)
