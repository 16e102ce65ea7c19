"""The world tokenizer (digits split, or each coordinate one piece; grounding tags whole) and
the encoder pre-training stage."""

import numpy as np
import pytest
import torch

from sphinx_mllm import build
from sphinx_mllm.config import TOY_VOCAB
from sphinx_mllm.tasks import Box
from sphinx_mllm.tasks.formats import coordinate_texts
from sphinx_mllm.toy.encoders import (ATTRIBUTES, COUNTED, EMPHASIS_INDEX_OFFSET, IGNORE,
                                      ITEM_KINDS, class_share, emphasise_attribute, make_batch,
                                      picture_targets, pretrain_encoders, probe)
from sphinx_mllm.toy.tokenizer import train_tokenizer
from sphinx_mllm.toy.world import Picture, Thing


GROUNDED = "<p>left knee</p> [0.37,0.50] <p>red circle</p> [0.05,0.10,0.95,1.00] 12 of 3"


def _digit_pieces(tok, text):
    pieces = [tok.sp.id_to_piece(i) for i in tok.encode(text)]
    return pieces, [p for p in pieces if any(c.isdigit() for c in p)]


def test_world_tokenizer(train_world, tmp_path):
    tok = train_tokenizer(train_world, tmp_path / "world.model")
    assert 256 < tok.vocab_size <= TOY_VOCAB
    assert (tok.bos_id, tok.eos_id) == (1, 2)
    pieces, digits = _digit_pieces(tok, GROUNDED)
    assert digits == list("037050005010095100123")
    assert pieces.count("<p>") == 2 and pieces.count("</p>") == 2
    assert tok.decode(tok.encode(GROUNDED)) == GROUNDED
    ids, spans = tok.encode_with_offsets("### Human: What color is the circle?\n### Assistant: red\n###")
    assert len(ids) == len(spans)
    assert len(tok.encode("What color is the triangle?")) <= 8  # world words are whole pieces


def test_world_tokenizer_with_coordinate_pieces(train_world, tmp_path):
    """``coordinate_pieces``: each of the 101 coordinates one piece, other numbers digit by digit."""
    tok = train_tokenizer(train_world, tmp_path / "world.model", coordinate_pieces=True)
    assert tok.vocab_size <= TOY_VOCAB
    pieces, digits = _digit_pieces(tok, GROUNDED)
    assert digits == ["0.37", "0.50", "0.05", "0.10", "0.95", "1.00", "1", "2", "3"]
    assert all(tok.sp.piece_to_id(c) != tok.sp.unk_id() for c in coordinate_texts())
    assert pieces.count("<p>") == 2 and tok.decode(tok.encode(GROUNDED)) == GROUNDED


def test_targets_of_one_shape():
    """A shape in the top-left quarter: every cell it covers (a quarter of the cell or more, or
    its centre) holds it, with its box in that view's coordinates; the other crops see nothing;
    the view counts say one red circle."""
    thing = Thing("circle", "red", "large", "striped", Box(16, 16, 48, 48))
    picture = Picture(0, 0, "scene", 128, 128, "flat", (200, 200, 200), things=(thing,))
    views = picture_targets(picture, grid=2, token_grid=4)
    assert len(views) == 5
    g = views[0]  # global view: the box is 0.125 .. 0.375, a quarter of each of cells (0..1, 0..1)
    owned = [0, 1, 4, 5]
    assert np.flatnonzero(g["kind"]).tolist() == owned
    assert (g["kind"][owned] == ITEM_KINDS.index("shape")).all()
    for cell in owned:
        assert g["box"][cell].tolist() == pytest.approx([0.125, 0.125, 0.375, 0.375])
        assert g["attrs"][cell].tolist() == [0, 0, 1, 1]  # red, circle, large, striped
    counts = dict(zip(COUNTED, g["counts"].tolist()))
    assert counts["red"] == counts["circle"] == counts["items"] == 1
    assert sum(counts.values()) == 3
    crop = views[1]  # top-left quarter, twice the scale: 0.25 .. 0.75, the four middle cells
    assert np.flatnonzero(crop["kind"]).tolist() == [5, 6, 9, 10]
    assert crop["box"][10].tolist() == pytest.approx([0.25, 0.25, 0.75, 0.75])
    assert all((v["kind"] == 0).all() and v["counts"].sum() == 0 for v in views[2:])
    assert (g["attrs"][g["kind"] == 0] == IGNORE).all()


