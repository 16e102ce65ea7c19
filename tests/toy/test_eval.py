"""toy eval: the scoring path gives 1.0 to perfect answers and 0 to wrong ones, and a random
model runs end to end through the CLI with the exact JSON keys."""

import json
import re
from collections import Counter

import pytest

from sphinx_mllm import cli
from sphinx_mllm.tasks import format_box
from sphinx_mllm.toy.dataset import image_file
from sphinx_mllm.toy.evaluate import (SUMMARY_KEYS, colour_question_choice, default_tasks,
                                      format_scores, load_world_items, question_families,
                                      rec_by_colour, reference_answers, scene_shapes, score_world,
                                      shapes_per_scene, task_names, where_choice)
from sphinx_mllm.toy.world import MAX_THINGS, position_word, sample_picture


def test_perfect_answers_score_one(eval_world):
    items = load_world_items(eval_world)
    assert all(items[task] for task in ("vqa", "rec", "detection", "layout", "pose", "where"))
    result = score_world(eval_world, reference_answers(items), items)
    summary = result["summary"]
    assert set(summary) == set(SUMMARY_KEYS)
    for key in SUMMARY_KEYS:
        if not key.startswith("caption"):
            assert summary[key] == pytest.approx(1.0), key
    assert set(result["vqa_families"]) == {"colour", "shape", "count", "highres"}
    assert all(v == pytest.approx(1.0) for v in result["vqa_families"].values())
    by_objects = result["rec_by_objects"]
    assert set(by_objects) <= set(range(1, MAX_THINGS + 1)) and len(by_objects) > 1
    assert all(r["named"] == pytest.approx(1.0) and r["other"] == r["near"] == 0.0
               for r in by_objects.values())
    assert sum(r["n"] for r in by_objects.values()) == len(items["rec"])
    by_colour = result["rec_by_colour"]
    assert all(r["named"] == pytest.approx(1.0) for r in by_colour.values())
    assert all(r["other"] == 0.0 for r in by_colour.values())
    assert by_colour["colour_shared"]["n"] + by_colour["colour_unique"]["n"] == \
        len(items["rec"]) - by_objects[1]["n"]
    assert 0 < by_colour["shape_decides"]["n"] < by_colour["colour_shared"]["n"]
    assert result["tasks"]["where"]["accuracy"] == pytest.approx(100.0)
    assert result["where_choice"]["named"] == pytest.approx(1.0)
    assert result["where_choice"]["other"] == 0.0
    # one synthetic reference per picture, answered verbatim: CIDEr-D's maximum (10)
    assert summary["caption_cider_synthetic"] == pytest.approx(10.0)
    assert summary["caption_cider_web"] > 1.0


def test_wrong_answers_score_zero(eval_world):
    items = load_world_items(eval_world)
    # not "None": VQA normalisation reads it as "0", a right answer to some count questions
    wrong = {task: [{**r, "answer": "zebra"} for r in records]
             for task, records in reference_answers(items).items()}
    summary = score_world(eval_world, wrong, items)["summary"]
    assert all(value == 0.0 for value in summary.values()), summary


def test_shifted_boxes_fail_rec(eval_world):
    """A box moved by its own width has IoU 0: REC accuracy must drop to 0, not stay at 1."""
    items = load_world_items(eval_world)
    answers = reference_answers(items)
    shifted = []
    for item, record in zip(items["rec"], answers["rec"]):
        b = item.frame.box_to_square(item.reference)
        w = b.x2 - b.x1
        shifted.append({**record, "answer": f"[{b.x1 + w:.2f},{b.y1:.2f},{b.x2 + w:.2f},{b.y2:.2f}]"})
    answers["rec"] = shifted
    result = score_world(eval_world, answers, items)
    assert result["summary"]["rec_acc50"] < 0.05
    by_objects = result["rec_by_objects"]
    assert all(r["named"] < 0.05 for r in by_objects.values())
    # a lone shape is the nearest to any box: every miss there is placed by the named shape
    assert by_objects[1]["near"] == 1.0 and all(r["near"] <= 1.0 for r in by_objects.values())


