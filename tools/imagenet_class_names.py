r"""Writes the names of ImageNet's 1000 classes in BigGAN's label order.

    python -m tools.imagenet_class_names \
        [--wordnet=/usr/share/wordnet/data.noun] \
        [--out=tfgt/importers/imagenet_class_names.txt]

Label i of the ImageNet BigGANs (TF-Hub's deepmind/biggan-*, BigGAN-PyTorch's
I128 weights) is the i-th WordNet synset of ILSVRC-2012 in sorted order, the
order of TensorFlow Datasets' imagenet2012 labels. Each line of the output is
that synset's lemmas, joined by ", " ("tench, Tinca tinca"), read from the
WordNet 3.0 noun database (Debian: `apt-get install wordnet-base`).
tfgt's BigGAN importers give these names to an imported model of 1000 classes
(tfgt.importers.biggan.default_class_names); tests/importers/test_tfhub_biggan.py
checks the shipped file against a fresh run of this command.
"""

from __future__ import annotations

import argparse
import importlib.resources
import os
import sys

DEFAULT_WORDNET = "/usr/share/wordnet/data.noun"
DEFAULT_OUT = os.path.join(os.path.dirname(__file__), "..", "tfgt",
                           "importers", "imagenet_class_names.txt")


def synsets() -> list[str]:
  """ILSVRC-2012's 1000 WordNet ids ("n01440764"), sorted: BigGAN's labels."""
  labels = importlib.resources.files("tensorflow_datasets").joinpath(
      "datasets", "imagenet2012", "labels.txt").read_text()
  ids = sorted(labels.split())
  if len(ids) != 1000 or len(set(ids)) != 1000:
    raise RuntimeError(f"TensorFlow Datasets' imagenet2012 labels hold "
                       f"{len(set(ids))} distinct ids, not 1000.")
  return ids


def lemmas(wordnet: str, offsets: set[str]) -> dict[str, str]:
  """{8-digit offset: "lemma, lemma"} of the noun synsets at `offsets`
  (WordNet's data.noun: offset, lexicographer file, type, hex word count,
  then word / lex-id pairs; underscores are spaces)."""
  names = {}
  with open(wordnet, encoding="latin-1") as f:
    for line in f:
      if line.startswith("  "):  # The licence header.
        continue
      fields = line.split()
      if fields[0] not in offsets:
        continue
      count = int(fields[3], 16)
      names[fields[0]] = ", ".join(
          fields[4 + 2 * i].replace("_", " ") for i in range(count))
  return names


def class_names(wordnet: str = DEFAULT_WORDNET) -> list[str]:
  """The 1000 names in label order.

  Raises:
    FileNotFoundError: no WordNet database at `wordnet`.
    RuntimeError: a synset the database does not hold.
  """
  ids = synsets()
  names = lemmas(wordnet, {i[1:] for i in ids})
  missing = [i for i in ids if i[1:] not in names]
  if missing:
    raise RuntimeError(f"{wordnet} has no synsets {missing[:5]}: is it "
                       "WordNet 3.0's data.noun?")
  return [names[i[1:]] for i in ids]


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[1])
  parser.add_argument("--wordnet", default=DEFAULT_WORDNET)
  parser.add_argument("--out", default=DEFAULT_OUT)
  args = parser.parse_args(argv)
  if not os.path.isfile(args.wordnet):
    print(f"No WordNet database at {args.wordnet}: apt-get install "
          "wordnet-base, or pass --wordnet=PATH/data.noun.", file=sys.stderr)
    return 2
  names = class_names(args.wordnet)
  tmp = args.out + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    f.write("".join(n + "\n" for n in names))
  os.replace(tmp, args.out)
  print(f"Wrote {len(names)} names to {args.out}.")
  return 0


if __name__ == "__main__":
  sys.exit(main())
