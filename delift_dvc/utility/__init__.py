"""The utility: sequence layout and templates, model loading, the teacher-forced scorer (the
PairScorer protocol and its transformers backend), sentence embeddings, knn candidates, and
blocks of scoring work. Knows nothing of DVC or DuckDB."""
