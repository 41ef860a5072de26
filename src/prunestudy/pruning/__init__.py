"""Pruning: surgery and masks, the iterative and one-shot runners, budgets and the arms."""
