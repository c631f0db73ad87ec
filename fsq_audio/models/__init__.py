"""Codec networks: encoder, decoders, the Codec model, and the training discriminators."""