def test_rec_by_objects_groups_by_the_shapes_in_the_scene(eval_world):
    """One-shape scenes answered right, the others with another shape's box: named 1 and other
    0 for one shape, named 0 and other 1 for more; each group holds the expressions about the
    scenes with that many shapes, counted from the world's ground truth (seed 1000, 40 pictures)."""
    items = load_world_items(eval_world)
    shapes = shapes_per_scene(eval_world)
    answers = reference_answers(items)
    for k, item in enumerate(items["rec"]):
        scene = shapes[item.image.name]
        if len(scene) > 1:
            named = max(scene, key=lambda b: b.iou(item.reference))
            other = min((b for b in scene if b is not named), key=lambda b: b.iou(named))
            answers["rec"][k] = {**answers["rec"][k],
                                 "answer": format_box(item.frame.box_to_square(other))}
    by_objects = score_world(eval_world, answers, items)["rec_by_objects"]
    things = {image_file("val", i + 1): len(sample_picture(1000, i).things) for i in range(40)}
    expected = Counter(things[item.image.name] for item in items["rec"])
    assert {count: rec["n"] for count, rec in by_objects.items()} == dict(expected)
    assert len(expected) > 1 and 1 in expected
    for count, rec in by_objects.items():
        assert (rec["named"], rec["other"]) == ((1.0, 0.0) if count == 1 else (0.0, 1.0)), count
        assert rec["near"] == 0.0, count


def test_rec_by_colour_splits_by_a_shared_colour(eval_world):
    """Right boxes where the named shape's colour is its own, another shape's box where another
    shape has that colour: 1.0 and 0.0, each group counted from the world's ground truth (seed
    1000, 40 pictures), with the part of the second where the shape word decides (no other shape
    of the same colour and shape); one-shape scenes are in no group."""
    items = load_world_items(eval_world)
    answers = reference_answers(items)
    things = {image_file("val", i + 1): sample_picture(1000, i).things for i in range(40)}
    expected, by_shape = Counter(), Counter()
    for k, item in enumerate(items["rec"]):
        scene = things[item.image.name]
        if len(scene) < 2:
            expected["one shape"] += 1
            continue
        named = max(scene, key=lambda t: t.box.iou(item.reference))
        shared = any(t.colour == named.colour for t in scene if t is not named)
        expected["colour_shared" if shared else "colour_unique"] += 1
        twin = any(t.category == named.category for t in scene if t is not named)
        expected["shape_decides"] += shared and not twin
        by_shape[shared, any(t.shape == named.shape for t in scene if t is not named)] += 1
        if shared:
            other = next(t for t in scene if t is not named)
            answers["rec"][k] = {**answers["rec"][k],
                                 "answer": format_box(item.frame.box_to_square(other.box))}
    # one-shape scenes to leave out, and a split by shape that differs from the split by colour
    assert expected["one shape"] and expected["colour_shared"] and expected["colour_unique"]
    assert by_shape[True, False] and by_shape[False, True]
    by_colour = score_world(eval_world, answers, items)["rec_by_colour"]
    assert 0 < expected["shape_decides"] < expected["colour_shared"]
    assert by_colour == {
        "colour_shared": {"n": expected["colour_shared"], "named": 0.0, "other": 1.0},
        "colour_unique": {"n": expected["colour_unique"], "named": 1.0, "other": 0.0},
        "shape_decides": {"n": expected["shape_decides"], "named": 0.0, "other": 1.0}}
    table = format_scores({"summary": {}, "vqa_families": {}, "rec_by_colour": by_colour})
    assert "rec colour shared" in table and "rec shape decides" in table
    assert rec_by_colour(eval_world, items["rec"], []) == {
        group: {"n": 0, "named": None, "other": None}
        for group in ("colour_shared", "colour_unique", "shape_decides")}
    assert {name for shapes in scene_shapes(eval_world).values() for name, _ in shapes} <= {
        t.category for scene in things.values() for t in scene}


