"""One-off studies whose results are committed under docs/results (each records its command)."""
