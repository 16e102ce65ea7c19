"""LoRA: only the adapters train, and the merged checkpoint computes base + adapter."""

import pytest
import torch

import sphinx_mllm
from sphinx_mllm.constants import IMAGE_PLACEHOLDER_ID as PH
from sphinx_mllm.train.config import LoraConfig
from sphinx_mllm.train.freeze import apply_trainable
from sphinx_mllm.train.lora import LoRALinear, add_lora, merge_state
from sphinx_mllm.train.trainer import train


def test_adapters_train_and_the_base_stays(tmp_path, tiny_config):
    cfg = tiny_config(tmp_path / "run", "lora.rank=4", "lora.alpha=8",
                      "lora.targets=[wq,wv,w1,w2,w3]", "steps=20", "save_every=10",
                      "optim.lr=1e-2", "trainable=[llm]")
    from sphinx_mllm.train import distributed
    from sphinx_mllm.train.trainer import Precision, prepare_model

    prepared = prepare_model(cfg, distributed.init("cpu"), Precision(bf16=False))
    trainable = {n for n, p in prepared.model.named_parameters() if p.requires_grad}
    assert trainable and all(n.endswith((".lora_a", ".lora_b")) for n in trainable)
    assert len(trainable) == 2 * 5 * prepared.config.llm.n_layers

    torch.manual_seed(cfg.seed)
    base = sphinx_mllm.build("toy")  # what prepare_model starts from: the same seed
    merged = sphinx_mllm.checkpoint.load(train(cfg))
    wq = merged.llm.layers[0].attention.wq.weight
    assert not torch.equal(wq, base.llm.layers[0].attention.wq.weight)  # an adapter moved it
    assert torch.equal(merged.llm.layers[0].attention.wk.weight,  # not a target: untouched
                       base.llm.layers[0].attention.wk.weight)
    assert torch.equal(merged.visual_proj[0].weight, base.visual_proj[0].weight)  # frozen


def test_merged_logits_equal_base_plus_adapter():
    torch.manual_seed(0)
    model = sphinx_mllm.build("toy")
    add_lora(model.llm, LoraConfig(rank=4, alpha=8.0, targets=("wq", "wo", "w2")))
    for module in model.modules():
        if isinstance(module, LoRALinear):
            torch.nn.init.normal_(module.lora_b, std=0.05)  # a trained-looking adapter
    apply_trainable(model, ["llm"])
    model.eval()
    ids = torch.tensor([[1] + [PH] * model.cfg.image_tokens + [5, 17, 300, 9]])
    image = torch.randn(1, 3, 56, 56)
    with torch.no_grad():
        expected = model(ids, image)
        plain = sphinx_mllm.build("toy")
        plain.load_state_dict(merge_state(model.state_dict(), 8.0 / 4))
        got = plain.eval()(ids, image)
    assert (got - expected).abs().max().item() < 1e-5
    assert not torch.allclose(expected, sphinx_mllm.build("toy").eval()(ids, image))


def test_lora_config_is_checked():
    with pytest.raises(ValueError, match="targets"):
        LoraConfig(targets=("wz",))
