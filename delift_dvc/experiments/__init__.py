"""Experiments: the `compare` grid run as `dvc exp run` experiments over methods, budgets and
seeds (grid), its runner, the harvest of each run's stage outputs into tables, and the report
files. On top of the stages: it drives them through DVC and reads what they write."""
