"""VQAv2, OK-VQA, GQA and TextVQA adapters on fixtures in the released layouts."""

from sphinx_mllm.data import Skips, read_samples

SUFFIX = "\nAnswer the question using a single word or phrase."


def _qa(sample):
    return tuple(m.content for m in sample.messages)


def _answers(*values):
    return [{"answer": v, "answer_confidence": "yes", "answer_id": i + 1}
            for i, v in enumerate(values)]


def test_vqav2(tmp_path, write_json):
    write_json(tmp_path / "v2_OpenEnded_mscoco_val2014_questions.json", {
        "info": {}, "task_type": "Open-Ended", "data_type": "mscoco", "data_subtype": "val2014",
        "questions": [{"image_id": 42, "question": "What color is the bus?", "question_id": 420},
                      {"image_id": 42, "question": "Unanswered?", "question_id": 421}]})
    write_json(tmp_path / "v2_mscoco_val2014_annotations.json", {"annotations": [
        {"question_id": 420, "image_id": 42, "question_type": "what color",
         "answer_type": "other", "multiple_choice_answer": "red",
         "answers": _answers("red", "red", "maroon")}]})
    skips = Skips()
    (sample,) = read_samples("vqav2", tmp_path, split="val2014", skips=skips)
    assert skips.total == 1
    assert _qa(sample) == ("What color is the bus?" + SUFFIX, "red")
    assert sample.image == tmp_path / "val2014" / "COCO_val2014_000000000042.jpg"


def test_okvqa_majority_answer(tmp_path, write_json):
    write_json(tmp_path / "OpenEnded_mscoco_train2014_questions.json", {"questions": [
        {"image_id": 7, "question": "What sport is this?", "question_id": 70}]})
    write_json(tmp_path / "mscoco_train2014_annotations.json", {"annotations": [
        {"question_id": 70, "image_id": 7, "answers": _answers("tennis", "racket", "tennis")}]})
    (sample,) = read_samples("okvqa", tmp_path)
    assert _qa(sample) == ("What sport is this?" + SUFFIX, "tennis")


def test_gqa(tmp_path, write_json):
    write_json(tmp_path / "questions1.2" / "val_balanced_questions.json", {
        "201": {"imageId": "n1", "question": "Is the sky blue?", "answer": "yes",
                "fullAnswer": "Yes, the sky is blue.", "semantic": [], "types": {}},
        "202": {"imageId": "n1", "question": "Broken?"}})
    skips = Skips()
    (sample,) = read_samples("gqa", tmp_path, split="val_balanced", skips=skips)
    assert skips.total == 1
    assert _qa(sample) == ("Is the sky blue?" + SUFFIX, "yes")
    assert sample.image == tmp_path / "images" / "n1.jpg"
    assert sample.source == "gqa:val_balanced_questions.json:201"


def test_textvqa(tmp_path, write_json):
    write_json(tmp_path / "TextVQA_0.5.1_val.json", {"dataset_type": "val", "dataset_name":
                                                     "textvqa", "dataset_version": "0.5.1",
                                                     "data": [
        {"question": "What brand?", "image_id": "abc", "question_id": 5, "image_width": 1024,
         "image_height": 768, "answers": ["nokia"] * 7 + ["noka"] * 3, "set_name": "val"},
        {"question": "No answers?", "image_id": "abc", "question_id": 6, "answers": []}]})
    skips = Skips()
    (sample,) = read_samples("textvqa", tmp_path, split="val", skips=skips)
    assert skips.total == 1
    assert _qa(sample) == ("What brand?" + SUFFIX, "nokia")
    assert sample.image == tmp_path / "train_images" / "abc.jpg"
