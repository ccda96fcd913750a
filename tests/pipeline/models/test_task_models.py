"""A task's own Hugging Face model (`models.tasks`), its labels mapped to ours; tiny models built here."""
import json

import pytest

from pipeline.models.intents import load_extra_heads

from pipeline.models.heads import load_heads
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.rules import SENTIMENT_CLASSES
from pipeline.stages import SENTIMENTS
from pipeline.models.task_models import TaskModelError, load_task_model, map_labels
from tests.conftest import write_jsonl

WORDS = "aerolia lumelle flight late refund thanks great merci vol retard my the was is ? ! . ,".split()
TEXTS = ["@aerolia my flight was late again!", "merci lumelle, great", "vol en retard ?", "the refund",
         "Beautiful sunset tonight", ""]
RULES = "brands:\n  - name: Aerolia\n    keywords: [aerolia]\n  - name: Lumelle\n    keywords: [lumelle]\n"


def tiny_classifier(folder, id2label: dict[int, str], bias: list[float]):
    """A 1-layer BERT whose classifier answers its bias whatever the text: the label mapping decides."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder.mkdir()
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt"), do_lower_case=True).save_pretrained(folder)
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, num_labels=len(id2label),
                        id2label=id2label, label2id={v: k for k, v in id2label.items()})
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor(bias))
    model.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def sentiment_model(tmp_path_factory):
    """Three labels in the model's own words; always 'POS' (softmax of [0, 0, 4]: 0.9647)."""
    return tiny_classifier(tmp_path_factory.mktemp("models") / "sentiment", {0: "NEG", 1: "NEU", 2: "POS"},
                           [0.0, 0.0, 4.0])


@pytest.fixture(scope="session")
def complaint_model(tmp_path_factory):
    """A single-logit binary model (sigmoid); its one label is the complaint class, always likely (0.9526)."""
    return tiny_classifier(tmp_path_factory.mktemp("models") / "complaint", {0: "complaint"}, [3.0])


def classify(tmp_path, models_yaml: str):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES + models_yaml, encoding="utf-8")
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": f"m{i}", "text": t} for i, t in enumerate(TEXTS)])
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(main, ["classify", str(source), "-o", str(out), "--rules", str(rules)])
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()] if out.exists() else []
    return result, lines


@pytest.mark.parametrize("mapping, expected", [
    ("{NEG: negative, NEU: neutral, POS: positive}", "positive"),
    ("{NEG: positive, NEU: neutral, POS: negative}", "negative"),   # the mapping, not the label order, decides
])
def test_a_sentiment_model_replaces_the_head_through_its_label_mapping(tmp_path, sentiment_model, mapping, expected):
    result, lines = classify(tmp_path, f"models:\n  tasks:\n    sentiment:\n      model: {sentiment_model}\n"
                                       f"      labels: {mapping}\n      batch_size: 4\n")
    assert result.exit_code == 0, result.output
    assert [line["id"] for line in lines] == [f"m{i}" for i in range(len(TEXTS))]
    assert all(line["sentiment"] == expected and line["sentiment_score"] == 0.9647 for line in lines)
    shipped = load_heads().card["model"]
    intents = f"intent:{load_extra_heads().name}"
    assert all(line["model"] == f"{shipped}+embedded+sentiment:{sentiment_model}+{intents}" for line in lines)
    assert all(0 <= line["complaint_score"] <= 1 for line in lines)   # complaint still from the heads


def test_a_binary_complaint_model_with_one_logit_and_both_tasks_configured(tmp_path, sentiment_model,
                                                                           complaint_model):
    result, lines = classify(tmp_path, f"models:\n  tasks:\n    sentiment:\n      model: {sentiment_model}\n"
                                       f"      labels: {{NEG: negative, NEU: neutral, POS: positive}}\n"
                                       f"    complaint:\n      model: {complaint_model}\n"
                                       f"      labels: {{complaint: yes}}\n")
    assert result.exit_code == 0, result.output
    assert len(lines) == len(TEXTS)
    assert all(line["complaint"] is True and line["complaint_score"] == 0.9526 for line in lines)
    assert {line["sentiment"] for line in lines} == {"positive"}
    # the heads still give emotion and irony, so they are named too
    assert lines[0]["model"].endswith(f"+sentiment:{sentiment_model}+complaint:{complaint_model}"
                                      f"+intent:{load_extra_heads().name}")
    assert lines[0]["intent"] == "complaint" and lines[0]["needs_response"] is True


