"""Data: reading and validating samples, content ids, the held-out split, versions and diffs.
Knows nothing of models or DuckDB."""

from delift_dvc.data.samples import Sample, load_samples, read_samples, write_samples

__all__ = ["Sample", "load_samples", "read_samples", "write_samples"]
