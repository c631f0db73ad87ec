"""Typed errors: every user-facing failure is one of these, printed as one line by the CLI."""

from __future__ import annotations


class FsqAudioError(Exception):
    """Base class of all errors fsq_audio raises on purpose."""


class AudioError(FsqAudioError):
    """An audio file cannot be read, is empty, or holds unusable samples."""


class BitstreamError(FsqAudioError):
    """A .fsqa file is corrupt, truncated, of an unknown version or not .fsqa at all."""


class ModelError(FsqAudioError):
    """A model directory is missing, malformed, unsafe, or does not match a stream."""


class ConfigError(FsqAudioError):
    """A config file or override has unknown keys or invalid values."""
