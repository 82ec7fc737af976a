#!/usr/bin/env python3
"""The text tasks beyond single-text classification, run by release binaries of another
architecture under qemu-user (`.ci/run`), checked against the references Transformers and
sentence-transformers computed (tests/fixtures/hf/*/reference.json):

    python3 tests/arm/text_tasks.py BIN_DIR SCRATCH_DIR [RUNNER ...]

exports the NLI, ELECTRA, ALBERT, NER and sentence-transformers test checkpoints in f32 with
BIN_DIR/kinglet-export, then: 50 sentence pairs (logits within 1e-4, `--pairs` lines), the
zero-shot cases (labels in the pipeline's order, scores within 1e-4), ELECTRA and ALBERT
logits on their 15 texts (within 1e-4), 80 sentence embeddings (cosine >= 0.99999), the
entities of 80 sentences from BERT and DistilBERT token classifiers (equal to the
token-classification pipeline's), the shipped all-MiniLM-L6-v2 bundle's vectors of 57 texts
(int8: cosine >= 0.99 each and 0.995 on average to sentence-transformers'), and an
index of examples/sst2-sentences.txt searched (f32 storage: recall 1).
"""
import json
import math
import os
import subprocess
import sys

bin_dir, scratch, runner = sys.argv[1], sys.argv[2], sys.argv[3:]
FIXTURES = "tests/fixtures/hf"


def run(tool, *args, stdin=None):
    cmd = runner + [os.path.join(bin_dir, tool)] + list(args)
    p = subprocess.run(cmd, input=stdin, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr.strip()}")
    return p.stdout


def reference(name):
    with open(os.path.join(FIXTURES, name, "reference.json"), encoding="utf-8") as f:
        return json.load(f)


def export(name, max_tokens):
    out = os.path.join(scratch, name + ".kinglet")
    run("kinglet-export", "-q", "bert", os.path.join(FIXTURES, name), "--precision", "f32",
        "--max-tokens", str(max_tokens), "-o", out)
    return out


def max_delta(a, b):
    assert len(a) == len(b), (a, b)
    return max(abs(x - y) for x, y in zip(a, b))


def cosine(a, b):
    dot = sum(x * y for x, y in zip(a, b))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


nli = reference("bert-nli-f32")
model = export("bert-nli-f32", nli["max_tokens"])
lines = "".join(f"{p['text']}\t{p['text_pair']}\n" for p in nli["pairs"])
answers = [json.loads(l) for l in run("kinglet", "classify", "--model", model, "--json", "--pairs", "-",
                                      stdin=lines).splitlines()]
worst = max(max_delta(a["logits"], p["logits"]) for a, p in zip(answers, nli["pairs"]))
assert len(answers) == 50 and worst <= 1e-4, worst
print(f"pairs: 50 pairs, max |Δlogit| vs Transformers {worst:.2e}")

model = export("bert-nli-f32", 64)
worst = 0.0
for case in nli["zero_shot"]:
    args = ["classify", "--model", model, "--json", "--zero-shot", ",".join(case["candidate_labels"]),
            "--hypothesis", case["hypothesis_template"]]
    if case["multi_label"]:
        args.append("--multi-label")
    answer = json.loads(run("kinglet", *args, case["text"]))
    assert answer["labels"] == case["labels"], (answer, case)
    worst = max(worst, max_delta(answer["scores"], case["scores"]))
assert worst <= 1e-4, worst
print(f"zero-shot: {len(nli['zero_shot'])} cases, labels equal, max |Δscore| {worst:.2e}")

for name in ["electra-f32", "albert-f32"]:
    ref = reference(name)
    model = export(name, ref["max_tokens"])
    texts = "".join(r["text"] + "\n" for r in ref["rows"])
    answers = [json.loads(l) for l in run("kinglet", "classify", "--model", model, "--json", "-",
                                          stdin=texts).splitlines()]
    worst = max(max_delta(a["logits"], r["logits"]) for a, r in zip(answers, ref["rows"]))
    assert len(answers) == len(ref["rows"]) and worst <= 1e-4, worst
    print(f"{name}: {len(answers)} texts, max |Δlogit| vs Transformers {worst:.2e}")

st = reference("st-bert-mean")
model = export("st-bert-mean", st["max_tokens"])
texts = "".join(r["text"] + "\n" for r in st["rows"])
answers = [json.loads(l) for l in run("kinglet", "embed", "--model", model, "--json", "-",
                                      stdin=texts).splitlines()]
least = min(cosine(a["embedding"], r["embedding"]) for a, r in zip(answers, st["rows"]))
assert len(answers) == 80 and least >= 0.99999, least
print(f"embeddings: 80 sentences, min cosine to sentence-transformers {least:.7f}")

key = lambda e: (e["entity_group"], e["word"], e["start"], e["end"])
for name in ["bert-ner-f32", "distilbert-ner-f32"]:
    ner = reference(name)
    tagger = export(name, 64)
    texts = "".join(r["text"] + "\n" for r in ner["rows"])
    answers = [json.loads(l) for l in run("kinglet", "tag", "--model", tagger, "--json", "-",
                                          stdin=texts).splitlines()]
    for a, r in zip(answers, ner["rows"]):
        assert [key(e) for e in a["entities"]] == [key(e) for e in r["entities"]], (a, r)
    count = sum(len(r["entities"]) for r in ner["rows"])
    print(f"{name}: 80 sentences, {count} entity groups equal to the pipeline's")

# the shipped all-MiniLM-L6-v2 bundle (int8) against sentence-transformers' own vectors
with open("tests/fixtures/minilm/reference.json", encoding="utf-8") as f:
    minilm = json.load(f)["rows"]
texts = "".join(r["text"] + "\n" for r in minilm)
answers = [json.loads(l) for l in run("kinglet", "embed", "--model", "models/minilm-embed.kinglet",
                                      "--json", "-", stdin=texts).splitlines()]
cosines = [cosine(a["embedding"], r["embedding"]) for a, r in zip(answers, minilm)]
assert len(cosines) == len(minilm) and min(cosines) >= 0.99, min(cosines)
assert sum(cosines) / len(cosines) >= 0.995, cosines
print(f"minilm-embed (int8): {len(cosines)} texts, cosine to sentence-transformers min "
      f"{min(cosines):.5f} mean {sum(cosines) / len(cosines):.5f}")

index = os.path.join(scratch, "phrases.kidx")
report = json.loads(run("kinglet", "index", "build", "--json", "--storage", "f32", "--model", model,
                        "--input", "examples/sst2-sentences.txt", "-o", index))
assert report["documents"] == 1000 and report["recall_at_5"] == 1.0, report
hits = json.loads(run("kinglet", "search", "--json", "--model", model, "--index", index,
                      "a gorgeous, moving film"))["hits"]
assert len(hits) == 5 and hits[0]["score"] >= hits[-1]["score"], hits
print(f"search: 1,000 documents indexed and searched, top hit {hits[0]['text']!r}")
