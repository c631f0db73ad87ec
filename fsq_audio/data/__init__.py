"""Data: manifests (JSON lines of audio files) and training datasets."""