def test_small_shape_keeps_its_centre_cell():
    """A shape covering under a quarter of every cell still owns the cell holding its centre;
    one mostly outside a crop makes the cells it would own there neither item nor "none"."""
    thing = Thing("square", "blue", "small", "plain", Box(56, 56, 68, 68))  # centre (62, 62)
    picture = Picture(0, 0, "scene", 128, 128, "flat", (200, 200, 200), things=(thing,))
    views = picture_targets(picture, grid=2, token_grid=4)
    assert np.flatnonzero(views[0]["kind"]).tolist() == [5]  # 62 / 128 * 4 -> cell (1, 1)
    crop = views[1]["kind"]  # crop 0 sees 8 x 8 of its 12 x 12 px: under half of it
    assert crop[15] == IGNORE and (crop[:15] == 0).all() and views[1]["counts"].sum() == 0


def test_encoder_pretraining_smoke():
    torch.manual_seed(0)
    model = build("toy-world")
    llm_before = {k: v.clone() for k, v in model.llm.state_dict().items()}
    enc_before = {k: v.clone() for k, v in model.encoders.state_dict().items()}
    images, targets = make_batch(0, [0, 1], model.cfg)
    assert images.shape == (2, 3, 128, 128) and targets.kind.shape == (10, 16)
    heads, log = pretrain_encoders(model, steps=10, batch_size=2, warmup_steps=1, log_every=1)
    assert len(log) == 10 and log[-1].loss < 0.9 * log[0].loss
    assert all(torch.equal(v, model.llm.state_dict()[k]) for k, v in llm_before.items())
    assert any(not torch.equal(v, model.encoders.state_dict()[k]) for k, v in enc_before.items())
    assert not any(p.requires_grad for p in model.parameters())
    metrics = probe(model, heads, n=4, batch_size=4)
    assert set(metrics) == {"clip", "convnext", "dinov2", "qformer"}
    assert set(metrics["qformer"]) == {"count_items", "count_all"}  # view head only
    fused = [metrics[k] for k in ("clip", "convnext", "dinov2")]
    assert all(0 <= m[k] <= 1 for m in fused for k in ("kind", "none", "box_iou", "box_acc50"))
    with pytest.raises(ValueError, match="reserved for evaluation"):
        pretrain_encoders(model, seed=1000, steps=1)


def test_encoder_batches_drawn_by_workers_are_the_inline_ones():
    """``toy train --set num_workers=N`` (a GPU run) draws the encoder stage's pictures in worker
    processes: the same batches, in the same order, as drawn inline."""
    from sphinx_mllm.toy.encoders import step_batches

    cfg = build("toy-world", device="meta").cfg
    inline = list(step_batches(0, 3, 2, cfg))
    drawn = list(step_batches(0, 3, 2, cfg, workers=2))
    assert len(drawn) == 3
    for (img_a, t_a), (img_b, t_b) in zip(inline, drawn):
        assert torch.equal(img_a, img_b)
        assert all(torch.equal(getattr(t_a, f), getattr(t_b, f)) for f in ("kind", "box", "kp_xy"))
    assert not torch.equal(inline[0][0], inline[1][0])  # each step its own pictures


def test_encoder_stage_builds_the_vit_stem_asked_for(tmp_path):
    """``toy train --set vit_stem=conv`` (the sixth and seventh runs): the stage's checkpoint has
    CLIP and DINOv2 on the convolutional stem; the default keeps the patchify stem."""
    from sphinx_mllm.checkpoint import ours
    from sphinx_mllm.inference.pipeline import bundled_tokenizer_path
    from sphinx_mllm.toy.encoders import run_encoder_stage

    for stem in ("conv", "patch"):
        out = tmp_path / stem
        kwargs = {} if stem == "patch" else {"vit_stem": stem}
        run_encoder_stage(out, bundled_tokenizer_path(), steps=1, batch_size=1, probe_pictures=2,
                          device="cpu", **kwargs)
        cfg = ours.load(out / "final").cfg
        assert (cfg.clip.stem, cfg.dinov2.stem) == (stem, stem)


def test_class_share_is_between_class_over_total_variance():
    x = torch.tensor([[0.0], [2.0], [10.0], [12.0]])
    # class means 1 and 11 around 6: between 4 * 25 = 100; total 36 + 16 + 16 + 36 = 104
    assert class_share(x, torch.tensor([0, 0, 1, 1])) == pytest.approx(100 / 104)
    assert class_share(x, torch.tensor([0, 1, 0, 1])) == pytest.approx(4 / 104)