def test_an_unmapped_model_label_is_an_error_naming_task_model_label_and_field(tmp_path, sentiment_model):
    result, lines = classify(tmp_path, f"models:\n  tasks:\n    sentiment:\n      model: {sentiment_model}\n"
                                       f"      labels: {{NEG: negative, POS: positive}}\n")
    assert result.exit_code == 1 and lines == []
    assert "rules.yaml models.tasks.sentiment.labels" in result.output
    assert f"the sentiment model {sentiment_model} has a label 'NEU' that is not mapped" in result.output
    assert "NEU: negative" in result.output   # an example of the line to add


def test_rules_check_refuses_a_mapping_to_a_class_we_do_not_have_with_the_line(tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES + "models:\n  tasks:\n    sentiment:\n      model: cardiffnlp/twitter-xlm-roberta-base-"
                     "sentiment\n      labels:\n        negative: negative\n        neutral: mixed\n"
                     "    complaint:\n      model: some/model\n      labels: {LABEL_0: no, LABEL_1: maybe}\n")
    result = CliRunner().invoke(main, ["rules", "check", str(rules)])
    assert result.exit_code == 1
    assert (f"{rules}:12 models.tasks.sentiment.labels.neutral: Input should be 'negative', 'neutral' or "
            f"'positive', got 'mixed'") in result.output
    assert f"{rules}:15 models.tasks.complaint.labels.LABEL_1: Input should be 'no' or 'yes', got 'maybe'" \
        in result.output


def test_unmapped_labels_named_like_ours_map_themselves_and_several_may_share_a_class():
    assert map_labels("sentiment", "m", {0: "Negative", 1: "NEUTRAL", 2: "positive"}, {},
                      SENTIMENT_CLASSES) == [0, 1, 2]
    stars = {i: f"{i + 1} stars" for i in range(5)}
    mapping = {"1 stars": "negative", "2 stars": "negative", "3 stars": "neutral", "4 STARS": "positive",
               "5 stars": "positive"}
    assert map_labels("sentiment", "nlptown", stars, mapping, SENTIMENT_CLASSES) == [0, 0, 1, 2, 2]
    with pytest.raises(TaskModelError, match="has no label 'LABEL_9'; its labels are NEG, POS"):
        map_labels("sentiment", "m", {0: "NEG", 1: "POS"}, {"NEG": "negative", "POS": "positive",
                                                          "LABEL_9": "neutral"}, SENTIMENT_CLASSES)
    with pytest.raises(TaskModelError, match="every label of m maps to 'yes'"):
        map_labels("complaint", "m", {0: "a", 1: "b"}, {"a": "yes", "b": "yes"}, ("no", "yes"))


def test_probabilities_come_back_in_our_class_order(sentiment_model):
    model = load_task_model("sentiment", str(sentiment_model), (("NEG", "positive"), ("NEU", "neutral"), ("POS", "negative")),
                            SENTIMENT_CLASSES, 32)
    probs = model.predict(["a", "the flight was late", "merci"], batch_size=2)
    assert probs.shape == (3, 3) and probs.sum(axis=1) == pytest.approx([1, 1, 1])
    assert probs[0] == pytest.approx([0.9647, 0.0177, 0.0177], abs=1e-4)   # POS → negative, first column
    assert SENTIMENTS == SENTIMENT_CLASSES


def test_a_model_without_a_classification_head_is_refused(tiny_encoder):
    with pytest.raises(TaskModelError, match="has no trained classification head"):
        load_task_model("sentiment", str(tiny_encoder), (), SENTIMENT_CLASSES, 32)


def test_a_missing_model_says_which_field_to_fix(tmp_path):
    with pytest.raises(TaskModelError, match=r"models.tasks.complaint.model: no such folder"):
        load_task_model("complaint", str(tmp_path / "nowhere"), (), ("no", "yes"), 32)
    with pytest.raises(TaskModelError, match=r"(?s)models.tasks.complaint.model: cannot load 'nobody/nothing'.*\n"
                                             r"Hint: a hub id is downloaded once"):
        load_task_model("complaint", "nobody/nothing", (), ("no", "yes"), 32)   # HF_HUB_OFFLINE=1 (conftest)
