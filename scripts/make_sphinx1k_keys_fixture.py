"""Build tests/checkpoint/data/sphinx-1k-keys.tsv: every key and full shape of the released
SPHINX-1k (``llama_ens5``) state dict.

Input: the parity harness's ``llama_ens5_keys_small.tsv`` (written by the original code with a
small LLM: dim 256, 2 layers, FFN 768, vocab 512). Encoder keys are kept as they are; the LLM and
projection keys are re-dimensioned to LLaMA-2-13B (spec 5.1 / 6.2: dim 5120, 40 layers, FFN 13824,
vocab 32000). Usage: python scripts/make_sphinx1k_keys_fixture.py PATH/TO/llama_ens5_keys_small.tsv
"""

import re
import sys
from pathlib import Path

SMALL = {"dim": 256, "ffn": 768, "vocab": 512, "layers": 2}
REAL = {"dim": 5120, "ffn": 13824, "vocab": 32000, "layers": 40}
LLM_DIM_KEYS = re.compile(r"llma\.(tok_embeddings|output|norm|start_img|end_img|visual_proj|"
                          r"qformer_proj|layers)\b")
OUT = Path(__file__).resolve().parents[1] / "tests" / "checkpoint" / "data" / "sphinx-1k-keys.tsv"


def rescale(shape: list[int]) -> list[int]:
    swap = {SMALL["dim"]: REAL["dim"], SMALL["ffn"]: REAL["ffn"], SMALL["vocab"]: REAL["vocab"]}
    return [swap.get(d, d) for d in shape]


def main(src: str) -> None:
    rows = [line.split("\t") for line in Path(src).read_text().splitlines()[1:]]
    out = ["key\tshape\tmp_split_dim"]
    for key, shape, _dtype, split in rows:
        dims = [int(d) for d in shape.strip("[]").split(",") if d.strip()]
        if LLM_DIM_KEYS.match(key):
            if key.startswith("llma.layers.") and int(key.split(".")[2]) != 0:
                continue  # layer 0 is the template for all 40
            dims = rescale(dims) if not key.startswith(("llma.visual_proj.0.weight",
                                                         "llma.qformer_proj.0.weight")) \
                else [REAL["dim"], dims[1]]
        if key.startswith("llma.layers.0."):
            for i in range(REAL["layers"]):
                out.append(f"{key.replace('layers.0.', f'layers.{i}.')}\t{dims}\t{split}")
        else:
            out.append(f"{key}\t{dims}\t{split}")
    OUT.write_text("\n".join(out) + "\n")
    print(f"wrote {len(out) - 1} keys to {OUT}")


if __name__ == "__main__":
    main(sys.argv[1])
