"""Job utilities: errors reported without a traceback, atomic file output, job logs, progress lines."""
