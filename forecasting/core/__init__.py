"""The bottom layer: configs as data, the one error type, the one atomic writer, the one artifact
format, device resolution and torchrun process-group plumbing. Imports nothing else of the package."""
