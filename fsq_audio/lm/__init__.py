"""Token language model over the codec's FSQ tokens: training, generation and entropy coding.

    >>> from fsq_audio.lm.release import load_lm
    >>> lm = load_lm("runs/lm-small/export")        # TokenLM, eval mode
    >>> from fsq_audio.lm.entropy import LMEntropyCoder
    >>> coder = LMEntropyCoder.from_pretrained("runs/lm-small/export", codec)

See docs/lm.md for the architecture and the numerics of the arithmetic coder.
"""
