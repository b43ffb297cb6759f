"""Quality: LoRA fine-tuning, held-out evaluation, and the comparison grid over methods and
budgets. Knows nothing of selection internals."""
