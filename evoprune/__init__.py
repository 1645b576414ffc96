"""evoprune: prune PyTorch CNNs by evolutionary multi-objective optimisation with pymoo."""
__version__ = "0.1.0"
