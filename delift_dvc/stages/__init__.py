"""Stages: what each DVC stage runs (ingest, score, select, finetune, evaluate), file mode and
store reports, with their metrics, plots and progress lines. The CLI calls these."""
