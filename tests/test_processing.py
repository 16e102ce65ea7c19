import numpy as np
import pytest
import torch
from PIL import Image

from sphinx_mllm.config import SphinxConfig
from sphinx_mllm.constants import CLIP_MEAN, CLIP_STD, IGNORE_INDEX, IMAGE_PLACEHOLDER_ID
from sphinx_mllm.model.views import make_views, resize_bicubic
from sphinx_mllm.processing import Processor, image_to_tensor, pad_to_square


def test_pad_to_square_centres_with_mean_colour():
    img = Image.new("RGB", (10, 4), (255, 0, 0))
    sq = np.asarray(pad_to_square(img))
    assert sq.shape == (10, 10, 3)
    assert (sq[:3] == (122, 116, 104)).all() and (sq[7:] == (122, 116, 104)).all()  # (10-4)//2 = 3
    assert (sq[3:7] == (255, 0, 0)).all()


def test_image_to_tensor_normalises_with_clip_stats():
    x = image_to_tensor(Image.new("RGB", (30, 20), (255, 255, 255)), 16)
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32
    white = (1 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    torch.testing.assert_close(x[:, 8, 8], white)  # centre is image
    pad = (torch.tensor([122, 116, 104]) / 255 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    torch.testing.assert_close(x[:, 0, 8], pad, atol=1e-6, rtol=0)  # top rows are padding


def test_views_are_global_then_raster_crops():
    x = torch.randn(2, 3, 8, 8)
    views = make_views(x, view_size=4, grid=2)
    assert views.shape == (10, 3, 4, 4)
    torch.testing.assert_close(views[:2], resize_bicubic(x, 4))
    crops = [x[:, :, :4, :4], x[:, :, :4, 4:], x[:, :, 4:, :4], x[:, :, 4:, 4:]]  # TL TR BL BR
    for k, crop in enumerate(crops, start=1):
        assert torch.equal(views[2 * k:2 * k + 2], crop)  # exact slices, no resampling


def test_view_resize_goes_through_fp16_and_is_identity_at_same_size():
    x = torch.randn(1, 3, 8, 8, dtype=torch.float64)
    assert resize_bicubic(x, 8) is x
    y = resize_bicubic(x, 4)
    assert y.dtype == torch.float64 and torch.equal(y, y.half().double())


def test_crops_come_from_the_upscaled_image_for_tiny_1k_dinov2():
    x = torch.randn(1, 3, 16, 16)
    views = make_views(x, view_size=4, grid=2)  # dinov2 of tiny-1k: crops of bicubic(I, 2v)
    big = resize_bicubic(x, 8)
    assert torch.equal(views[4:5], big[:, :, 4:, 4:])  # BR crop of the 8 px image


def test_prompt_has_placeholders_right_after_bos(tokenizer):
    cfg = SphinxConfig.from_name("toy-1k")
    proc = Processor(tokenizer, cfg)
    ids = proc.encode_prompt([{"role": "user", "content": "hi"}], has_image=True)
    assert ids[0] == tokenizer.bos_id
    assert ids[1:1 + cfg.image_tokens] == [IMAGE_PLACEHOLDER_ID] * cfg.image_tokens
    assert IMAGE_PLACEHOLDER_ID not in ids[1 + cfg.image_tokens:]
    assert proc.encode_prompt([{"role": "user", "content": "hi"}], has_image=False)[1] != IMAGE_PLACEHOLDER_ID


@pytest.mark.parametrize("answers", [["A red cat [0.10,0.20,0.30,0.40]"], ["yes", "No, it is blue."],
                                     ["café ☕ naïve"]])
def test_labels_supervise_exactly_answer_and_separator(tokenizer, answers):
    proc = Processor(tokenizer, SphinxConfig.from_name("toy"))
    msgs = []
    for i, a in enumerate(answers):
        msgs += [{"role": "user", "content": f"question {i}?"}, {"role": "assistant", "content": a}]
    enc = proc.encode_training(msgs, has_image=True)
    assert len(enc.input_ids) == len(enc.labels)
    assert enc.input_ids[-1] == tokenizer.eos_id and enc.labels[-1] == IGNORE_INDEX
    n_img = proc.image_tokens
    assert enc.labels[:1 + n_img] == [IGNORE_INDEX] * (1 + n_img)
    # The supervised tokens decode to the answers each followed by "\n###".
    runs, current = [], []
    for ids, lab in zip(enc.input_ids, enc.labels):
        if lab != IGNORE_INDEX:
            assert lab == ids
            current.append(ids)
        elif current:
            runs.append(current)
            current = []
    assert [tokenizer.decode(r).strip() for r in runs] == [a + "\n###" for a in answers]
