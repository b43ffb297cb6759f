"""The utility store: samples, d0 and d values, versions and selections in immutable Parquet
segments, queried with DuckDB. Knows nothing of models."""

from delift_dvc.store.catalog import Store, VersionInfo

__all__ = ["Store", "VersionInfo"]
