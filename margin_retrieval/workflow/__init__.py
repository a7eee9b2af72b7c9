"""The workflow configuration: the typed config and the grid (built once by rules/common.smk, read by the jobs), the
checks run before any job, and the archive of runs kept across machines."""