def test_colour_question_choice_against_a_scene_colour_at_random(eval_world):
    """Colour questions about scenes of two or more shapes answered with another shape's colour
    score 0, right answers 1; ``chance`` is the mean of 1 / the scene's distinct colours, both
    counted from the world's ground truth (seed 1000, 40 pictures)."""
    items = load_world_items(eval_world)
    answers = reference_answers(items)
    family_of = question_families(eval_world)
    things = {image_file("val", i + 1): sample_picture(1000, i).things for i in range(40)}
    right, wrong, chance, lone = list(answers["vqa"]), list(answers["vqa"]), [], 0
    for k, item in enumerate(items["vqa"]):
        if family_of[str(item.ids["question_id"])] != "colour":
            continue
        scene = things[item.image.name]
        if len(scene) < 2:
            lone += 1
            continue
        colours = {t.colour for t in scene}
        chance.append(1 / len(colours))
        other = sorted(colours - {item.reference[0]})
        wrong[k] = {**wrong[k], "answer": other[0] if other else "zebra"}
    assert lone and len(chance) > 1 and min(chance) < max(chance)
    expected = {"n": len(chance), "chance": pytest.approx(sum(chance) / len(chance))}
    assert colour_question_choice(eval_world, items["vqa"], right) == {**expected, "accuracy": 1.0}
    result = score_world(eval_world, {**answers, "vqa": wrong}, items)
    assert result["colour_question_choice"] == {**expected, "accuracy": 0.0}
    assert "colour of a named shape" in format_scores({**result, "rec_by_objects": {}})
    assert colour_question_choice(eval_world, items["vqa"], []) == {
        "n": 0, "accuracy": None, "chance": None}


def test_where_choice_tells_the_named_place_from_another_shapes(eval_world):
    """Where questions about scenes of two or more shapes answered with another shape's place
    count as ``other``, not ``named``; the questions about lone shapes are left out (places
    counted from the world's RefCOCO instances, seed 1000, 40 pictures)."""
    items = load_world_items(eval_world, ["where"])
    assert not items["vqa"] and items["where"]
    answers = reference_answers(items)["where"]
    sizes = {im["file_name"]: (im["width"], im["height"]) for im in json.loads(
        (eval_world / "refcoco" / "instances.json").read_text())["images"]}
    scenes, wrong, lone = scene_shapes(eval_world), list(answers), 0
    for k, item in enumerate(items["where"]):
        scene = scenes[item.image.name]
        if len(scene) < 2:
            lone += 1
            continue
        places = {position_word(box, *sizes[item.image.name]) for _, box in scene}
        assert item.reference[0] in places
        wrong[k] = {**wrong[k], "answer": sorted(places - {item.reference[0]})[0]}
    n = len(items["where"]) - lone
    assert lone and n > 1
    assert where_choice(eval_world, items["where"], answers) == {"n": n, "named": 1.0, "other": 0.0}
    result = score_world(eval_world, {"where": wrong}, items)
    assert result["where_choice"] == {"n": n, "named": 0.0, "other": 1.0}
    assert result["summary"]["vqa_acc"] is None
    table = format_scores(result)
    assert re.search(r"^  where \(a diagnostic\) +\d\.\d{3}$", table, re.M)
    assert re.search(rf"^  where of 2\+ shapes +0\.000  \(another shape's place: 1\.000; "
                     rf"n = {n}\)$", table, re.M)
    assert where_choice(eval_world, items["where"], []) == {"n": 0, "named": None, "other": None}


def test_rec_by_objects_counts_answered_expressions_only(eval_world):
    """Half the answers missing (an interrupted run): each group scores what was answered."""
    items = load_world_items(eval_world)
    answers = reference_answers(items)["rec"][::2]
    by_objects = score_world(eval_world, {**reference_answers(items), "rec": answers},
                             items)["rec_by_objects"]
    assert sum(r["n"] for r in by_objects.values()) == len(answers)
    assert all(r["named"] == pytest.approx(1.0) for r in by_objects.values() if r["n"])


