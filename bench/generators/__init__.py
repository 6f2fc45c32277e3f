"""Reimplemented generators, one paper per file (plain ``torch.nn.Module`` + losses + step)."""
