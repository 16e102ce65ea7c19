"""Positions the decoder can read: ordered embedding rows for the coordinate pieces, and a
position code for every visual-token slot (the eleventh run, docs/toy-world.md).

Both start the LLM with position information in a form a linear map can use, instead of leaving
it to be discovered: neighbouring coordinates get similar rows (:func:`ordinal_rows`), and each
visual token is told which view it comes from and where its grid cell lies in the padded square
(:func:`init_image_positions`; the model must have ``image_positions``).
"""

from __future__ import annotations

import math

import torch

from ..tasks.formats import coordinate_texts
from ..tokenizer import Tokenizer


ORDINAL_FREQUENCIES = 32
ORDINAL_WIDTH = 0.03
"""Width (a Gaussian's sigma, in coordinate units) of :func:`ordinal_rows`' similarity: the cosine
of two coordinates' rows is 0.59 at 0.03 apart and 0.1 at 0.06 apart."""


def ordinal_rows(values: torch.Tensor, dim: int, norm: float, seed: int = 0,
                 frequencies: int = ORDINAL_FREQUENCIES, width: float = ORDINAL_WIDTH) -> torch.Tensor:
    """(len(values), dim) rows whose dot products fall off smoothly with the distance of the
    values in [0, 1], like a Gaussian of sigma ``width``: ``[cos(pi k v), sin(pi k v)]`` for
    ``k = 1..frequencies`` (period 2, so 0 and 1 differ) weighted by the Gaussian's spectrum, in
    a random orthonormal ``2 * frequencies``-dimensional subspace (``seed``), each row of length
    ``norm``."""
    if 2 * frequencies > dim:
        raise ValueError(f"{frequencies} frequencies need {2 * frequencies} dims, the table has {dim}")
    k = torch.arange(1, frequencies + 1, dtype=torch.float64) * math.pi
    weight = torch.exp(-0.5 * (k * width) ** 2)
    angles = values.double()[:, None] * k
    features = torch.cat([angles.cos(), angles.sin()], dim=1) * weight.repeat(2).sqrt()
    features = features / features.norm(dim=1, keepdim=True)
    g = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(dim, 2 * frequencies, generator=g, dtype=torch.float64))
    return (features @ basis.T * norm).float()


def init_coordinate_rows(model, tokenizer: Tokenizer, seed: int = 0) -> int:
    """Give the coordinate pieces (``0.00`` ... ``1.00``) of ``tokenizer`` ordered rows in the
    LLM's input embedding and output tables (:func:`ordinal_rows`, at each table's mean row
    length), so that neighbouring coordinates start close and a predicted coordinate can be
    nearly right. Returns how many pieces were set (0 for a digit-by-digit tokenizer)."""
    texts = coordinate_texts()
    ids = [tokenizer.sp.piece_to_id(t) for t in texts]
    found = [(i, float(t)) for i, t in zip(ids, texts) if i != tokenizer.sp.unk_id()]
    if not found:
        return 0
    index = torch.tensor([i for i, _ in found])
    values = torch.tensor([v for _, v in found])
    llm = model.llm
    with torch.no_grad():
        for offset, table in enumerate((llm.tok_embeddings.weight, llm.output.weight)):
            norm = float(table.float().norm(dim=1).mean())
            rows = ordinal_rows(values, table.shape[1], norm, seed=seed + offset)
            table[index] = rows.to(table.dtype).to(table.device)
    return len(found)


def slot_geometry(cfg) -> tuple[torch.Tensor, torch.Tensor]:
    """Per visual-token slot of one image (``cfg.image_tokens``): its view index (0 global, then
    the crops in raster order) and, for the fused encoders' grid tokens, the centre (x, y) of its
    cell in the padded square's [0, 1] coordinates (NaN for start / queries / pooled / end)."""
    g = cfg.grid
    token_grid = cfg.encoder(cfg.fused_kinds[0]).token_grid
    queries = cfg.qformer.num_query_tokens if cfg.qformer else 0
    first_cell = 1 + queries + 1  # start, queries, the pooled / CLS token
    views = torch.arange(cfg.num_views).repeat_interleave(cfg.tokens_per_view)
    centres = torch.full((cfg.image_tokens, 2), float("nan"))
    for v in range(cfg.num_views):
        # view v covers [x0, x0 + span] x [y0, y0 + span] of the square
        span = 1.0 if v == 0 else 1.0 / g
        y0, x0 = (0.0, 0.0) if v == 0 else (((v - 1) // g) / g, ((v - 1) % g) / g)
        for cell in range(token_grid * token_grid):
            r, c = divmod(cell, token_grid)
            centres[v * cfg.tokens_per_view + first_cell + cell] = torch.tensor(
                [x0 + (c + 0.5) / token_grid * span, y0 + (r + 0.5) / token_grid * span])
    return views, centres


IMAGE_POSITION_RMS = 0.3
"""Root mean square per element of the initial position code (the projected visual tokens, after
their LayerNorm, are about 1)."""
CELL_WIDTH = 0.1
""":func:`ordinal_rows` width for the cell centres (1/8 or 1/16 apart in the toy-world views)."""


def init_image_positions(model, rms: float = IMAGE_POSITION_RMS, seed: int = 0) -> None:
    """Set ``model.image_pos`` to a position code: a random direction per view, plus for grid
    tokens :func:`ordinal_rows` of their cell centre's x and y (three parts of equal length, the
    whole ``rms`` per element). The code stays trainable."""
    if model.image_pos is None:
        raise ValueError("the model has no image positions (config image_positions=False)")
    cfg = model.cfg
    dim = cfg.llm.dim
    views, centres = slot_geometry(cfg)
    part = rms * math.sqrt(dim / 3)
    g = torch.Generator().manual_seed(seed)
    view_code = torch.nn.functional.normalize(torch.randn(cfg.num_views, dim, generator=g), dim=1)
    code = view_code[views] * part
    cells = ~centres[:, 0].isnan()
    for axis in (0, 1):
        code[cells] += ordinal_rows(centres[cells, axis], dim, part, seed=seed + 1 + axis,
                                    width=CELL_WIDTH)
    code = code * (rms * math.sqrt(dim) / code.norm(dim=1, keepdim=True))
    with torch.no_grad():
        model.image_pos.copy_(code[None].to(model.image_pos))
