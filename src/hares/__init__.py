"""hares: learning and evaluating universal audio representations (Wang et al., ICASSP 2022).

`hares.create_model`, `hares.list_models`, `hares.get_task`, `hares.list_tasks` and `hares.run_eval` are
re-exported lazily, so `import hares` (and `hares --help`) does not pay for importing torch.
"""

__version__ = "0.1.0"

_LAZY = {
    "create_model": "hares.models",
    "list_models": "hares.models",
    "load_checkpoint": "hares.models",
    "get_task": "hares.tasks",
    "list_tasks": "hares.tasks",
    "run_eval": "hares.evaluate",
    "pretrain": "hares.train",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'hares' has no attribute {name!r}")