def test_toy_eval_cli_on_a_random_model(tmp_path, capsys):
    code = cli.main(["toy", "eval", "--model", "toy-world", "--seed", "1001", "--n", "10",
                     "--json", "--max-new-tokens", "3", "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(out[-1])
    assert list(summary) == list(SUMMARY_KEYS)
    for key, value in summary.items():
        assert value is None or value >= 0.0
        if value is not None and not key.startswith("caption"):
            assert value <= 1.0
    assert (tmp_path / "world" / "world.json").is_file()
    assert (tmp_path / "answers" / "vqa.answers.jsonl").is_file()
    # where is a diagnostic: scored when named, not by default
    assert set(task_names()) - set(default_tasks()) == {"where"}
    assert not (tmp_path / "answers" / "where.answers.jsonl").exists()


def test_toy_eval_cli_scores_the_where_questions_when_asked(tmp_path, capsys):
    code = cli.main(["toy", "eval", "--model", "toy-world", "--seed", "1001", "--n", "12",
                     "--tasks", "where", "--max-new-tokens", "3", "--out", str(tmp_path)])
    assert code == 0
    assert re.search(r"^  where \(a diagnostic\) +\d\.\d{3}$", capsys.readouterr().out, re.M)
    assert [p.name for p in (tmp_path / "answers").glob("*.answers.jsonl")] == \
        ["where.answers.jsonl"]
    scores = json.loads((tmp_path / "answers" / "scores.json").read_text())
    assert set(scores["tasks"]) == {"where"} and scores["where_choice"]["n"] > 0
    assert all(value is None for value in scores["summary"].values())


def test_toy_eval_cli_scores_only_the_tasks_asked(tmp_path, capsys):
    code = cli.main(["toy", "eval", "--model", "toy-world", "--seed", "1001", "--n", "8",
                     "--tasks", "rec", "--max-new-tokens", "3", "--out", str(tmp_path)])
    assert code == 0
    breakdown = (r"^  rec \d shapes? +\d\.\d{3}  \(another shape boxed: \d\.\d{3}; by the named "
                 r"one, IoU < 0\.5: \d\.\d{3}; n = \d+\)$")
    assert re.search(breakdown, capsys.readouterr().out, re.M)
    assert [p.name for p in (tmp_path / "answers").glob("*.answers.jsonl")] == ["rec.answers.jsonl"]
    scores = json.loads((tmp_path / "answers" / "scores.json").read_text())
    assert scores["summary"]["rec_acc50"] is not None and scores["summary"]["vqa_acc"] is None
    # read back from JSON the shape counts are strings; the table still prints them
    assert re.search(breakdown, format_scores({**scores, "seed": 1001, "n": 8}), re.M)
    for bad, message in (("rec,vqq", "unknown vqq"), (",", "none given")):
        with pytest.raises(SystemExit, match=message):
            cli.main(["toy", "eval", "--model", "toy-world", "--seed", "1001", "--tasks", bad])


def test_toy_eval_cli_on_scenes_of_two_shapes_of_one_colour(tmp_path, capsys):
    code = cli.main(["toy", "eval", "--model", "toy-world", "--seed", "1001", "--n", "12",
                     "--tasks", "rec", "--min-objects", "2", "--max-objects", "2",
                     "--colours", "1", "--max-new-tokens", "3", "--out", str(tmp_path)])
    assert code == 0
    manifest = json.loads((tmp_path / "world" / "world.json").read_text())
    assert (manifest["min_things"], manifest["max_things"], manifest["colours"]) == (2, 2, 1)
    scores = json.loads((tmp_path / "answers" / "scores.json").read_text())
    assert list(scores["rec_by_objects"]) == ["2"]  # every scene holds exactly two shapes
    by_colour = scores["rec_by_colour"]  # and one colour: every expression in colour_shared
    assert by_colour["colour_unique"]["n"] == 0 < by_colour["colour_shared"]["n"]
    assert re.search(r"^  rec 2 shapes ", capsys.readouterr().out, re.M)


def test_toy_eval_refuses_training_seeds():
    with pytest.raises(SystemExit, match="training seed"):
        cli.main(["toy", "eval", "--model", "toy-world", "--seed", "3", "--n", "4", "--json"])
