"""prunestudy: reproduce Liu et al. 2018 and Crowley et al. 2018 on neural-network pruning."""

__version__ = "0.1.0"
