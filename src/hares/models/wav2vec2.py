"""wav2vec 2.0 BASE (the paper's Table 2 rows "Wav2Vec2.0", 95m parameters, waveform input), built on transformers.

The network is `transformers.Wav2Vec2ForPreTraining` (feature encoder, feature projection, masked-frame
embedding, 12-layer post-LN transformer with convolutional positions, Gumbel product quantizer, the two
projections into the 256-d contrastive space), configured as fairseq's `wav2vec2_base_librispeech.yaml` /
`Wav2Vec2Config` defaults (facebookresearch/fairseq `examples/wav2vec`): group-norm feature extractor without
conv bias, 768-d / 12 heads / 3072 FFN, 128-wide convolutional positions in 16 groups, 2 x 320 codewords of
128 dims, final_dim 256, dropout 0.1 (attention 0.1, activation 0), `dropout_input` and `dropout_features` 0.1,
layer drop 0.05. hares uses transformers' modules as they are; the pre-training objective
(`hares.train.objectives.Wav2Vec2`) calls them and computes fairseq's loss itself (see there why).

Parameter count: **95,044,608** (the whole pre-training network, which is what the checkpoint holds: the
transformer model 94,371,712, quantizer 410,240, `project_q` 65,792, `project_hid` (fairseq `final_proj`)
196,864). fairseq's BASE has the same tensors one to one (transformers' conversion script maps each fairseq
tensor to one of these), so the count is the same; the paper's "95m" is this network. Evaluation uses the
transformer model only (the quantizer and projections are training-time parts).

Evaluation (`hares eval`): `forward` time-averages the last transformer layer's output (768-d); `forward_layers`
offers the 13 hidden states (the input to the first layer and each layer's output), time-averaged, for a
per-layer probe (the output of the last layer of a masked-prediction model is often not its best layer).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hares.models._registry import register_model, schema_from_defaults

# fairseq wav2vec2_base_librispeech, in transformers' names (the rest are transformers' defaults, equal to fairseq's)
BASE = {
    "feat_extract_norm": "group",
    "conv_bias": False,
    "do_stable_layer_norm": False,
    "hidden_dropout": 0.1,
    "attention_dropout": 0.1,
    "activation_dropout": 0.0,
    "feat_proj_dropout": 0.1,  # fairseq dropout_input
    "feat_quantizer_dropout": 0.1,  # fairseq dropout_features
    "layerdrop": 0.05,  # fairseq encoder_layerdrop
    "num_codevectors_per_group": 320,
    "num_codevector_groups": 2,
    "codevector_dim": 256,
    "proj_codevector_dim": 256,  # fairseq final_dim
    "apply_spec_augment": True,  # masks come from the objective (`mask_time_indices`)
    "mask_time_prob": 0.65,  # fairseq's value; > 0 makes transformers create the mask embedding (see below)
}
TINY = {
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 128,
    "conv_dim": (32, 32, 32, 32, 32, 32, 32),
    "num_conv_pos_embeddings": 16,
    "num_conv_pos_embedding_groups": 4,
    "num_codevectors_per_group": 32,
    "codevector_dim": 32,
    "proj_codevector_dim": 32,
}


def _transformers():
    try:
        import transformers
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "wav2vec 2.0 needs the `transformers` package: pip install 'hares[hf]' (or pip install transformers)"
        ) from e
    return transformers


class Wav2Vec2Network(nn.Module):
    """`transformers.Wav2Vec2ForPreTraining` as a hares network: waveform (B, N) -> (B, hidden_size)."""

    input_kind = "waveform"

    def __init__(self, **config: Any) -> None:
        super().__init__()
        tf = _transformers()
        self.config = tf.Wav2Vec2Config(**config)
        self.hf = tf.Wav2Vec2ForPreTraining(self.config)
        # transformers would draw masks itself (numpy's global RNG) whenever it runs in training mode; hares' objective
        # passes `mask_time_indices` drawn from the step's generator, so switch transformers' own masking off.
        self.config.mask_time_prob = 0.0
        self.embed_dim = self.config.hidden_size
        self.num_layers = self.config.num_hidden_layers

    def _check(self, wav: torch.Tensor) -> torch.Tensor:
        if wav.ndim != 2:
            raise ValueError(f"wav2vec 2.0 expects waveforms (B, N), got {tuple(wav.shape)}")
        if wav.shape[1] < 400:  # the feature encoder's receptive field: shorter clips are zero-padded
            wav = nn.functional.pad(wav, (0, 400 - wav.shape[1]))
        return wav

    def forward_frames(self, wav: torch.Tensor) -> torch.Tensor:
        """(B, N) -> (B, T, hidden_size): the last transformer layer, one frame per 20 ms."""
        return self.hf.wav2vec2(self._check(wav)).last_hidden_state

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return self.forward_frames(wav).mean(dim=1)  # (B, hidden_size)

    def forward_layers(self, wav: torch.Tensor) -> list[tuple[str, torch.Tensor]]:
        """Time-averaged hidden states: the transformer's input and each layer's output, [(name, (B, D)), ...]."""
        out = self.hf.wav2vec2(self._check(wav), output_hidden_states=True)
        return [(f"layer{i}", h.mean(dim=1)) for i, h in enumerate(out.hidden_states)]


# The transformers config keys BASE and TINY set, typed by their values: nothing else (no paths, no hub ids) is
# accepted from a checkpoint's config or `create_model`.
SCHEMA = schema_from_defaults({**BASE, **TINY})


@register_model(schema=SCHEMA)
def wav2vec2_base(**kwargs: Any) -> Wav2Vec2Network:
    """wav2vec 2.0 BASE (transformers Wav2Vec2ForPreTraining, fairseq BASE settings), 95,044,608 parameters."""
    return Wav2Vec2Network(**{**BASE, **kwargs})


@register_model(schema=SCHEMA)
def wav2vec2_tiny(**kwargs: Any) -> Wav2Vec2Network:
    """A tiny wav2vec 2.0 for tests and CPU runs: 2 layers of 64, 32-channel feature encoder, 2 x 32 codewords."""
    return Wav2Vec2Network(**{**BASE, **TINY, **kwargs})
