"""The model wing: the encoder, the heads shipped in heads/ and heads_extra/ (trained on data/), and their training."""
