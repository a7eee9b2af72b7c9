"""Self-distillation with adaptive relevance margins: the importable core of the workflow."""
