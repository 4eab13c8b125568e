"""hares: learning and evaluating universal audio representations (Wang et al., ICASSP 2022)."""

__version__ = "0.1.0"
