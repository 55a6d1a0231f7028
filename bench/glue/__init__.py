"""GLUE: task table, data import and storage, official metrics. Framework-free (numpy, pyarrow, scikit-learn)."""
