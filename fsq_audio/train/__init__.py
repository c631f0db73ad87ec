"""Codec training with Hugging Face accelerate (CPU, one GPU, many GPUs/nodes)."""
