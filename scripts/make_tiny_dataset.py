"""Build the tiny training dataset shipped in ``configs/train/tiny/`` (used by ``tiny-cpu.yaml``).

Eight solid-colour images, each with a question whose answer is its colour, a one-line caption
per image (for ``caption_lm``) and a few lines of raw text (for ``text_lm``). The answer depends on
the image only, so a model that memorises them has learned to read its visual tokens.
Run from the repository root: ``python scripts/make_tiny_dataset.py``; rerunning reproduces it.
"""

import json
from pathlib import Path

from PIL import Image

OUT = Path(__file__).resolve().parents[1] / "configs" / "train" / "tiny"
COLORS = {"red": (220, 30, 30), "green": (30, 180, 40), "blue": (30, 60, 220),
          "yellow": (240, 220, 30), "white": (250, 250, 250), "black": (10, 10, 10),
          "orange": (245, 140, 20), "purple": (130, 40, 170)}
TEXT = ["Colours are named by the light they reflect.", "Red and yellow make orange.",
        "Blue and red make purple.", "White reflects every colour, black absorbs them all."]


def main() -> None:
    (OUT / "images").mkdir(parents=True, exist_ok=True)
    chat, captions = [], []
    for name, rgb in COLORS.items():
        Image.new("RGB", (64, 48), rgb).save(OUT / "images" / f"{name}.png")
        chat.append({"image": f"images/{name}.png", "conversations": [
            {"from": "human", "value": "What colour is the image?"},
            {"from": "gpt", "value": name}]})
        captions.append({"image": f"images/{name}.png", "conversations": [
            {"from": "human", "value": "Caption:"}, {"from": "gpt", "value": f"A {name} square."}]})
    for file, records in (("colours.json", chat), ("captions.json", captions)):
        (OUT / file).write_text(json.dumps(records, indent=1) + "\n")
    (OUT / "text.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXT))


if __name__ == "__main__":
    main()
