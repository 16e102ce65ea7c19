from sphinx_mllm.conversation import SYSTEM, cut_answer, history_to_messages, render, visible_answer


def test_single_turn_prompt_golden():
    text = render([{"role": "user", "content": "What's in the image?"}], add_generation_prompt=True).text
    assert text == SYSTEM + "\n\n### Human: What's in the image?\n### Assistant:"
    assert SYSTEM == ("A chat between a curious human and an artificial intelligence assistant. "
                      "The assistant gives helpful, detailed, and polite answers to the human's "
                      "questions.")


def test_multi_turn_prompt_golden():
    msgs = history_to_messages([("Q1", "A1")], "Q2")
    text = render(msgs, add_generation_prompt=True).text
    assert text == SYSTEM + "\n\n### Human: Q1\n### Assistant: A1\n### Human: Q2\n### Assistant:"


def test_training_render_marks_answer_and_separator():
    r = render([{"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"},
                {"role": "user", "content": "Q2"}, {"role": "assistant", "content": "The end."}])
    assert r.text.endswith("### Assistant: The end.\n###")
    # The space before each answer is supervised too: an inference prompt ends at "Assistant:".
    assert [r.text[s:e] for s, e in r.supervised] == [" A1\n###", " The end.\n###"]


def test_cut_answer():
    assert cut_answer(" a cat  \n### Human: more") == " a cat"
    assert cut_answer("no separator") == "no separator"


def test_visible_answer_holds_back_a_partial_separator():
    assert visible_answer(" a cat\n#", finished=False) == " a cat\n"
    assert visible_answer(" a cat\n##", finished=False) == " a cat\n"
    assert visible_answer(" a cat\n### Human", finished=False) == " a cat\n"
    assert visible_answer(" a cat # 2", finished=False) == " a cat # 2"
    assert visible_answer(" a cat\n###", finished=True) == " a cat"
