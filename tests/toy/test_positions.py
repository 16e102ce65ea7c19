"""Positions the decoder can read (toy.positions): ordered coordinate rows, the image position code."""

import dataclasses

import pytest
import torch

from sphinx_mllm import build
from sphinx_mllm.config import SphinxConfig
from sphinx_mllm.tasks.formats import coordinate_texts
from sphinx_mllm.toy.positions import init_coordinate_rows, init_image_positions, slot_geometry
from sphinx_mllm.toy.tokenizer import train_tokenizer


def test_coordinate_rows_are_ordered(train_world, tmp_path):
    """``init_coordinate_rows``: the 101 coordinate pieces get rows whose similarity falls with
    the distance of their values, in both LLM tables, at each table's mean row length."""
    tok = train_tokenizer(train_world, tmp_path / "world.model", coordinate_pieces=True)
    model = build("toy-world")
    norms = [t.norm(dim=1).mean() for t in (model.llm.tok_embeddings.weight, model.llm.output.weight)]
    assert init_coordinate_rows(model, tok) == 101
    ids = [tok.sp.piece_to_id(t) for t in coordinate_texts()]
    for table, norm in zip((model.llm.tok_embeddings.weight, model.llm.output.weight), norms):
        rows = torch.nn.functional.normalize(table[ids].detach(), dim=1)
        near, mid, far = (float(rows[50] @ rows[50 + d]) for d in (1, 3, 20))
        assert near > 0.9 and 0.4 < mid < 0.8 and abs(far) < 0.1
        assert float(table[ids].norm(dim=1).mean()) == pytest.approx(float(norm), rel=1e-3)
    digits = train_tokenizer(train_world, tmp_path / "digits.model")
    assert init_coordinate_rows(build("toy-world"), digits) == 0



def test_slot_geometry_places_every_grid_token_in_the_square():
    """toy-world: 5 views x 23 slots [start, 4 queries, pooled, 4x4 grid, end]; the global view's
    cells are 1/4 wide, the crops' 1/8, crop 1 is the top-left quarter, crop 4 the bottom-right."""
    cfg = SphinxConfig.from_name("toy-world")
    views, centres = slot_geometry(cfg)
    assert views.tolist() == [v for v in range(5) for _ in range(23)]
    per_view = centres.view(5, 23, 2)
    assert per_view[:, [0, 1, 4, 5, 22]].isnan().all()  # start, queries, pooled, end
    assert per_view[0, 6].tolist() == [0.125, 0.125] and per_view[0, 21].tolist() == [0.875, 0.875]
    assert per_view[1, 6].tolist() == [0.0625, 0.0625] and per_view[1, 7].tolist() == [0.1875, 0.0625]
    assert per_view[2, 6].tolist() == [0.5625, 0.0625] and per_view[3, 6].tolist() == [0.0625, 0.5625]
    assert per_view[4, 21].tolist() == [0.9375, 0.9375]


def test_image_position_code():
    """A view part shared within a view, cell parts similar for near cells whatever their view,
    ``rms`` per element; refused without ``image_positions``."""
    cfg = dataclasses.replace(SphinxConfig.from_name("toy-world"), image_positions=True)
    model = build(cfg)
    init_image_positions(model, rms=0.3)
    code = model.image_pos[0].detach()
    assert code.pow(2).mean(dim=1).sqrt() == pytest.approx(torch.full((115,), 0.3), rel=1e-4)
    unit = torch.nn.functional.normalize(code, dim=1)
    # global cell (0.125, 0.125) against: its row neighbour, the opposite corner, the top-left
    # crop's first cell (0.0625, 0.0625), the bottom-right crop's last cell (0.9375, 0.9375)
    row, corner, crop_near, crop_far = (float(unit[6] @ unit[j]) for j in (7, 21, 29, 113))
    assert row > corner + 0.2 and crop_near > crop_far + 0.4
    assert float(unit[0] @ unit[22]) == pytest.approx(1.0)  # start and end: the view part alone
    with pytest.raises(ValueError, match="no image positions"):
        init_image_positions(build("toy-world"))
