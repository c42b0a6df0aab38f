"""Sweeps and tuning: *what* to run (grids; Optuna studies next) apart from *where* to run it
(launchers: local processes now; Ray, Slurm, HTCondor as small additions)."""
