"""Evaluation: frozen encoders -> cached scene embeddings -> probes -> metrics -> the HARES report.

>>> from hares.evaluate import run_eval
>>> results = run_eval(["logmel", "random:sf_nfnet_tiny"], "esc50", data_root="/data", out="runs/eval")
"""

from hares.evaluate.embed import ClipPolicy, EmbeddingCache, extract
from hares.evaluate.encoders import Encoder, EvalEncoder, load_encoder
from hares.evaluate.metrics import accuracy, domain_averages, hares_score, mean_average_precision
from hares.evaluate.probe import ProbeConfig, train_probe
from hares.evaluate.run import BadAudioError, Protocol, run_eval

__all__ = [
    "BadAudioError",
    "ClipPolicy",
    "EmbeddingCache",
    "Encoder",
    "EvalEncoder",
    "ProbeConfig",
    "Protocol",
    "accuracy",
    "domain_averages",
    "extract",
    "hares_score",
    "load_encoder",
    "mean_average_precision",
    "run_eval",
    "train_probe",
]