@pytest.mark.parametrize("attribute", ["shape", "colour"])
def test_emphasis_scales_the_class_means_and_keeps_the_rest(attribute):
    """On the cells it measured, the projection's (pre-LayerNorm) class means move ``scale``
    times as far from their mean, every token moves only along the span of those means (it is
    scaled there, kept across it), and the attribute's share of the projected variance rises;
    only the projection's Linear changes."""
    torch.manual_seed(0)
    model = build("toy-world").eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    linear = model.visual_proj[0]
    images, targets = make_batch(0, list(range(EMPHASIS_INDEX_OFFSET, EMPHASIS_INDEX_OFFSET + 8)),
                                 model.cfg)
    column = ATTRIBUTES.index(attribute)
    owned = targets.attrs[..., column] != IGNORE
    labels = targets.attrs[..., column][owned]

    def pre_norm():
        with torch.no_grad():
            feats = model.encode_views(images)
            fused = torch.cat([feats[k][:, 1:] for k in model.cfg.fused_kinds], dim=-1)
            return linear(fused)[owned].double()

    def class_means(y):
        return {int(c): y[labels == c].mean(0) for c in labels.unique()}

    y0 = pre_norm()
    found = emphasise_attribute(model, 3.0, attribute, pictures=8, batch_size=4)
    y1 = pre_norm()
    means0, means1 = class_means(y0), class_means(y1)
    assert len(means0) > 1 and found["cells"] == len(labels)
    centre0, centre1 = y0.mean(0), y1.mean(0)
    for c in means0:
        assert torch.allclose(means1[c] - centre1, 3 * (means0[c] - centre0), atol=1e-4)
    u, sv, _ = torch.linalg.svd(torch.stack([m - centre0 for m in means0.values()]).T,
                                full_matrices=False)
    span = u[:, sv > 1e-6 * sv[0]]  # rank classes - 1: the means weighted by size sum to 0
    assert span.shape[1] == len(means0) - 1
    across = torch.eye(len(centre0), dtype=span.dtype) - span @ span.T
    assert torch.allclose((y1 - centre1) @ across, (y0 - centre0) @ across, atol=1e-4)
    assert torch.allclose((y1 - centre1) @ span, 3 * (y0 - centre0) @ span, atol=1e-4)
    assert found["share_after"][attribute] > found["share_before"][attribute]
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed == {"visual_proj.0.weight", "visual_proj.0.bias"}
    with pytest.raises(ValueError, match="choose among colour, shape"):
        emphasise_attribute(model, 3.0, "texture")


def test_encoder_stage_takes_another_checkpoints_encoders(tmp_path):
    """``encoders_from``: the stage's checkpoint has the source's encoders and its own seed's
    fresh LLM and projections (not the source's), writes where the encoders came from instead of
    a probe, and refuses encoders configured otherwise."""
    from sphinx_mllm.checkpoint import ours
    from sphinx_mllm.config import SphinxConfig, with_vit_stem
    from sphinx_mllm.inference.pipeline import bundled_tokenizer_path
    from sphinx_mllm.toy.encoders import run_encoder_stage

    tokenizer = bundled_tokenizer_path()
    torch.manual_seed(5)
    source = build("toy-world")
    ours.save(source, tokenizer, tmp_path / "source")
    torch.manual_seed(2)
    fresh = build("toy-world")
    record = run_encoder_stage(tmp_path / "stage", tokenizer, seed=2, device="cpu",
                               encoders_from=tmp_path / "source")
    made = ours.load(tmp_path / "stage" / "final").state_dict()
    theirs, own = source.state_dict(), fresh.state_dict()
    encoders = [k for k in made if k.startswith("encoders.")]
    assert encoders and len(encoders) < len(made)
    for name, tensor in made.items():
        expected = theirs[name] if name.startswith("encoders.") else own[name]
        assert torch.equal(tensor, expected), name
    assert not torch.equal(theirs["visual_proj.0.weight"], own["visual_proj.0.weight"])
    assert record["tensors"] == len(encoders) and len(record["sha256"]) == 64
    assert sorted(p.name for p in (tmp_path / "stage").iterdir()) == ["final", "source.json"]

    conv = build(with_vit_stem(SphinxConfig.from_name("toy-world"), "conv"))
    ours.save(conv, tokenizer, tmp_path / "conv")
    with pytest.raises(ValueError, match="configured otherwise \\(clip, dinov2\\)"):
        run_encoder_stage(tmp_path / "refused", tokenizer, device="cpu",
                          encoders_from=tmp_path / "conv")
